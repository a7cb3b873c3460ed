//! The size limits of input, shared by every surface, and the checks that enforce them.
//!
//! Every string that is stored ends up in Postgres (`text` or `jsonb`) and in an event that
//! NATS must carry: unbounded input would make an event bigger than NATS accepts, and a NUL
//! is refused by Postgres (`jsonb` too), which would surface as a 500. So every field has a
//! limit, single-line fields refuse every control character, and no string may hold NUL.
//! The README's "Input limits" section lists the limits per field.

/// Names (servers, auth configs, platforms).
pub const NAME_CHARS: usize = 128;
/// Identifiers chosen by the client (user ids, account ids, tool names, scopes).
pub const ID_CHARS: usize = 256;
/// URLs.
pub const URL_CHARS: usize = 2048;
/// Free text (descriptions, commands).
pub const TEXT_CHARS: usize = 4096;
/// A secret (token, API key, client secret, env or header value), in bytes.
pub const SECRET_BYTES: usize = 8192;
/// A JSON object kept whole (credentials, auth data), serialised, in bytes.
pub const OBJECT_BYTES: usize = 16 * 1024;
/// Entries of a JSON object kept whole, and of a map field (env).
pub const OBJECT_ENTRIES: usize = 100;
/// Items of a list of ids (auth config ids, user ids, scopes, toolkits).
pub const LIST_ITEMS: usize = 100;
/// Items of a list of tool names.
pub const TOOL_ITEMS: usize = 500;
/// Any string of a request body that no rule above bounds more tightly, in bytes.
pub const ANY_STRING_BYTES: usize = 16 * 1024;
/// Any list or object of a request body that no rule above bounds more tightly.
pub const ANY_ITEMS: usize = 1000;
/// A query parameter or path segment used to filter or look up, in characters.
pub const PARAM_CHARS: usize = 256;

/// The reason a string may not be stored as it is, if any: NUL (anywhere) is refused by
/// Postgres; other control characters by every single-line field.
fn control_reason(raw: &str, multiline: bool) -> Option<&'static str> {
    if raw.contains('\0') {
        return Some("must not contain NUL characters");
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t' || c == '\r');
    raw.chars().any(|c| c.is_control() && !allowed(c)).then_some("must not contain control characters")
}

fn length_reason(raw: &str, max_chars: usize) -> Option<String> {
    // Bytes first: a multi-megabyte value is refused without counting its characters.
    (raw.len() > max_chars * 4 || raw.chars().count() > max_chars)
        .then(|| format!("must be at most {max_chars} characters"))
}

/// A single-line value: at most `max_chars` characters, no control characters.
pub fn check_line(raw: &str, max_chars: usize) -> Result<(), String> {
    match length_reason(raw, max_chars) {
        Some(reason) => Err(reason),
        None => control_reason(raw, false).map_or(Ok(()), |r| Err(r.to_owned())),
    }
}

/// Free text: at most `max_chars` characters; line breaks and tabs allowed, other control
/// characters not.
pub fn check_text(raw: &str, max_chars: usize) -> Result<(), String> {
    match length_reason(raw, max_chars) {
        Some(reason) => Err(reason),
        None => control_reason(raw, true).map_or(Ok(()), |r| Err(r.to_owned())),
    }
}

/// A secret: at most [`SECRET_BYTES`] bytes, no NUL (its content is otherwise its owner's).
pub fn check_secret(raw: &str) -> Result<(), String> {
    if raw.len() > SECRET_BYTES {
        return Err(format!("must be at most {SECRET_BYTES} bytes"));
    }
    if raw.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    Ok(())
}

/// Where in a list a check failed (`None`: the list as a whole) and why.
pub type ItemError = (Option<usize>, String);

/// A list of single-line items: at most `max_items`, each at most `max_chars` characters.
pub fn check_list<S: AsRef<str>>(items: &[S], max_items: usize, max_chars: usize) -> Result<(), ItemError> {
    if items.len() > max_items {
        return Err((None, format!("must have at most {max_items} items")));
    }
    for (i, item) in items.iter().enumerate() {
        check_line(item.as_ref(), max_chars).map_err(|reason| (Some(i), reason))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_refuses_control_characters_and_length_beyond_the_limit() {
        assert!(check_line(&"a".repeat(NAME_CHARS), NAME_CHARS).is_ok());
        assert!(check_line(&"é".repeat(NAME_CHARS), NAME_CHARS).is_ok());
        assert_eq!(check_line(&"a".repeat(NAME_CHARS + 1), NAME_CHARS).unwrap_err(), "must be at most 128 characters");
        assert_eq!(check_line("a\0b", NAME_CHARS).unwrap_err(), "must not contain NUL characters");
        assert_eq!(check_line("a\nb", NAME_CHARS).unwrap_err(), "must not contain control characters");
    }

    #[test]
    fn text_allows_line_breaks_but_not_nul() {
        assert!(check_text("one\ntwo\tthree", TEXT_CHARS).is_ok());
        assert!(check_text("a\u{7}b", TEXT_CHARS).is_err());
        assert!(check_text("a\0b", TEXT_CHARS).is_err());
    }

    #[test]
    fn secrets_are_bounded_in_bytes() {
        assert!(check_secret(&"s".repeat(SECRET_BYTES)).is_ok());
        assert!(check_secret(&"s".repeat(SECRET_BYTES + 1)).is_err());
        assert!(check_secret("a\0").is_err());
    }

    #[test]
    fn a_list_names_the_offending_item() {
        assert!(check_list(&["a", "b"], 2, 1).is_ok());
        assert_eq!(check_list(&["a", "b", "c"], 2, 1).unwrap_err().0, None);
        assert_eq!(check_list(&["a", "b\0"], 2, 8).unwrap_err().0, Some(1));
    }
}
