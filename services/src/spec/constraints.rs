//! What the handlers check by hand. Identifiers, names and counts are read as plain strings, so
//! that a bad one gets the surface's own error (FastAPI's 422 for Klavis, Composio's envelope)
//! rather than poem-openapi's; the generated document then says `string` where the service
//! wants a UUID, a catalog name or a whole number. These rules declare what the parsers
//! accept, next to the parsers they describe (see each rule's source).

use crate::catalog::Catalog;
use serde_json::{Map, Value, json};

/// A path segment: the URI guard (`http::uri`) refuses encoded ASCII control characters, and
/// the handlers' `http::input` checks any other control character.
const PATH_TEXT: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// A query value: the URI guard refuses any control character (`char::is_control`).
const QUERY_TEXT: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// `domain::instance::UserId`: 1 to 256 characters, not blank, no control character.
const USER_ID: &str =
    "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// Which parameters a rule is about: the path starts with `prefix`, the parameter is named
/// `name` and sits `in` the path or the query.
struct Rule {
    prefix: &'static str,
    location: &'static str,
    name: &'static str,
    schema: fn() -> Value,
}

const RULES: &[Rule] = &[
    // Klavis: `klavis::convert::instance_id`, `user_id`, `server`.
    Rule { prefix: "/mcp-server/instance/", location: "path", name: "instanceId", schema: uuid },
    Rule { prefix: "/user/", location: "path", name: "userId", schema: user_id },
    Rule { prefix: "/user/", location: "path", name: "serverName", schema: catalog_name },
    // GAIA: `gaia::parse_server_id`, `check_project`.
    Rule { prefix: "/api/mcp/servers/", location: "path", name: "id", schema: uuid },
    Rule { prefix: "/api/mcp/servers", location: "query", name: "projectId", schema: uuid },
    // Composio: `ids::is_nanoid`, the MCP server ids (UUIDs), `paging`, `status_of`.
    Rule { prefix: "/api/v3/auth_configs/", location: "path", name: "nanoid", schema: auth_config_id },
    Rule { prefix: "/api/v3/auth_configs/", location: "path", name: "status", schema: auth_config_status },
    Rule { prefix: "/api/v3/connected_accounts/", location: "path", name: "nanoid", schema: connected_account_id },
    Rule { prefix: "/api/v3/mcp/", location: "path", name: "id", schema: uuid },
    Rule { prefix: "/api/v3/mcp/servers/", location: "path", name: "serverId", schema: uuid },
    Rule { prefix: "/api/v3/", location: "query", name: "limit", schema: count_to_1000 },
    Rule { prefix: "/oauth/", location: "query", name: "redirect_url", schema: http_url },
    // `audit::Subject`.
    Rule { prefix: "/api/v1/audit/", location: "path", name: "aggregateType", schema: aggregate_type },
    Rule { prefix: "/api/v3/", location: "query", name: "page_no", schema: page_number },
    Rule { prefix: "/api/v3/", location: "query", name: "order_by", schema: order_by },
    Rule { prefix: "/api/v3/", location: "query", name: "order_direction", schema: order_direction },
    Rule { prefix: "/api/v3/auth_configs", location: "query", name: "is_composio_managed", schema: true_or_false },
    // `composio::toolkits`: `check_slug`, `query::ToolkitQuery::parse`.
    Rule { prefix: "/api/v3/toolkits/", location: "path", name: "slug", schema: slug_text },
    Rule { prefix: "/api/v3/toolkits", location: "query", name: "managed_by", schema: managed_by },
    Rule { prefix: "/api/v3/toolkits", location: "query", name: "type", schema: toolkit_type },
    Rule { prefix: "/api/v3/toolkits", location: "query", name: "sort_by", schema: toolkit_sort },
    Rule { prefix: "/api/v3/toolkits", location: "query", name: "include_deprecated", schema: true_or_false },
    Rule { prefix: "/api/v3/toolkits", location: "query", name: "search", schema: param_text },
    Rule { prefix: "/api/v3/toolkits", location: "query", name: "category", schema: param_text },
    // `audit::parse_time`: RFC 3339.
    Rule { prefix: "/", location: "query", name: "as_of", schema: time },
    Rule { prefix: "/api/v1/audit/", location: "query", name: "since", schema: time },
    Rule { prefix: "/api/v1/audit/", location: "query", name: "until", schema: time },
];

fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

/// Which body field a rule is about: a property of a component schema.
struct FieldRule {
    schema_name: &'static str,
    property: &'static str,
    schema: fn() -> Value,
}

