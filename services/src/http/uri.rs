//! Refuses a request whose path or query holds a control character (`%00`, ...) before it is
//! routed: no identifier, filter or time has one, and Postgres refuses NUL in text, so such a
//! value would otherwise reach a query and answer 500. The error names the query parameter
//! (or the path) and renders in the surface's own format.

use super::problem::{ControlCharacterInUri, Location};
use poem::{Endpoint, IntoResponse, Request, Response};

/// Whether percent-decoding `raw` yields an ASCII control character (`%00`..`%1F`, `%7F`).
fn encodes_control(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|b| b < 0x20 || b == 0x7f)
    })
}

fn offending(req: &Request) -> Option<Location> {
    if encodes_control(req.uri().path()) {
        return Some(Location::Path("path".into()));
    }
    let query = req.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| name.chars().chain(value.chars()).any(char::is_control))
        .map(|(name, _)| Location::Query(name.chars().filter(|c| !c.is_control()).collect()))
}

pub async fn refuse_control_characters<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    if let Some(location) = offending(&req) {
        return Err(ControlCharacterInUri { location }.into());
    }
    next.call(req).await.map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_control_characters_are_found() {
        assert!(encodes_control("/api/v1/audit/server/%00"));
        assert!(encodes_control("/a%0Ab"));
        assert!(!encodes_control("/a%20b%7Bc"));
        assert!(!encodes_control("/plain"));
    }
}
