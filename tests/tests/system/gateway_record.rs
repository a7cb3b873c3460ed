//! The MCP gateway on the record: every session opened or closed and every `tools/call` is in
//! `gateway_calls` before its answer reaches the client, with its outcome and never its
//! arguments or results; the records reach NATS exactly once (a publisher killed mid-way, two
//! publishers); the audit CLI and API show them, scoped to the caller's project.

use crate::support::composio::{api_key_auth_config, api_key_connection, mcp_server};
use crate::support::mcp::{Answer, Session, Upstream, dead_url};
use crate::support::nats::NatsServer;
use crate::support::relay::{connect, eventually};
use crate::support::{RelayProcess, TestApp, json_of, run_cli};
use async_nats::jetstream::consumer::{AckPolicy, pull};
use events::gateway::{GatewayRecord, Outcome, RecordKind, Target};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use services::gateway::Upstreams;
use services::nats::RelaySettings;
use services::startup::Settings;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A secret a client sends as a tool argument: never on the record.
const SECRET_ARGUMENT: &str = "ARG-SECRET-6f1d2c";
/// The instance's token: whoami's result quotes it, so it must not be on the record either.
const TOKEN: &str = "token-RESULT-SECRET-77";

/// GitHub bound to the upstream, Slack to an address where nothing listens.
fn bindings(upstream: &Upstream) -> impl FnOnce(&mut Settings) {
    let text = format!("[github]\nurl = \"{}\"\n\n[slack]\nurl = \"{}\"\n", upstream.url, dead_url());
    let upstreams = Upstreams::parse(&text).expect("the test's upstreams file is valid");
    move |settings| settings.gateway.upstreams = upstreams
}

fn with_nats(url: String) -> impl FnOnce(&mut Settings) {
    move |settings| {
        settings.relay = Some(RelaySettings { nats_urls: vec![url], replicas: 1, ..RelaySettings::default() })
    }
}

/// An instance of `server` for `user`, authenticated with [`TOKEN`] unless `token` is false.
async fn instance(app: &TestApp, server: &str, user: &str, token: bool) -> Value {
    let body = json!({"serverName": server, "userId": user});
    let created = json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await;
    if token {
        let set = json!({"instanceId": created["instanceId"], "authData": {"token": TOKEN}});
        json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;
    }
    created
}

fn url_of(created: &Value) -> &str {
    created["serverUrl"].as_str().unwrap()
}

/// One `tools/call` with `x-request-id: request_id`.
async fn call(session: &mut Session, request_id: &str, tool: &str, arguments: Value) -> Answer {
    session.extra = vec![("x-request-id".into(), request_id.into())];
    let answer = session.call_tool(tool, arguments).await;
    session.extra.clear();
    answer
}