const fn field(schema_name: &'static str, property: &'static str, schema: fn() -> Value) -> FieldRule {
    FieldRule { schema_name, property, schema }
}

const FIELD_RULES: &[FieldRule] = &[
    // Klavis: `klavis::convert::server`, `user_id`, `instance_id`; the white-label names.
    field("CreateServerRequest", "serverName", catalog_name),
    field("CreateServerRequest", "userId", user_id),
    field("CreateSelfHostedServerRequest", "serverName", catalog_name),
    field("CreateSelfHostedServerRequest", "userId", user_id),
    field("SetUserAuthRequest", "serverName", catalog_name),
    field("SetUserAuthRequest", "userId", user_id),
    field("SetAuthRequest", "instanceId", uuid),
    field("SetAuthTokenRequest", "instanceId", uuid),
    field("ListToolsRequest", "serverUrl", http_url),
    field("CallToolRequest", "serverUrl", http_url),
    field("CallToolRequest", "toolName", non_empty),
    field("CreateWhiteLabelingRequest", "server_name", white_label_name),
    field("CreateWhiteLabelingRequest", "client_id", client_id),
    // GAIA: `check_project`, `domain::server::TimeoutMs`.
    field("GaiaCreateServerRequest", "projectId", uuid),
    field("GaiaCreateServerRequest", "name", gaia_name),
    field("GaiaUpdateServerRequest", "name", gaia_name),
    field("GaiaCreateServerRequest", "requestTimeout", timeout_ms),
    field("GaiaCreateServerRequest", "maxTotalTimeout", timeout_ms),
    field("GaiaUpdateServerRequest", "requestTimeout", timeout_ms),
    field("GaiaUpdateServerRequest", "maxTotalTimeout", timeout_ms),
    field("GaiaCreateServerRequest", "url", http_url),
    field("GaiaCreateServerRequest", "proxyUrl", http_url),
    field("GaiaUpdateServerRequest", "url", http_url),
    field("GaiaUpdateServerRequest", "proxyUrl", http_url),
    field("GaiaCreateServerRequest", "env", env),
    field("GaiaUpdateServerRequest", "env", env),
    // Composio: MCP server names, auth config ids, toolkit slugs, user ids.
    field("ComposioCreateMcpServerRequest", "name", mcp_server_name),
    field("ComposioCreateMcpServerRequest", "auth_config_ids", auth_config_ids),
    field("ComposioCreateCustomMcpServerRequest", "name", mcp_server_name),
    field("ComposioCreateCustomMcpServerRequest", "auth_config_ids", auth_config_ids),
    field("ComposioUpdateMcpServerRequest", "name", mcp_server_name),
    field("ComposioUpdateMcpServerRequest", "auth_config_ids", auth_config_ids),
    field("ComposioToolkitRef", "slug", toolkit_slug),
    field("ComposioAuthConfigRef", "id", auth_config_id),
    field("ComposioCreateLinkRequest", "auth_config_id", auth_config_id),
    field("ComposioCreateLinkRequest", "user_id", user_id),
    field("ComposioCreateLinkRequest", "callback_url", http_url),
    field("ComposioConnectionInput", "user_id", user_id),
    field("ComposioAuthConfigInput", "authScheme", auth_scheme),
    field("ComposioConnectionStateInput", "authScheme", auth_scheme),
    field("ComposioCreateInstanceRequest", "user_id", user_id),
    field("ComposioGenerateUrlsRequest", "mcp_server_id", uuid),
    // `project::RedirectHosts::parse`.
    field("ReplaceRedirectHosts", "hosts", redirect_hosts),
    field("EditRedirectHosts", "add", redirect_hosts),
    field("EditRedirectHosts", "remove", redirect_hosts),
];

/// `klavis`'s white-label client ids: 1 to 512 printable characters.
fn client_id() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 512, "pattern": PATH_TEXT })
}

/// `domain::server::ServerName`: 1 to 128 characters, not blank.
fn gaia_name() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 128, "pattern": USER_ID })
}

/// `domain::server::EnvName` keys: a letter or `_`, then letters, digits or `_`; the values are
/// secrets. `propertyNames` is JSON Schema's (OpenAPI 3.1); 3.0 tools skip it.
fn env() -> Value {
    json!({
        "type": "object",
        "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        "additionalProperties": {
            "type": "string",
            "format": "password",
            "writeOnly": true,
            "description": "A secret. Encrypted at rest; never returned (shown masked)."
        },
    })
}

