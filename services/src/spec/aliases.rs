//! `/api/v3.1/...`: Composio's v3.1 paths, served by the `/api/v3/...` routes
//! (`composio::version_alias` rewrites the URI before routing). The routes exist once, so the
//! document lists each v3 operation a second time under the v3.1 prefix, with its own
//! operation id (ids are unique in a document).

use serde_json::Value;

const V3: &str = "/api/v3/";
const V3_1: &str = "/api/v3.1/";

pub fn add_v3_1(spec: &mut Value) {
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else { return };
    let aliases: Vec<(String, Value)> = paths
        .iter()
        .filter_map(|(path, item)| Some((format!("{V3_1}{}", path.strip_prefix(V3)?), alias_of(item))))
        .collect();
    paths.extend(aliases);
}

fn alias_of(item: &Value) -> Value {
    let mut item = item.clone();
    if let Some(operations) = item.as_object_mut() {
        for operation in operations.values_mut() {
            if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                let id = format!("{id}V3_1");
                operation["operationId"] = Value::String(id);
            }
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_v3_path_is_listed_again_under_v3_1_with_its_own_operation_id() {
        let mut spec = json!({"paths": {
            "/api/v3/mcp/{id}": {"get": {"operationId": "composioGetMcpServer"}},
            "/mcp-server/servers": {"get": {"operationId": "servers"}}
        }});
        add_v3_1(&mut spec);
        let paths = spec["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 3);
        assert_eq!(paths["/api/v3.1/mcp/{id}"]["get"]["operationId"], "composioGetMcpServerV3_1");
        assert_eq!(paths["/api/v3/mcp/{id}"]["get"]["operationId"], "composioGetMcpServer");
    }
}