/// The records of a request id, read from the table right away (no waiting).
async fn records_of(app: &TestApp, request_id: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT to_jsonb(c) - 'transaction_id' FROM gateway_calls c WHERE request_id = $1 ORDER BY position",
    )
    .bind(request_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The one record of `request_id`, of `kind`.
async fn the_record(app: &TestApp, request_id: &str, kind: &str) -> Value {
    let records = records_of(app, request_id).await;
    let of_kind: Vec<&Value> = records.iter().filter(|r| r["kind"] == kind).collect();
    assert_eq!(of_kind.len(), 1, "one {kind} record for {request_id}: {records:?}");
    of_kind[0].clone()
}

#[tokio::test]
async fn every_tools_call_is_on_the_record_when_its_answer_arrives_with_its_outcome_and_no_arguments_or_results() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn_with(bindings(&upstream)).await;
    let github = instance(&app, "GitHub", "alice", true).await;
    let instance_id = github["instanceId"].as_str().unwrap();

    let (mut session, _) = Session::open(url_of(&github)).await;
    let ok = call(&mut session, "rid-ok", "whoami", json!({"note": SECRET_ARGUMENT})).await;
    assert!(ok.text().contains(TOKEN), "{ok:?}");
    // Read at once: the answer came after the commit.
    let record = the_record(&app, "rid-ok", "tool.called").await;
    assert_eq!(record["outcome"], "ok", "{record}");
    assert_eq!(record["tool_name"], "whoami");
    assert_eq!(record["instance_id"], instance_id);
    assert_eq!(record["user_id"], "alice");
    assert_eq!(record["server_name"], "GitHub");
    assert_eq!(record["project_id"], app.project_id.to_string());
    assert!(record["duration_ms"].as_f64().unwrap() > 0.0, "{record}");
    let text = record.to_string();
    assert!(!text.contains(SECRET_ARGUMENT) && !text.contains(TOKEN), "an argument or result was recorded: {text}");

    let failed = call(&mut session, "rid-fail", "fail", json!({})).await;
    assert_eq!(failed.message["result"]["isError"], true, "{failed:?}");
    assert_eq!(the_record(&app, "rid-fail", "tool.called").await["outcome"], "tool_error");

    // Read-only: the write tool is refused by the gateway, and that is on the record too.
    let path = format!("/mcp-server/instance/{instance_id}");
    json_of(app.call(Method::PATCH, &path, Some(json!({"isReadOnly": true}))).await, 200).await;
    let refused = call(&mut session, "rid-refused", "delete_everything", json!({})).await;
    assert_eq!(refused.error_code(), Some(-32602), "{refused:?}");
    assert_eq!(the_record(&app, "rid-refused", "tool.called").await["outcome"], "refused");

    // Not authenticated yet: refused without going upstream.
    let unauthenticated = instance(&app, "GitHub", "bob", false).await;
    let mut bob = Session::new(url_of(&unauthenticated));
    assert_eq!(call(&mut bob, "rid-unauth", "whoami", json!({})).await.error_code(), Some(-32003));
    assert_eq!(the_record(&app, "rid-unauth", "tool.called").await["outcome"], "refused");

    // The upstream is down.
    let slack = instance(&app, "Slack", "carol", true).await;
    let mut down = Session::new(url_of(&slack));
    assert_eq!(call(&mut down, "rid-down", "whoami", json!({})).await.error_code(), Some(-32004));
    let record = the_record(&app, "rid-down", "tool.called").await;
    assert_eq!((&record["outcome"], &record["server_name"]), (&json!("upstream_error"), &json!("Slack")));
}

#[tokio::test]
async fn a_session_opened_and_closed_is_on_the_record_and_a_request_without_an_id_gets_one() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn_with(bindings(&upstream)).await;
    let github = instance(&app, "GitHub", "alice", true).await;
    let mut session = Session::new(url_of(&github));
    session.extra = vec![("x-request-id".into(), "rid-open".into())];
    session.initialize().await;
    let closed = session
        .http
        .delete(&session.url)
        .header("mcp-session-id", session.session_id.as_deref().unwrap())
        .header("x-request-id", "rid-close")
        .send()
        .await
        .unwrap();
    assert!(matches!(closed.status().as_u16(), 200 | 204), "{closed:?}");

    let opened = the_record(&app, "rid-open", "session.opened").await;
    assert_eq!((&opened["outcome"], &opened["tool_name"]), (&json!("ok"), &Value::Null), "{opened}");
    assert_eq!(the_record(&app, "rid-close", "session.closed").await["instance_id"], github["instanceId"]);
    // The initialized notification and its 202 are not sessions or calls.
    assert_eq!(records_of(&app, "rid-open").await.len(), 1);

    let (mut other, _) = Session::open(url_of(&github)).await;
    other.call_tool("whoami", json!({})).await;
    let minted: Vec<String> = sqlx::query_scalar("SELECT request_id FROM gateway_calls WHERE kind = 'tool.called'")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(minted.len(), 1);
    assert!(uuid::Uuid::parse_str(&minted[0]).is_ok(), "a minted request id: {minted:?}");
}

#[tokio::test]
async fn a_call_whose_record_cannot_be_committed_gets_a_json_rpc_error_not_an_unrecorded_success() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn_with(bindings(&upstream)).await;
    let github = instance(&app, "GitHub", "alice", true).await;
    let (mut session, _) = Session::open(url_of(&github)).await;

    // The records' table goes away (as if the database refused every write).
    sqlx::query("ALTER TABLE gateway_calls RENAME TO gateway_calls_away").execute(&app.pool).await.unwrap();
    let answer = call(&mut session, "rid-lost", "whoami", json!({})).await;
    sqlx::query("ALTER TABLE gateway_calls_away RENAME TO gateway_calls").execute(&app.pool).await.unwrap();

    assert_eq!(answer.error_code(), Some(-32603), "{answer:?}");
    assert!(answer.error_message().contains("could not be recorded"), "{}", answer.error_message());
    assert!(!answer.message.to_string().contains(TOKEN), "the unrecorded result went out: {answer:?}");
    // Recording works again afterwards.
    call(&mut session, "rid-back", "whoami", json!({})).await;
    assert_eq!(the_record(&app, "rid-back", "tool.called").await["outcome"], "ok");
}