fn auth_scheme() -> Value {
    json!({ "type": "string", "enum": domain::auth_config::AUTH_SCHEMES })
}

fn white_label_name() -> Value {
    json!({ "type": "string", "enum": crate::klavis::white_label_server_names() })
}

fn http_url() -> Value {
    json!({ "type": "string", "format": "uri", "pattern": "^https?://[^\\s/?#]+[^\\s]*$" })
}

fn non_empty() -> Value {
    json!({ "type": "string", "minLength": 1 })
}

fn timeout_ms() -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 1, "maximum": 3_600_000 })
}

/// `composio::mcp`: 4 to 30 letters, digits, spaces or hyphens.
fn mcp_server_name() -> Value {
    json!({ "type": "string", "pattern": "^[A-Za-z0-9 -]{4,30}$" })
}

fn auth_config_ids() -> Value {
    json!({ "type": "array", "items": auth_config_id() })
}

/// The catalog's slugs; `Catalog::for_toolkit` also takes names without punctuation.
fn toolkit_slug() -> Value {
    let slugs: Vec<&str> = Catalog::get().all().iter().map(|e| e.slug.as_str()).collect();
    json!({ "type": "string", "enum": slugs })
}

/// A host name with an optional port; a leading `*.` needs two labels or more after it. The
/// last label starts with a letter (else the name reads as an IPv4 address). IDNA names and
/// IP addresses are taken too.
fn redirect_hosts() -> Value {
    const LABEL: &str = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    const LAST: &str = "[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let host = format!("^({LABEL}\\.)*{LAST}(:[1-9][0-9]{{0,3}})?$");
    let wildcard = format!("^\\*\\.({LABEL}\\.)+{LAST}(:[1-9][0-9]{{0,3}})?$");
    json!({ "type": "array", "items": { "type": "string", "anyOf": [{ "pattern": host }, { "pattern": wildcard }] } })
}

fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}

fn user_id() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 256, "pattern": USER_ID })
}

/// The catalog's names as written there; the parser also takes any case, and `_` for a space.
fn catalog_name() -> Value {
    let names: Vec<&str> = Catalog::get().all().iter().map(|e| e.name.as_str()).collect();
    json!({ "type": "string", "enum": names })
}

fn auth_config_id() -> Value {
    json!({ "type": "string", "pattern": "^ac_[A-Za-z0-9]{12}$" })
}

fn connected_account_id() -> Value {
    json!({ "type": "string", "pattern": "^ca_[A-Za-z0-9]{12}$" })
}

fn auth_config_status() -> Value {
    json!({ "type": "string", "enum": ["ENABLED", "DISABLED"] })
}

/// `paging::count`: a whole number (`20.0` too) from 1 to 1000; empty means the default.
fn count_to_1000() -> Value {
    json!({ "type": "string", "pattern": "^([1-9][0-9]{0,2}(\\.0+)?|1000(\\.0+)?)?$" })
}

/// `paging::count` for page numbers (up to `i32::MAX`; declared up to 999999999).
fn page_number() -> Value {
    json!({ "type": "string", "pattern": "^([1-9][0-9]{0,8}(\\.0+)?)?$" })
}

fn aggregate_type() -> Value {
    json!({ "type": "string", "enum": crate::audit::AGGREGATE_TYPES })
}

/// `paging::order`: empty means the default.
fn order_by() -> Value {
    json!({ "type": "string", "enum": ["", "created_at", "updated_at"] })
}

fn order_direction() -> Value {
    json!({ "type": "string", "enum": ["", "asc", "desc"] })
}

/// `domain::auth_config::parse_toolkit`: 1 to 64 letters, digits, `_` or `-`, in any case.
fn slug_text() -> Value {
    json!({ "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" })
}

fn managed_by() -> Value {
    json!({ "type": "string", "enum": ["", "composio", "project", "all"] })
}

fn toolkit_type() -> Value {
    json!({ "type": "string", "enum": ["", "native", "custom", "all"] })
}

fn toolkit_sort() -> Value {
    json!({ "type": "string", "enum": ["", "usage", "alphabetically"] })
}

/// `composio::paging::search`: at most 256 characters on one line.
fn param_text() -> Value {
    json!({ "type": "string", "maxLength": domain::limits::PARAM_CHARS, "pattern": QUERY_TEXT })
}

fn true_or_false() -> Value {
    json!({ "type": "string", "enum": ["", "true", "false"] })
}

pub fn apply(spec: &mut Value) {
    constrain_fields(spec);
    constrain_parameters(spec);
}

