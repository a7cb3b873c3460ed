//! Every keyed POST and PATCH takes an `Idempotency-Key` header (`crate::idempotency`, a
//! middleware the handlers never see, so poem-openapi cannot write it): declared here, so that a
//! generated client offers it. Its answers need no new entries: a reused key's 422 and a retry's
//! 409 while the first still runs are in the operations' 4XX error responses already.

use crate::idempotency::MAX_KEY_CHARS;
use serde_json::{Value, json};

/// A bare key, or the same in double quotes.
const KEY_PATTERN: &str = r#"^(?:"[ !#-~]*[!#-~][ !#-~]*"|[ !#-~]*[!#-~][ !#-~]*)$"#;

pub fn declare(spec: &mut Value) {
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for (method, operation) in item.iter_mut() {
            if matches!(method.as_str(), "post" | "patch") && takes_a_key(operation) {
                add_header(operation);
            }
        }
    }
}

/// Keys are kept per project: only operations with an API key have one.
fn takes_a_key(operation: &Value) -> bool {
    operation.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty())
}

fn add_header(operation: &mut Value) {
    let Some(operation) = operation.as_object_mut() else { return };
    let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
    if let Some(parameters) = parameters.as_array_mut() {
        parameters.push(json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Makes a retry safe (draft-ietf-httpapi-idempotency-key-header): the first answer is \
                kept for 24 h and given back, with `Idempotent-Replayed: true`, to a retry with the same key \
                and body; the same key with another body is 422, a retry while the first runs waits, then 409.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_KEY_CHARS,
                // Printable ASCII, not only spaces, no `"` but around the whole (the draft's form).
                "pattern": KEY_PATTERN,
            },
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_posts_and_patches_declare_the_header_and_nothing_else_does() {
        let keyed = json!({"security": [{"HTTPBearer": []}], "responses": {}});
        let open = json!({"responses": {}});
        let mut spec = json!({"paths": {
            "/a": {"post": keyed.clone(), "patch": keyed.clone(), "get": keyed.clone(), "delete": keyed},
            "/oauth/callback": {"post": open},
        }});
        declare(&mut spec);
        let header = |p: &str, m: &str| spec["paths"][p][m]["parameters"][0]["name"].as_str().map(str::to_owned);
        assert_eq!(header("/a", "post").as_deref(), Some("Idempotency-Key"));
        assert_eq!(header("/a", "patch").as_deref(), Some("Idempotency-Key"));
        assert_eq!(header("/a", "get"), None);
        assert_eq!(header("/a", "delete"), None);
        assert_eq!(header("/oauth/callback", "post"), None);
    }
}
