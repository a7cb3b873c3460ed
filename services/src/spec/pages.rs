//! The browser-facing routes (`/oauth/{provider}/authorize`, `/oauth/{provider}/callback`,
//! Composio's `/connected_accounts/link/{token}`) answer the flow's own outcomes with an HTML
//! page, but a request they cannot parse (a missing or malformed parameter, a control
//! character in the URI) is refused before the handler runs, by the surface's error renderer,
//! in the surface's JSON error format. Their error responses declare both.

use serde_json::{Value, json};

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

pub fn declare_json_errors(spec: &mut Value) {
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else { continue };
        for operation in operations.values_mut() {
            for range in ["4XX", "5XX"] {
                if let Some(content) = operation.pointer_mut(&format!("/responses/{range}/content")) {
                    declare_json_beside_html(content, path);
                }
            }
        }
    }
}

fn declare_json_beside_html(content: &mut Value, path: &str) {
    let Some(types) = content.as_object_mut() else { return };
    if types.contains_key(HTML) && !types.contains_key(JSON) {
        types.insert(JSON.into(), json!({ "schema": error_schema(path) }));
    }
}

/// The error body of the surface the path belongs to.
fn error_schema(path: &str) -> Value {
    if path.starts_with("/api/v3/") {
        json!({ "$ref": "#/components/schemas/ComposioError" })
    } else {
        // Klavis: a 422 lists the fields at fault, any other error is one sentence.
        json!({ "anyOf": [
            { "$ref": "#/components/schemas/HttpValidationError" },
            { "$ref": "#/components/schemas/Detail" }
        ] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_html_error_response_also_declares_the_surface_json_error() {
        let html = json!({ HTML: { "schema": { "type": "string" } } });
        let mut spec = json!({"paths": {
            "/oauth/{provider}/authorize": {"get": {"responses": {"4XX": {"content": html.clone()}}}},
            "/api/v3/connected_accounts/link/{token}": {"get": {"responses": {"5XX": {"content": html}}}}
        }});
        declare_json_errors(&mut spec);
        let oauth = &spec["paths"]["/oauth/{provider}/authorize"]["get"]["responses"]["4XX"]["content"];
        assert_eq!(oauth[HTML]["schema"]["type"], "string");
        assert_eq!(oauth[JSON]["schema"]["anyOf"][1]["$ref"], "#/components/schemas/Detail");
        let link = &spec["paths"]["/api/v3/connected_accounts/link/{token}"]["get"]["responses"]["5XX"]["content"];
        assert_eq!(link[JSON]["schema"]["$ref"], "#/components/schemas/ComposioError");
    }
}
