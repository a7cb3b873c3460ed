//! Composio-style ids: a prefix and 12 random alphanumeric characters (`ac_1a2B3c4D5e6F`).

use rand::Rng;
use rand::distributions::Alphanumeric;

pub fn nanoid(prefix: &str) -> String {
    let suffix: String = rand::thread_rng().sample_iter(&Alphanumeric).take(12).map(char::from).collect();
    format!("{prefix}{suffix}")
}

/// Whether `raw` has the shape of an id with this prefix (checked before any lookup).
pub fn is_nanoid(prefix: &str, raw: &str) -> bool {
    raw.strip_prefix(prefix).is_some_and(|rest| rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_a_prefix_and_twelve_characters() {
        let id = nanoid("ac_");
        assert!(is_nanoid("ac_", &id), "{id}");
        assert!(!is_nanoid("ca_", &id));
        assert!(!is_nanoid("ac_", "ac_short"));
        assert_ne!(nanoid("ac_"), nanoid("ac_"));
    }
}
