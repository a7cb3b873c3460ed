//! The `Idempotency-Key` header's value, and the fingerprint of the request it is sent with.

use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The longest key taken: UUIDs (the draft's recommendation) and Stripe's 255 fit.
pub const MAX_KEY_CHARS: usize = 255;

/// Why a header value is not a usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {MAX_KEY_CHARS} printable ASCII characters, optionally in double quotes")]
pub struct BadKey;

/// The key as sent: the draft makes it a structured-field string (`"8e03978e-..."`), while
/// Stripe's and most clients' keys go bare; both are taken, and mean the same key.
pub fn parse(raw: &[u8]) -> Result<String, BadKey> {
    let raw = std::str::from_utf8(raw).map_err(|_| BadKey)?.trim();
    let unquoted = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner,
        None => raw,
    };
    let printable = unquoted.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    let quotes_inside = unquoted.contains('"');
    if unquoted.is_empty() || unquoted.len() > MAX_KEY_CHARS || !printable || quotes_inside {
        return Err(BadKey);
    }
    Ok(unquoted.to_owned())
}

/// What makes a retry the same request: method, path with query, and body, hashed. Separated
/// by NUL, which a method or a path cannot hold, so no two requests share their input.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update([0]);
    hash.update(path_and_query.as_bytes());
    hash.update([0]);
    hash.update(body);
    hash.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_key_and_a_bare_one_are_the_same_key() {
        assert_eq!(parse(b"\"abc-123\"").unwrap(), "abc-123");
        assert_eq!(parse(b"abc-123").unwrap(), "abc-123");
    }

    #[test]
    fn empty_long_or_unprintable_keys_are_refused() {
        assert_eq!(parse(b""), Err(BadKey));
        assert_eq!(parse(b"\"\""), Err(BadKey));
        assert_eq!(parse("x".repeat(MAX_KEY_CHARS + 1).as_bytes()), Err(BadKey));
        assert_eq!(parse(b"a\tb"), Err(BadKey));
        assert_eq!(parse(b"\xff"), Err(BadKey));
        assert_eq!(parse(b"a\"b"), Err(BadKey));
        assert!(parse("x".repeat(MAX_KEY_CHARS).as_bytes()).is_ok());
    }

    #[test]
    fn the_fingerprint_tells_method_path_and_body_apart() {
        let base = fingerprint("POST", "/a", b"{}");
        assert_eq!(base, fingerprint("POST", "/a", b"{}"));
        assert_ne!(base, fingerprint("POST", "/b", b"{}"));
        assert_ne!(base, fingerprint("POST", "/a", b"{ }"));
        assert_ne!(fingerprint("POST", "/a", b"b"), fingerprint("POST", "/ab", b""));
    }
}