#[tokio::test]
async fn a_composio_url_records_the_server_and_the_user_and_the_audit_api_shows_them_to_their_project_only() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn_with(bindings(&upstream)).await;
    let github = api_key_auth_config(&app, "github").await;
    let server_id = mcp_server(&app, "GitHub tools", &[&github]).await;
    let body = api_key_connection(&github, "alice", "key-of-alice");
    json_of(app.composio(Method::POST, "/api/v3/connected_accounts", Some(body)).await, 201).await;

    let mut session = Session::new(&format!("{}/v3/mcp/{server_id}?user_id=alice", app.base_url));
    session.extra = vec![("x-api-key".into(), app.key.clone())];
    session.initialize().await;
    session.extra.push(("x-request-id".into(), "rid-composio".into()));
    assert_eq!(session.call_tool("whoami", json!({})).await.status, 200);
    let record = the_record(&app, "rid-composio", "tool.called").await;
    assert_eq!((&record["server_id"], &record["user_id"]), (&json!(server_id), &json!("alice")), "{record}");
    assert_eq!((&record["server_name"], &record["outcome"]), (&json!("GitHub tools"), &json!("ok")));

    let path = format!("/api/v1/audit/calls?server_id={server_id}&user_id=alice");
    let calls = json_of(app.call(Method::GET, &path, None).await, 200).await;
    let kinds: Vec<&str> = calls["calls"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["session.opened", "tool.called"], "{calls}");
    let (_, other_key) = app.new_project("Other project").await;
    assert_eq!(app.call_as(&other_key, Method::GET, &path, None).await.status(), 404);
}

#[tokio::test]
async fn the_audit_cli_and_api_show_an_instances_calls_and_another_projects_key_gets_404() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn_with(bindings(&upstream)).await;
    let github = instance(&app, "GitHub", "alice", true).await;
    let instance_id = github["instanceId"].as_str().unwrap();
    let (mut session, _) = Session::open(url_of(&github)).await;
    call(&mut session, "rid-audit-1", "whoami", json!({"note": SECRET_ARGUMENT})).await;
    call(&mut session, "rid-audit-2", "fail", json!({})).await;

    let path = format!("/api/v1/audit/calls?instance_id={instance_id}");
    let calls = json_of(app.call(Method::GET, &path, None).await, 200).await;
    let seen: Vec<(&str, &str, &str)> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["tool_name"].as_str().unwrap_or("-"), c["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [("session.opened", "-", "ok"), ("tool.called", "whoami", "ok"), ("tool.called", "fail", "tool_error")],
        "{calls}"
    );
    assert_eq!(calls["calls"][1]["request_id"], "rid-audit-1");
    assert!(!calls.to_string().contains(SECRET_ARGUMENT) && !calls.to_string().contains(TOKEN));

    let (_, other_key) = app.new_project("Other project").await;
    assert_eq!(app.call_as(&other_key, Method::GET, &path, None).await.status(), 404, "another project's instance");
    let unknown = format!("/api/v1/audit/calls?instance_id={}", uuid::Uuid::new_v4());
    assert_eq!(app.call(Method::GET, &unknown, None).await.status(), 404);
    assert_eq!(app.call(Method::GET, "/api/v1/audit/calls?instance_id=nope", None).await.status(), 422);

    let cli = run_cli(&["audit", "--instance", instance_id, "--json"], &[("DATABASE_URL", app.database_url())]).await;
    assert!(cli.success, "{cli:?}");
    let records: Vec<Value> = cli
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line.get("record_id").is_some())
        .collect();
    let tools: Vec<&str> = records.iter().filter_map(|r| r["tool_name"].as_str()).collect();
    assert_eq!(tools, ["whoami", "fail"], "{}", cli.stdout);
    assert!(cli.stdout.contains("instance.created"), "the instance's events come first: {}", cli.stdout);
    let table = run_cli(&["audit", "--instance", instance_id], &[("DATABASE_URL", app.database_url())]).await;
    assert!(table.stdout.contains("tool.called") && table.stdout.contains("tool_error"), "{}", table.stdout);
}

