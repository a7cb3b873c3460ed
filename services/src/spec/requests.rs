//! What every request body obeys beyond its fields' types. The body parser (`http::body`)
//! refuses unknown fields of the types that deny them (poem-openapi's `deny_unknown_fields`
//! is not written into the document), and the handlers read text fields with
//! `http::input::line` and the like, which refuse control characters. Secrets (`password`
//! format) are taken as sent.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The types declared `deny_unknown_fields` (klavis::wire, composio::connected_accounts::wire).
const CLOSED: &[&str] = &[
    "UpdateServerInstanceRequest",
    "AuthDataInput",
    "ComposioUpdateConnectedAccountRequest",
    "ComposioUpdateConnectionInput",
    "ComposioUpdateConnectionStateInput",
];

/// No control character (`char::is_control`).
const TEXT: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

pub fn declare(spec: &mut Value) {
    let names = request_schemas(spec);
    let Some(schemas) = spec.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    for name in CLOSED {
        if let Some(schema) = schemas.get_mut(*name).and_then(Value::as_object_mut) {
            schema.insert("additionalProperties".into(), Value::Bool(false));
        }
    }
    for name in names {
        if let Some(properties) = schemas.get_mut(&name).and_then(|s| s.get_mut("properties")) {
            properties.as_object_mut().into_iter().flat_map(|p| p.values_mut()).for_each(refuse_control_characters);
        }
    }
}

/// Every component schema a request body refers to, directly or through another.
fn request_schemas(spec: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending: Vec<String> = Vec::new();
    if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
        for operation in paths.values().filter_map(Value::as_object).flat_map(|o| o.values()) {
            if let Some(body) = operation.get("requestBody") {
                references(body, &mut pending);
            }
        }
    }
    while let Some(name) = pending.pop() {
        if found.insert(name.clone())
            && let Some(schema) = spec.pointer(&format!("/components/schemas/{name}"))
        {
            references(schema, &mut pending);
        }
    }
    found
}

fn references(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            if let Some(name) = fields.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
                into.push(name.to_owned());
            }
            fields.values().for_each(|v| references(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, into)),
        _ => {}
    }
}

fn refuse_control_characters(property: &mut Value) {
    let Some(fields) = property.as_object_mut() else { return };
    if fields.get("type") == Some(&json!("array"))
        && let Some(items) = fields.get_mut("items")
    {
        refuse_control_characters(items);
    } else if is_plain_text(fields) {
        fields.insert("pattern".into(), json!(TEXT));
    }
}

fn is_plain_text(fields: &Map<String, Value>) -> bool {
    fields.get("type") == Some(&json!("string"))
        && !["format", "pattern", "enum"].iter().any(|k| fields.contains_key(*k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_text_refuses_control_characters_and_closed_types_say_so() {
        let mut spec = json!({
            "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/UpdateServerInstanceRequest"}}}}}}},
            "components": {"schemas": {
                "UpdateServerInstanceRequest": {"type": "object", "properties": {
                    "name": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "secret": {"type": "string", "format": "password"},
                    "nested": {"$ref": "#/components/schemas/Nested"}
                }},
                "Nested": {"type": "object", "properties": {"note": {"type": "string"}}},
                "Reply": {"type": "object", "properties": {"note": {"type": "string"}}}
            }}
        });
        declare(&mut spec);
        let schemas = &spec["components"]["schemas"];
        let request = &schemas["UpdateServerInstanceRequest"];
        assert_eq!(request["additionalProperties"], false);
        assert_eq!(request["properties"]["name"]["pattern"], TEXT);
        assert_eq!(request["properties"]["tags"]["items"]["pattern"], TEXT);
        assert!(request["properties"]["secret"].get("pattern").is_none());
        assert_eq!(schemas["Nested"]["properties"]["note"]["pattern"], TEXT);
        assert!(schemas["Reply"]["properties"]["note"].get("pattern").is_none());
    }
}
