//! Optional properties may be null. poem-openapi writes an `Option<T>` field as `null` when it
//! is `None` (unless the field skips it), and reads `null` as `None`, but declares the property
//! as a plain `T`: a generated client then rejects `"suggested_fix": null` (Composio's errors)
//! or `"tools": null` (Klavis's server list), which the vendors send too. So every property that
//! is not required is declared nullable, which is what the wire does in both directions.

use serde_json::{Map, Value, json};

pub fn mark_optional_properties(spec: &mut Value) {
    let Some(schemas) = spec.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    for schema in schemas.values_mut() {
        mark_object(schema);
    }
}

fn mark_object(schema: &mut Value) {
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { return };
    for (name, property) in properties.iter_mut() {
        // A property with a default is a plain value the parser fills in, not an `Option`.
        if !required.contains(name) && property.get("default").is_none() {
            make_nullable(property);
        }
    }
}

/// OpenAPI 3.0 ignores siblings of `$ref`, so a reference is wrapped in `allOf` first.
fn make_nullable(property: &mut Value) {
    let Some(fields) = property.as_object_mut() else { return };
    if let Some(reference) = fields.remove("$ref") {
        fields.insert("allOf".into(), json!([{ "$ref": reference }]));
    }
    // `{}` (any value) already admits null; `nullable` without `type` means nothing in 3.0.
    if has_type(fields) {
        fields.insert("nullable".into(), Value::Bool(true));
    }
}

fn has_type(fields: &Map<String, Value>) -> bool {
    ["type", "allOf", "oneOf", "anyOf", "enum"].iter().any(|k| fields.contains_key(*k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_properties_become_nullable_and_required_ones_stay_as_they_are() {
        let mut spec = json!({"components": {"schemas": {"E": {
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": {"type": "string"},
                "suggested_fix": {"type": "string"},
                "tool": {"$ref": "#/components/schemas/T"},
                "input": {}
            }
        }}}});
        mark_optional_properties(&mut spec);
        let properties = &spec["components"]["schemas"]["E"]["properties"];
        assert_eq!(properties["message"], json!({"type": "string"}));
        assert_eq!(properties["suggested_fix"], json!({"type": "string", "nullable": true}));
        assert_eq!(properties["tool"], json!({"allOf": [{"$ref": "#/components/schemas/T"}], "nullable": true}));
        assert_eq!(properties["input"], json!({}));
    }
}
