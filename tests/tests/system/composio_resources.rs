//! Composio's MCP servers, auth configs and connected accounts: create, read, change, list
//! (filters and both paginations), delete.

use crate::support::composio::{api_key_auth_config, composio_error, connect};
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn mcp_servers_take_their_toolkits_from_their_auth_configs() {
    let app = TestApp::spawn().await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    let github = api_key_auth_config(&app, "github").await;
    let body = json!({"name": "Mail tools", "auth_config_ids": [gmail], "allowed_tools": ["GMAIL_FETCH_EMAILS"],
                      "no_auth_apps": ["exa"], "managed_auth_via_composio": true});
    let created = json_of(app.composio(Method::POST, "/api/v3/mcp/servers", Some(body)).await, 201).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["toolkits"], json!(["gmail", "exa"]));
    assert_eq!(created["allowed_tools"], json!(["GMAIL_FETCH_EMAILS"]));
    assert_eq!(created["managed_auth_via_composio"], true);
    assert_eq!(created["mcp_url"], format!("{}/v3/mcp/{id}", app.base_url));
    assert!(created.get("deleted").is_none(), "{created}");

    let got = json_of(app.composio(Method::GET, &format!("/api/v3/mcp/{id}"), None).await, 200).await;
    assert_eq!(got["deleted"], false);
    assert_eq!(got["name"], "Mail tools");

    // New auth configs bring their toolkits; lists are replaced.
    let patch = json!({"auth_config_ids": [gmail, github], "name": "Mail and code"});
    let changed = json_of(app.composio(Method::PATCH, &format!("/api/v3/mcp/{id}"), Some(patch)).await, 200).await;
    assert_eq!(changed["toolkits"], json!(["gmail", "github", "exa"]));
    assert_eq!(changed["name"], "Mail and code");
    assert_eq!(changed["allowed_tools"], json!(["GMAIL_FETCH_EMAILS"]), "fields not sent stay");

    // An auth config of nowhere: 404 naming it, nothing changed.
    let events = app.event_count().await;
    let bad = json!({"auth_config_ids": ["ac_000000000000"]});
    let error = composio_error(
        app.composio(Method::PATCH, &format!("/api/v3/mcp/{id}"), Some(bad)).await,
        404,
        "AuthConfig_ResourceNotFound",
    )
    .await;
    assert!(error["errors"][0].as_str().unwrap().contains("ac_000000000000"), "{error}");
    assert_eq!(app.event_count().await, events);

    // Names are unique in the project.
    let taken = json!({"name": "mail and code", "auth_config_ids": [gmail]});
    composio_error(app.composio(Method::POST, "/api/v3/mcp/servers", Some(taken)).await, 409, "McpServer_NameConflict")
        .await;

    // The custom create answers the reduced object and takes `custom_tools` for `allowed_tools`.
    let custom = json!({"name": "Custom one", "toolkits": ["notion"], "auth_config_ids": [github], "custom_tools": ["GITHUB_GET_REPO"]});
    let custom = json_of(app.composio(Method::POST, "/api/v3/mcp/servers/custom", Some(custom)).await, 201).await;
    assert_eq!(custom["allowed_tools"], json!(["GITHUB_GET_REPO"]));
    assert!(custom.get("toolkits").is_none() && custom["commands"]["cursor"].is_string(), "{custom}");

    // Lists: filters and page numbers.
    let all = json_of(app.composio(Method::GET, "/api/v3/mcp/servers?limit=1", None).await, 200).await;
    assert_eq!((all["total_pages"].as_i64(), all["current_page"].as_i64()), (Some(2), Some(1)), "{all}");
    assert_eq!(all["items"][0]["name"], "Custom one", "most recently updated first");
    let second = json_of(app.composio(Method::GET, "/api/v3/mcp/servers?limit=1&page_no=2", None).await, 200).await;
    assert_eq!(second["items"][0]["name"], "Mail and code");
    let by_toolkit = json_of(app.composio(Method::GET, "/api/v3/mcp/servers?toolkits=notion", None).await, 200).await;
    assert_eq!(by_toolkit["items"].as_array().unwrap().len(), 1, "{by_toolkit}");
    let by_name = json_of(app.composio(Method::GET, "/api/v3/mcp/servers?name=MAIL", None).await, 200).await;
    assert_eq!(by_name["items"][0]["id"], id.as_str());
    let by_config = format!("/api/v3/mcp/servers?auth_config_ids={gmail}&order_by=created_at&order_direction=asc");
    assert_eq!(
        json_of(app.composio(Method::GET, &by_config, None).await, 200).await["items"].as_array().unwrap().len(),
        1
    );

    // Generate: singular selectors, no instance made.
    let account = connect(&app, &gmail, "alice").await;
    let body = json!({"mcp_server_id": id, "user_ids": ["alice"], "connected_account_ids": [account], "managed_auth_by_composio": true});
    let urls = json_of(app.composio(Method::POST, "/api/v3/mcp/servers/generate", Some(body)).await, 200).await;
    assert_eq!(urls["mcp_url"], format!("{}/v3/mcp/{id}", app.base_url));
    assert_eq!(
        urls["user_ids_url"][0],
        format!("{}/v3/mcp/{id}?include_composio_helper_actions=true&user_id=alice", app.base_url)
    );
    assert_eq!(
        urls["connected_account_urls"][0],
        format!("{}/v3/mcp/{id}?include_composio_helper_actions=true&connected_account_id={account}", app.base_url)
    );
    let unknown = json!({"mcp_server_id": id, "connected_account_ids": ["ca_000000000000"]});
    composio_error(
        app.composio(Method::POST, "/api/v3/mcp/servers/generate", Some(unknown)).await,
        404,
        "ConnectedAccount_ResourceNotFound",
    )
    .await;

    // Delete: soft, then gone from reads.
    let deleted = json_of(app.composio(Method::DELETE, &format!("/api/v3/mcp/{id}"), None).await, 200).await;
    assert_eq!(deleted, json!({"id": id, "deleted": true}));
    composio_error(
        app.composio(Method::GET, &format!("/api/v3/mcp/{id}"), None).await,
        404,
        "McpServer_ResourceNotFound",
    )
    .await;
    let path = format!("/api/v3/mcp/servers/{id}/instances");
    composio_error(
        app.composio(Method::POST, &path, Some(json!({"user_id": "alice"}))).await,
        404,
        "McpServer_ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn auth_configs_are_listed_by_cursor_and_changed_in_part() {
    let app = TestApp::spawn().await;
    let managed = json!({"toolkit": {"slug": "Gmail"}});
    let managed = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(managed)).await, 201).await;
    assert_eq!(managed["toolkit"]["slug"], "gmail");
    assert_eq!(managed["auth_config"]["auth_scheme"], "OAUTH2");
    let managed_id = managed["auth_config"]["id"].as_str().unwrap().to_owned();
    let custom = json!({"toolkit": {"slug": "jira"}, "auth_config": {"type": "use_custom_auth", "authScheme": "BASIC", "name": "Jira basic",
        "credentials": {"subdomain": "acme", "password_hint": "never shown"},
        "proxy_config": {"proxy_url": "https://proxy.example.com", "proxy_auth_key": "proxy-secret"}}});
    let custom = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(custom)).await, 201).await;
    let custom_id = custom["auth_config"]["id"].as_str().unwrap().to_owned();
    api_key_auth_config(&app, "github").await;

    let got = json_of(app.composio(Method::GET, &format!("/api/v3/auth_configs/{custom_id}"), None).await, 200).await;
    assert_eq!(got["type"], "custom");
    assert_eq!(got["credentials"], json!({"subdomain": "acme", "password_hint": "REDACTED"}));
    assert_eq!(got["proxy_config"], json!({"proxy_url": "https://proxy.example.com", "proxy_auth_key": "REDACTED"}));
    assert_eq!(got["status"], "ENABLED");

    // Three configs, two a page.
    let first = json_of(app.composio(Method::GET, "/api/v3/auth_configs?limit=2", None).await, 200).await;
    assert_eq!((first["total_items"].as_i64(), first["total_pages"].as_i64()), (Some(3), Some(2)), "{first}");
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second =
        json_of(app.composio(Method::GET, &format!("/api/v3/auth_configs?cursor={cursor}"), None).await, 200).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["current_page"], 2);
    assert!(second["next_cursor"].is_null());
    let jira =
        json_of(app.composio(Method::GET, "/api/v3/auth_configs?toolkit_slug=jira,notion", None).await, 200).await;
    assert_eq!(jira["items"][0]["id"], custom_id.as_str());
    let searched = json_of(app.composio(Method::GET, "/api/v3/auth_configs?search=BASIC", None).await, 200).await;
    assert_eq!(searched["total_items"], 1);
    let managed_only =
        json_of(app.composio(Method::GET, "/api/v3/auth_configs?is_composio_managed=true", None).await, 200).await;
    assert_eq!(managed_only["items"][0]["id"], managed_id.as_str());

    // A partial change keeps the rest; the type must be the config's own.
    let patch = json!({"type": "custom", "name": "Jira (renamed)"});
    json_of(app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{custom_id}"), Some(patch)).await, 200).await;
    let got = json_of(app.composio(Method::GET, &format!("/api/v3/auth_configs/{custom_id}"), None).await, 200).await;
    assert_eq!(got["name"], "Jira (renamed)");
    assert_eq!(got["proxy_config"]["proxy_auth_key"], "REDACTED");
    let wrong = json!({"type": "default", "scopes": "a,b"});
    composio_error(
        app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{custom_id}"), Some(wrong)).await,
        400,
        "Request_ValidationError",
    )
    .await;
    let scopes = json!({"type": "default", "scopes": "mail.read,mail.send"});
    json_of(app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{managed_id}"), Some(scopes)).await, 200).await;
    let got = json_of(app.composio(Method::GET, &format!("/api/v3/auth_configs/{managed_id}"), None).await, 200).await;
    assert_eq!(got["credentials"]["scopes"], json!(["mail.read", "mail.send"]));

    // Delete: soft, its credentials' key destroyed.
    let keys_before = app.secret_key_count().await;
    json_of(app.composio(Method::DELETE, &format!("/api/v3/auth_configs/{custom_id}"), None).await, 200).await;
    assert_eq!(app.secret_key_count().await, keys_before - 1, "the config's data key is shredded");
    composio_error(
        app.composio(Method::GET, &format!("/api/v3/auth_configs/{custom_id}"), None).await,
        404,
        "AuthConfig_ResourceNotFound",
    )
    .await;
}

#[tokio::test]
async fn connected_accounts_are_filtered_by_comma_separated_lists() {
    let app = TestApp::spawn().await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    let github = api_key_auth_config(&app, "github").await;
    let a1 = connect(&app, &gmail, "alice").await;
    let a2 = connect(&app, &github, "alice").await;
    let b1 = connect(&app, &gmail, "bob").await;
    let path = format!("/api/v3/connected_accounts/{b1}/status");
    json_of(app.composio(Method::PATCH, &path, Some(json!({"enabled": false}))).await, 200).await;

    let list = |query: &str| format!("/api/v3/connected_accounts?{query}");
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    let alice = json_of(app.composio(Method::GET, &list("user_ids=alice&order_direction=asc"), None).await, 200).await;
    assert_eq!(ids(&alice), [a1.clone(), a2.clone()]);
    let inactive = json_of(app.composio(Method::GET, &list("statuses=INACTIVE"), None).await, 200).await;
    assert_eq!(ids(&inactive), std::slice::from_ref(&b1));
    assert_eq!(inactive["items"][0]["is_disabled"], true);
    let gmail_accounts = json_of(
        app.composio(Method::GET, &list(&format!("auth_config_ids={gmail}&toolkit_slugs=gmail,slack")), None).await,
        200,
    )
    .await;
    assert_eq!(gmail_accounts["total_items"], 2);
    let picked =
        json_of(app.composio(Method::GET, &list(&format!("connected_account_ids={a2},{b1}&limit=1")), None).await, 200)
            .await;
    assert_eq!((picked["total_items"].as_i64(), picked["total_pages"].as_i64()), (Some(2), Some(2)));
    assert!(picked["next_cursor"].is_string());

    // Read and delete.
    let got = json_of(app.composio(Method::GET, &format!("/api/v3/connected_accounts/{a1}"), None).await, 200).await;
    assert_eq!(got["auth_config"]["id"], gmail.as_str());
    assert_eq!(got["toolkit"]["slug"], "gmail");
    assert_eq!(got["state"], json!({"authScheme": "API_KEY", "val": {"status": "ACTIVE"}}), "never the credential");
    let deleted =
        json_of(app.composio(Method::DELETE, &format!("/api/v3/connected_accounts/{a1}"), None).await, 200).await;
    assert_eq!(deleted, json!({"success": true}));
    let after = json_of(app.composio(Method::GET, &list("user_ids=alice"), None).await, 200).await;
    assert_eq!(ids(&after), [a2]);
}
