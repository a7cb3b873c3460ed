//! The Klavis user API: users appear with their first instance or credential; a user's
//! credential set before the instance makes the instance authenticated; deleting a user
//! deletes all their data.

use crate::klavis_instances::create;
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_user_credential_set_first_authenticates_the_instance_created_later() {
    let app = TestApp::spawn().await;
    let set = json!({"userId": "alice", "serverName": "github", "authData": {"token": "ghp_token"}});
    json_of(app.call(Method::POST, "/user/set-auth", Some(set)).await, 200).await;

    let id = create(&app, "GitHub", "alice").await["instanceId"].as_str().unwrap().to_owned();

    let instance = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{id}"), None).await, 200).await;
    assert_eq!(instance["isAuthenticated"], true);
    let auth = json_of(app.call(Method::GET, "/user/alice/auth/GitHub", None).await, 200).await;
    assert_eq!(auth["isAuthenticated"], true);
    assert_eq!(auth["authData"], json!({"token": "ghp_token"}));
    let integrations = json_of(app.call(Method::GET, "/user/alice/integrations", None).await, 200).await;
    assert_eq!(integrations, json!({"integrations": [{"name": "GitHub", "is_authenticated": true}]}));

    json_of(app.call(Method::DELETE, "/user/alice/auth/GITHUB", None).await, 200).await;
    let auth = json_of(app.call(Method::GET, "/user/alice/auth/GitHub", None).await, 200).await;
    assert_eq!((auth["isAuthenticated"].clone(), auth["success"].clone()), (json!(false), json!(false)));
}

#[tokio::test]
async fn users_are_listed_paged_and_deleted_with_all_their_data() {
    let app = TestApp::spawn().await;
    for user in ["u1", "u2", "u3"] {
        create(&app, "Slack", user).await;
    }
    let doomed = create(&app, "Gmail", "u2").await["instanceId"].as_str().unwrap().to_owned();
    let set = json!({"instanceId": doomed, "authData": {"token": "t"}});
    json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;

    let page = json_of(app.call(Method::GET, "/user/?page_size=2&page_number=1", None).await, 200).await;
    assert_eq!(
        (page["totalCount"].clone(), page["totalPages"].clone(), page["pageSize"].clone()),
        (json!(3), json!(2), json!(2))
    );
    assert_eq!(page["users"].as_array().unwrap().len(), 2);
    let user = json_of(app.call(Method::GET, "/user/u2", None).await, 200).await;
    assert_eq!(user["userId"], "u2");
    assert!(user["createdAt"].is_string() && user["lastUsedAt"].is_string());

    let deleted = json_of(app.call(Method::DELETE, "/user/u2", None).await, 200).await;
    assert_eq!(deleted["success"], true);

    json_of(app.call(Method::GET, "/user/u2", None).await, 404).await;
    json_of(app.call(Method::GET, &format!("/mcp-server/instance/{doomed}"), None).await, 404).await;
    // Deleted is unknown, for every read of the user.
    json_of(app.call(Method::GET, "/user/u2/integrations", None).await, 404).await;
    json_of(app.call(Method::GET, "/user/u2/auth/GitHub", None).await, 404).await;
    assert_eq!(app.secret_key_count().await, 0, "the deleted user's credential key is destroyed");
    let page = json_of(app.call(Method::GET, "/user/", None).await, 200).await;
    assert_eq!(page["totalCount"], 2);
    json_of(app.call(Method::DELETE, "/user/u2", None).await, 404).await;
}

#[tokio::test]
async fn a_white_label_app_is_saved_by_client_id_and_never_shows_its_secret() {
    let app = TestApp::spawn().await;
    let body = json!({"client_id": "my-client", "client_secret": "wl-secret-1", "server_name": "Gmail", "callback_url": "https://app.example.com/cb"});
    let saved = json_of(app.call(Method::POST, "/white-labeling/create", Some(body)).await, 200).await;
    assert_eq!(saved["success"], true);
    assert_eq!(saved["data"]["client_secret"], "********");
    assert_eq!(saved["data"]["provider"], "gmail");

    let again = json!({"client_id": "my-client", "client_secret": "wl-secret-2", "server_name": "Gmail"});
    json_of(app.call(Method::POST, "/white-labeling/create", Some(again)).await, 200).await;
    let got = json_of(app.call(Method::GET, "/white-labeling/get/my-client", None).await, 200).await;
    assert_eq!(got["data"]["callback_url"], json!(null), "an upsert replaces the settings");
    assert!(!got.to_string().contains("wl-secret"));

    json_of(app.call(Method::GET, "/white-labeling/get/unknown-client", None).await, 404).await;
    let (_, other_key) = app.new_project("Other").await;
    json_of(app.call_as(&other_key, Method::GET, "/white-labeling/get/my-client", None).await, 404).await;
}
