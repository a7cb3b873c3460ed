use events::ProjectId;
use events::instance::ServerRef;
use uuid::Uuid;

/// The customer's id for one of its end users: 1 to 256 characters, no control characters.
/// Kept exactly as given (not trimmed): it is the customer's key, not ours.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Namespace of slot ids (UUIDv5).
const SLOT_NAMESPACE: Uuid = Uuid::from_u128(0x6d63_7070_736c_6f74_8000_0000_0000_0001);

/// The aggregate id of a (project, server, user) slot. Derived, not random, so that every
/// create for the same slot lands on the same aggregate; it is never shown to clients (the
/// instance id they see is random).
pub fn slot_id(project: ProjectId, server: &ServerRef, user: &UserId) -> String {
    let name = format!("{project}\n{}\n{}", server.key(), user.as_str());
    Uuid::new_v5(&SLOT_NAMESPACE, name.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_kept_as_given_but_not_empty() {
        assert_eq!(UserId::parse(" alice@example.com").unwrap().as_str(), " alice@example.com");
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("   ").is_err());
        assert!(UserId::parse("a\nb").is_err());
        assert!(UserId::parse(&"u".repeat(257)).is_err());
    }

    #[test]
    fn a_slot_id_depends_on_project_server_and_user() {
        let project = ProjectId::random();
        let gmail = ServerRef::Catalog { slug: "gmail".into() };
        let alice = UserId::parse("alice").unwrap();
        let id = slot_id(project, &gmail, &alice);
        assert_eq!(id, slot_id(project, &gmail, &alice));
        assert_ne!(id, slot_id(ProjectId::random(), &gmail, &alice));
        assert_ne!(id, slot_id(project, &ServerRef::Catalog { slug: "slack".into() }, &alice));
        assert_ne!(id, slot_id(project, &gmail, &UserId::parse("bob").unwrap()));
        // The separator keeps ("a\nb", "c") and ("a", "b\nc") apart: user ids hold no newline.
    }
}