/// Every record message of the stream (subjects `provisioner.gateway.>`), read by a durable
/// consumer until `expected` arrived and then nothing for a second; message id -> copies.
async fn consume_records(nats_url: &str, expected: usize) -> (HashMap<String, usize>, Vec<(String, Vec<u8>)>) {
    let js = connect(nats_url).await;
    let config = pull::Config {
        durable_name: Some("records".into()),
        filter_subject: events::gateway::all_subjects(),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    let consumer = eventually("a consumer", || async {
        let stream = js.get_stream(events::envelope::STREAM).await?;
        Ok::<_, async_nats::Error>(stream.get_or_create_consumer("records", config.clone()).await?)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut ids, mut messages) = (HashMap::new(), Vec::new());
    let mut quiet_since: Option<Instant> = None;
    loop {
        assert!(Instant::now() < deadline, "{} of {expected} records arrived", messages.len());
        let mut batch =
            consumer.fetch().max_messages(1000).expires(Duration::from_millis(250)).messages().await.unwrap();
        let mut got = 0;
        while let Some(Ok(message)) = batch.next().await {
            let id = message.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).unwrap().as_str().to_owned();
            *ids.entry(id).or_insert(0) += 1;
            messages.push((message.subject.to_string(), message.payload.to_vec()));
            eventually("an ack", || message.double_ack()).await;
            got += 1;
        }
        if got > 0 || messages.len() < expected {
            quiet_since = None;
        } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_secs(1) {
            return (ids, messages);
        }
    }
}

#[tokio::test]
async fn records_reach_nats_once_each_typed_and_without_arguments_or_results() {
    let nats = NatsServer::start().await;
    let upstream = Upstream::start().await;
    let (upstreams, relay) = (bindings(&upstream), with_nats(nats.url()));
    let app = TestApp::spawn_with(move |settings| {
        upstreams(settings);
        relay(settings);
    })
    .await;
    let github = instance(&app, "GitHub", "alice", true).await;
    let (mut session, _) = Session::open(url_of(&github)).await;
    call(&mut session, "rid-nats-1", "whoami", json!({"note": SECRET_ARGUMENT})).await;
    call(&mut session, "rid-nats-2", "fail", json!({})).await;
    session.delete().await;

    let (ids, messages) = consume_records(&nats.url(), 4).await;
    assert_eq!(messages.len(), 4, "opened, two calls, closed");
    assert!(ids.values().all(|copies| *copies == 1), "{ids:?}");
    let stored: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT record_id FROM gateway_calls ORDER BY position").fetch_all(&app.pool).await.unwrap();
    let mut kinds = Vec::new();
    for ((subject, payload), record_id) in messages.iter().zip(&stored) {
        let text = String::from_utf8_lossy(payload);
        assert!(!text.contains(SECRET_ARGUMENT) && !text.contains(TOKEN), "published: {text}");
        let received = events::gateway::decode(payload).unwrap_or_else(|e| panic!("{e}: {text}"));
        let GatewayRecord { record_id: id, kind, project, target, outcome, .. } = received.data;
        assert_eq!(id, *record_id, "in commit order");
        assert_eq!(received.id, events::gateway::message_id(id));
        assert_eq!(subject, &events::gateway::subject(app.project_id, kind));
        assert_eq!(project, app.project_id);
        assert!(matches!(target, Target::Instance { ref user_id, .. } if user_id == "alice"));
        kinds.push((kind, outcome));
    }
    assert_eq!(
        kinds,
        [
            (RecordKind::SessionOpened, Outcome::Ok),
            (RecordKind::ToolCalled, Outcome::Ok),
            (RecordKind::ToolCalled, Outcome::ToolError),
            (RecordKind::SessionClosed, Outcome::Ok)
        ]
    );
}

/// `count` records of `project` written straight to the table, as the recorder writes them.
async fn backlog(app: &TestApp, count: usize) {
    let instance_id = events::InstanceId::random();
    let records: Vec<GatewayRecord> = (0..count)
        .map(|i| GatewayRecord {
            record_id: uuid::Uuid::new_v4(),
            kind: RecordKind::ToolCalled,
            project: app.project_id,
            target: Target::Instance { instance_id, user_id: "alice".into() },
            server_name: "GitHub".into(),
            tool_name: Some("whoami".into()),
            outcome: Outcome::Ok,
            duration_ms: 1.0,
            request_id: format!("backlog-{i}"),
            time: "2026-12-03T10:00:00.000000Z".into(),
        })
        .collect();
    for chunk in records.chunks(1000) {
        services::gateway_record::store::insert(&app.pool, chunk).await.unwrap();
    }
}

async fn records_checkpointed(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM gateway_calls g, feed_checkpoints c WHERE c.subscriber = $1 \
         AND (g.transaction_id, g.position) <= (c.transaction_id, c.global_position)",
    )
    .bind(services::gateway_record::Publisher::SUBSCRIBER)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_publishers_one_leads_and_a_kill_mid_batch_loses_and_duplicates_no_record() {
    let nats = NatsServer::start().await;
    let app = TestApp::spawn().await;
    let total = 5000;
    let mut first = RelayProcess::start(app.database_url(), &nats.url());
    first.wait_for("gateway record publisher leads", Duration::from_secs(30)).await;
    let mut second = RelayProcess::start(app.database_url(), &nats.url());
    // Both up before the records come, so that the kill below finds a standby (started after
    // it, the second would simply be the only publisher).
    let standby = format!("feed:{}", services::gateway_record::Publisher::SUBSCRIBER);
    second.wait_for(&standby, Duration::from_secs(30)).await;
    backlog(&app, total).await;
    // Killed (SIGKILL) as soon as the stream holds a record: in the middle of its first batch.
    let js = connect(&nats.url()).await;
    let subject = events::gateway::subject(app.project_id, RecordKind::ToolCalled);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = js.get_stream(events::envelope::STREAM).await
            && stream.get_last_raw_message_by_subject(&subject).await.is_ok()
        {
            first.kill();
            break;
        }
        assert!(Instant::now() < deadline, "the publisher published nothing:\n{}", first.output());
    }
    let checkpointed_at_kill = records_checkpointed(&app).await;
    assert!(!second.said("gateway record publisher leads"), "the second stood by:\n{}", second.output());
    second.wait_for("gateway record publisher leads", Duration::from_secs(15)).await;

    let (ids, messages) = consume_records(&nats.url(), total).await;
    let duplicated = ids.values().filter(|copies| **copies > 1).count();
    assert_eq!((ids.len(), duplicated, messages.len()), (total, 0, total), "each record once");
    assert!((checkpointed_at_kill as usize) < total, "killed mid-way: {checkpointed_at_kill} of {total} checkpointed");
    println!("killed with {checkpointed_at_kill} of {total} records checkpointed; {} delivered once each", ids.len());
}

