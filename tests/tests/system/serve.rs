//! The binary itself: `serve` on an empty database, and settings errors.

use crate::support::{ServeProcess, TestDatabase, process::binary};
use serde_json::Value;
use services::secrets::MasterKey;
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test]
async fn serve_on_an_empty_database_applies_the_migrations_and_becomes_ready() {
    let db = TestDatabase::create().await;
    let serve =
        ServeProcess::start(&[("DATABASE_URL", &db.url), ("PROVISIONER_MASTER_KEY", &MasterKey::generate_base64())]);
    let http = reqwest::Client::new();

    let deadline = Instant::now() + Duration::from_secs(30);
    let readiness = loop {
        let response = http.get(format!("{}/ready", serve.base_url)).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "not ready after 30 s: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(readiness["status"], "ready");
    assert_eq!(readiness["migrations"]["ok"], true);
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(applied as usize, services::store::MIGRATOR.iter().count());
    let health = http.get(format!("{}/health", serve.base_url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

fn serve_fails_with(env: &[(&str, &str)]) -> String {
    let output = Command::new(binary()).arg("serve").env_clear().envs(env.iter().copied()).output().unwrap();
    assert!(!output.status.success(), "serve started with {env:?}");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn a_missing_or_malformed_setting_stops_serve_with_its_name() {
    let key = MasterKey::generate_base64();
    let db = "postgres://user:hunter2@127.0.0.1:1/db";
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("PROVISIONER_MASTER_KEY", &key)], "DATABASE_URL"),
        (&[("DATABASE_URL", db)], "PROVISIONER_MASTER_KEY"),
        (&[("DATABASE_URL", db), ("PROVISIONER_MASTER_KEY", "dG9vIHNob3J0")], "PROVISIONER_MASTER_KEY"),
        (
            &[("DATABASE_URL", db), ("PROVISIONER_MASTER_KEY", &key), ("PROVISIONER_LISTEN", "nowhere")],
            "PROVISIONER_LISTEN",
        ),
        (&[("DATABASE_URL", db), ("PROVISIONER_MASTER_KEY", &key), ("NATS_URL", "http://x")], "NATS_URL"),
    ];
    for (env, setting) in cases {
        let stderr = serve_fails_with(env);
        assert!(stderr.contains(setting), "{setting} not named: {stderr}");
        assert!(!stderr.contains("hunter2"), "a password was echoed: {stderr}");
        assert!(!stderr.contains("dG9vIHNob3J0"), "the master key was echoed: {stderr}");
    }
}
