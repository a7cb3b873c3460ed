//! The legacy session id in the endpoint URL (`…/messages/?instance_id=…&session_id=…`): which
//! replica holds the session's event stream (its owner) and the session's key there, sealed
//! with the instance it belongs to. Any replica opens it and knows where to send a POST; one
//! that was tampered with, or is presented at another instance's URL, does not open (404).

use super::super::session::{Scope, SessionSealer};
use uuid::Uuid;

/// A legacy session's address: its owner replica and its key in that replica's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyToken {
    /// The owner's replica id (a simple UUID, no dots).
    pub owner: String,
    pub key: Uuid,
}

/// Its own key: a legacy session id never opens as a Streamable HTTP session id, nor the reverse.
pub const PURPOSE: &[u8] = b"gateway-legacy-session v1";

impl LegacyToken {
    pub fn seal(&self, sealer: &SessionSealer, scope: &Scope) -> String {
        sealer.seal(scope, &format!("{}.{}", self.owner, self.key.simple()))
    }

    /// The address `token` seals, if it is a legacy session of `scope` sealed by this service.
    pub fn open(sealer: &SessionSealer, scope: &Scope, token: &str) -> Option<Self> {
        let address = sealer.open(scope, token)?;
        let (owner, key) = address.split_once('.')?;
        Some(Self { owner: owner.to_owned(), key: key.parse().ok()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MasterKey;
    use events::InstanceId;

    #[test]
    fn a_token_opens_only_at_its_instance_with_the_legacy_key() {
        let master = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let sealer = SessionSealer::for_purpose(&master, PURPOSE);
        let (mine, other) = (Scope::Instance(InstanceId::random()), Scope::Instance(InstanceId::random()));
        let token = LegacyToken { owner: Uuid::new_v4().simple().to_string(), key: Uuid::new_v4() };
        let sealed = token.seal(&sealer, &mine);
        assert_eq!(LegacyToken::open(&sealer, &mine, &sealed), Some(token.clone()));
        assert_eq!(LegacyToken::open(&sealer, &other, &sealed), None, "moved to another instance's URL");
        let streamable = SessionSealer::new(&master);
        assert_eq!(streamable.open(&mine, &sealed), None, "a legacy id is not a Streamable HTTP session id");
        let upstream_session = streamable.seal(&mine, &format!("{}.{}", token.owner, token.key.simple()));
        assert_eq!(LegacyToken::open(&sealer, &mine, &upstream_session), None, "nor the reverse");
        let mut tampered = sealed.into_bytes();
        tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(LegacyToken::open(&sealer, &mine, std::str::from_utf8(&tampered).unwrap()), None);
    }
}
