//! Upcasting: an `instance.created` stored in its old version (1.0, settings flat beside the
//! slot) loads in the aggregate, the views and the NATS envelope as version 2.0.

use crate::support::nats::NatsServer;
use crate::support::relay::assert_exactly_once_in_order;
use crate::support::{RelayProcess, TestApp, json_of};
use domain::instance::{UserId, slot_id};
use events::instance::ServerRef;
use events::{AnyEvent, InstanceEvent};
use reqwest::Method;
use serde_json::{Value, json};
use services::feed::{Checkpoints, lag_after};
use services::projection::Projector;
use services::projection::rebuild::{compare, rebuild_into};
use services::startup::views;
use std::time::Duration;

/// Writes, by raw SQL, the Gmail slot of `user` with a version 1.0 `instance.created` that
/// leaves `read_only` out. Returns the slot id and the instance id.
async fn store_v1_instance(app: &TestApp, user: &str) -> (String, String) {
    let slot = slot_id(app.project_id, &ServerRef::Catalog { slug: "gmail".into() }, &UserId::parse(user).unwrap());
    let instance_id = uuid::Uuid::new_v4().to_string();
    let payload = json!({"InstanceCreated": {
        "slot": {"project_id": app.project_id, "server": {"kind": "catalog", "slug": "gmail"},
                 "server_name": "Gmail", "user_id": user},
        "instance_id": instance_id,
        "platform": "Acme",
        "connection_type": "SSE",
        "legacy": false,
    }});
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('instance', $1, 1, 'instance.created', '1.0', $2, '{\"actor\": \"test\"}')",
    )
    .bind(&slot)
    .bind(&payload)
    .execute(&app.pool)
    .await
    .unwrap();
    (slot, instance_id)
}

/// The instance as the Klavis surface answers it, once the projector has seen it.
async fn get_when_projected(app: &TestApp, instance_id: &str) -> Value {
    for _ in 0..500 {
        let response = app.call(Method::GET, &format!("/mcp-server/instance/{instance_id}"), None).await;
        if response.status() != 404 {
            return json_of(response, 200).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the instance never reached the views");
}

async fn view_row(app: &TestApp, schema: &str, slot: &str) -> Value {
    sqlx::query_scalar(&format!(
        "SELECT jsonb_build_object('platform', platform, 'connection_type', connection_type, 'legacy', legacy, \
                'read_only', read_only) FROM {schema}.view_connections WHERE slot_id = $1"
    ))
    .bind(slot)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn settled(app: &TestApp) -> services::feed::Position {
    for _ in 0..500 {
        let at = Checkpoints::peek(&app.pool, Projector::VIEWS).await.unwrap().unwrap_or_default();
        if lag_after(&app.pool, at).await.unwrap().events == 0 {
            return at;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the projector did not catch up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_instance_created_loads_in_the_views_the_aggregate_and_the_envelope_as_v2() {
    let nats = NatsServer::start().await;
    let app = TestApp::spawn().await;
    let (slot, instance_id) = store_v1_instance(&app, "legacy-user").await;

    // The views: the projector read it, with the old defaults filled in.
    let instance = get_when_projected(&app, &instance_id).await;
    assert_eq!(instance["platform"], "Acme");
    assert_eq!(instance["externalUserId"], "legacy-user");
    let settings = json!({"platform": "Acme", "connection_type": "SSE", "legacy": false, "read_only": false});
    assert_eq!(view_row(&app, "public", &slot).await, settings);
    let at = settled(&app).await;
    rebuild_into(&app.pool, "rebuild_upcast", &views(), at).await.unwrap();
    let differences = compare(&app.pool, "rebuild_upcast", &views()).await.unwrap();
    assert!(differences.is_empty(), "rebuilt views differ from live ones: {differences:#?}");
    assert_eq!(view_row(&app, "rebuild_upcast", &slot).await, settings);

    // The aggregate: commands on the slot load it through cqrs-es.
    let patch = json!({"isReadOnly": true});
    let patched = app.call(Method::PATCH, &format!("/mcp-server/instance/{instance_id}"), Some(patch)).await;
    assert_eq!(json_of(patched, 200).await["isReadOnly"], true);
    let deleted = app.call(Method::DELETE, &format!("/mcp-server/instance/{instance_id}"), None).await;
    assert_eq!(json_of(deleted, 200).await["success"], true);
    let sequences: Vec<(i64, String)> = sqlx::query_as(
        "SELECT sequence, event_type FROM events WHERE aggregate_type = 'instance' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&slot)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let types: Vec<&str> = sequences.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(types, ["instance.created", "instance.settings_changed", "instance.deleted"]);

    // The envelope: published as version 2, in the v2 shape.
    let _relay = RelayProcess::start(app.database_url(), &nats.url());
    let delivered = assert_exactly_once_in_order(&app.pool, &nats.url()).await;
    let created_id = events::envelope::message_id("instance", &slot, 1);
    let created = delivered.iter().find(|d| d.message_id == created_id).expect("the v1 event was published");
    assert_eq!(created.received.envelope.event_type, "provisioner.instance.created.v2");
    assert_eq!(created.received.envelope.data["InstanceCreated"]["settings"], settings);
    assert!(created.received.envelope.data["InstanceCreated"].get("platform").is_none(), "{}", created.payload);
    let AnyEvent::Instance(InstanceEvent::InstanceCreated(event)) = &created.received.event else {
        panic!("not an instance creation: {:?}", created.received.event)
    };
    assert_eq!(event.instance_id.to_string(), instance_id);
}