#[tokio::test]
async fn concurrent_records_share_one_commit_and_a_shutdown_writes_what_is_still_queued() {
    use services::gateway_record::Recorder;
    let app = TestApp::spawn().await;
    let (recorder, writer) = Recorder::new(app.pool.clone());
    let cancel = tokio_util::sync::CancellationToken::new();
    let writer = tokio::spawn(writer.run(cancel.clone()));
    let records = |n: usize, prefix: &str| -> Vec<GatewayRecord> {
        (0..n)
            .map(|i| GatewayRecord {
                record_id: uuid::Uuid::new_v4(),
                kind: RecordKind::ToolCalled,
                project: app.project_id,
                target: Target::Instance { instance_id: events::InstanceId::random(), user_id: "alice".into() },
                server_name: "GitHub".into(),
                tool_name: Some("whoami".into()),
                outcome: Outcome::Ok,
                duration_ms: 1.0,
                request_id: format!("{prefix}-{i}"),
                time: "2026-12-03T10:00:00.000000Z".into(),
            })
            .collect()
    };

    // 200 calls waiting at once: each is answered after its commit, and they share commits.
    let waited = futures::future::join_all(records(200, "together").into_iter().map(|r| recorder.record(r))).await;
    assert!(waited.iter().all(Result::is_ok), "{waited:?}");
    let (rows, commits): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT transaction_id) FROM gateway_calls WHERE request_id LIKE 'together-%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows, 200);
    assert!(commits <= 2, "{commits} commits for 200 concurrent records: not one per call");

    // Queued but not awaited when the service stops: written before the writer ends.
    for record in records(50, "at-shutdown") {
        recorder.record_later(record);
    }
    cancel.cancel();
    writer.await.unwrap();
    let flushed: i64 = sqlx::query_scalar("SELECT count(*) FROM gateway_calls WHERE request_id LIKE 'at-shutdown-%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(flushed, 50);
    let stopped = recorder.record(records(1, "late").remove(0)).await;
    assert_eq!(stopped, Err(services::gateway_record::RecordError::Stopped), "no record is taken after the flush");
}
