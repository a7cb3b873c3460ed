//! Issue 13, item 5: a gateway session opened on one replica goes on on another, with no
//! sticky routing, and a delete on one replica ends the session on every one. Two real
//! `provisioner serve` processes over one database, one master key and one upstreams file.

use crate::support::mcp::{Session, Upstream};
use crate::support::{ServeProcess, TestDatabase, run_cli};
use serde_json::{Value, json};
use services::secrets::MasterKey;

struct Replicas {
    a: ServeProcess,
    b: ServeProcess,
    key: String,
    _upstreams_file: tempfile_path::TempFile,
}

mod tempfile_path {
    /// A file removed when dropped.
    pub struct TempFile(pub std::path::PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

async fn two_replicas(db: &TestDatabase, upstream: &Upstream) -> Replicas {
    let env = [("DATABASE_URL", db.url.as_str())];
    let project = run_cli(&["project", "create", "Replicas"], &env).await.stdout.trim().to_owned();
    let key = run_cli(&["key", "create", "--project", &project], &env).await.stdout.trim().to_owned();
    let path = std::env::temp_dir().join(format!("upstreams-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, format!("[github]\nurl = \"{}\"\n", upstream.url)).unwrap();
    let master = MasterKey::generate_base64();
    let start = || {
        ServeProcess::start(&[
            ("DATABASE_URL", &db.url),
            ("PROVISIONER_MASTER_KEY", &master),
            ("PROVISIONER_UPSTREAMS", path.to_str().unwrap()),
        ])
    };
    let (a, b) = (start(), start());
    Replicas { a, b, key, _upstreams_file: tempfile_path::TempFile(path) }
}

async fn klavis(replica: &ServeProcess, key: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", replica.base_url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_on_one_replica_goes_on_on_another_and_a_delete_ends_it_on_both() {
    // Arrange: two replicas; an authenticated GitHub instance made through replica A.
    let db = TestDatabase::create().await;
    let upstream = Upstream::start().await;
    let replicas = two_replicas(&db, &upstream).await;
    let created = klavis(
        &replicas.a,
        &replicas.key,
        "/mcp-server/instance/create",
        json!({"serverName": "GitHub", "userId": "alice"}),
    )
    .await;
    let instance_id = created["instanceId"].as_str().unwrap().to_owned();
    klavis(
        &replicas.a,
        &replicas.key,
        "/mcp-server/instance/set-auth",
        json!({"instanceId": instance_id, "authData": {"token": "alice-token"}}),
    )
    .await;
    let url_on = |replica: &ServeProcess| format!("{}/mcp/?instance_id={instance_id}", replica.base_url);

    // Act: initialize on A, then go on on B with the same session id.
    let (mut session, opened) = Session::open(&url_on(&replicas.a)).await;
    assert_eq!(opened.status, 200, "{opened:?}");
    assert!(session.session_id.is_some(), "the upstream's session comes back sealed");
    session.url = url_on(&replicas.b);
    let tools = session.list_tools().await;
    let whoami = session.call_tool("whoami", json!({})).await;

    // Assert: B serves A's session, with the instance's credential.
    assert_eq!(tools.status, 200, "{tools:?}");
    assert!(tools.tool_names().contains(&"whoami".to_owned()), "{tools:?}");
    let reported: Value = serde_json::from_str(whoami.text()).unwrap_or_else(|_| panic!("{whoami:?}"));
    assert_eq!(reported["headers"]["authorization"], "Bearer alice-token", "{reported}");

    // A delete through A ends the session on B: the delete answers once the views hold it, and
    // B reads the instance from them on every request, so B's very next answer is 404.
    let response = reqwest::Client::new()
        .delete(format!("{}/mcp-server/instance/{instance_id}", replicas.a.base_url))
        .bearer_auth(&replicas.key)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let answer = session.list_tools().await;
    assert_eq!(answer.status, 404, "B still serves a deleted instance: {answer:?}");
    assert_eq!(answer.error_code(), Some(-32001), "{answer:?}");
}