/// `gaia::convert::headers`: a header is named by `name`, a token, or, when `name` is absent
/// or blank, by `key` (GAIA's docs).
fn custom_header_named(schema: &mut Map<String, Value>) {
    let by_name = json!({ "required": ["name"], "properties": { "name": header_name() } });
    let blank = json!({ "type": "string", "nullable": true, "pattern": "^\\s*$" });
    let by_key = json!({ "required": ["key"], "properties": { "key": header_name(), "name": blank } });
    schema.insert("anyOf".into(), json!([by_name, by_key]));
}

fn header_name() -> Value {
    json!({ "type": "string", "maxLength": 256, "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" })
}

/// A rule about a whole object: what its fields must hold together.
type ObjectRule = fn(&mut Map<String, Value>);

const OBJECT_RULES: &[(&str, ObjectRule)] = &[("GaiaCustomHeaderInput", custom_header_named)];

fn constrain_fields(spec: &mut Value) {
    for (name, rule) in OBJECT_RULES {
        if let Some(Value::Object(schema)) = spec.pointer_mut(&format!("/components/schemas/{name}")) {
            rule(schema);
        }
    }
    for rule in FIELD_RULES {
        let pointer = format!("/components/schemas/{}/properties/{}", rule.schema_name, rule.property);
        if let Some(Value::Object(schema)) = spec.pointer_mut(&pointer) {
            replace_keeping_notes(schema, (rule.schema)());
        }
    }
}

fn constrain_parameters(spec: &mut Value) {
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else { continue };
        for operation in operations.values_mut() {
            let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) else { continue };
            for parameter in parameters.iter_mut().filter_map(Value::as_object_mut) {
                constrain(path, parameter);
            }
        }
    }
}

fn constrain(path: &str, parameter: &mut Map<String, Value>) {
    let location = parameter.get("in").and_then(Value::as_str).unwrap_or_default().to_owned();
    let name = parameter.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let rule = RULES.iter().find(|r| path.starts_with(r.prefix) && r.location == location && r.name == name);
    let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut) else { return };
    match rule {
        Some(rule) => replace_keeping_notes(schema, (rule.schema)()),
        None => refuse_control_characters(schema, &location),
    }
}

/// The rule's schema, with the generated one's description and default.
fn replace_keeping_notes(schema: &mut Map<String, Value>, rule: Value) {
    let notes: Vec<(String, Value)> =
        ["description", "default"].iter().filter_map(|k| Some((k.to_string(), schema.get(*k)?.clone()))).collect();
    if let Value::Object(rule) = rule {
        *schema = rule;
    }
    schema.extend(notes);
}

/// Any other text parameter (or each item of a list): no control character, as the URI guard
/// enforces.
fn refuse_control_characters(schema: &mut Map<String, Value>, location: &str) {
    if let Some(Value::Object(items)) = schema.get_mut("items") {
        return refuse_control_characters(items, location);
    }
    let plain_text = schema.get("type") == Some(&json!("string"))
        && !["format", "pattern", "enum"].iter().any(|k| schema.contains_key(*k));
    if plain_text {
        let pattern = if location == "path" { PATH_TEXT } else { QUERY_TEXT };
        schema.insert("pattern".into(), json!(pattern));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(path: &str, location: &str, name: &str) -> Value {
        json!({"paths": {path: {"get": {"parameters": [
            {"in": location, "name": name, "schema": {"type": "string", "description": "d"}}
        ]}}}})
    }

    fn schema_of(spec: &Value, path: &str) -> Value {
        spec["paths"][path]["get"]["parameters"][0]["schema"].clone()
    }

    #[test]
    fn a_rule_replaces_the_schema_and_keeps_its_description() {
        let path = "/mcp-server/instance/{instanceId}";
        let mut spec = spec_with(path, "path", "instanceId");
        apply(&mut spec);
        assert_eq!(schema_of(&spec, path), json!({"type": "string", "format": "uuid", "description": "d"}));
    }

    #[test]
    fn other_text_parameters_refuse_control_characters() {
        let path = "/white-labeling/get/{client_id}";
        let mut spec = spec_with(path, "path", "client_id");
        apply(&mut spec);
        assert_eq!(schema_of(&spec, path)["pattern"], PATH_TEXT);
    }

    #[test]
    fn every_catalog_name_is_listed_for_a_server_name() {
        let names = catalog_name()["enum"].as_array().unwrap().len();
        assert_eq!(names, Catalog::get().all().len());
    }
}
