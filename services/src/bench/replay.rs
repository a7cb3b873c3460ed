//! `provisioner bench replay`: rebuilds every projection from a generated history (1,000,000
//! events by default) on a database of its own, and prints events/s.
//!
//! The history is what the service stores for its users: per user, an instance that is
//! authenticated, changed, deleted and created again, a second authenticated instance, and a
//! connected account that is initiated then activated (9 events), under a handful of
//! projects. Events are typed with the `events` crate and loaded with COPY, in transactions
//! of 10,000 events.

use super::http::{create_database, drop_database};
use crate::config::DatabaseArgs;
use crate::projection::progress::ConsoleProgress;
use crate::projection::replay::Replay;
use crate::startup;
use crate::store;
use domain::instance::{UserId, slot_id};
use events::connected_account::{AccountRef, ConnectedAccountActivated, ConnectedAccountInitiated};
use events::instance::{
    AuthMethod, ConnectionType, InstanceAuthSet, InstanceCreated, InstanceDeleted, InstanceSettings,
    InstanceSettingsChanged, ServerRef, Slot,
};
use events::{ConnectedAccountEvent, Event, InstanceEvent, InstanceId, ProjectId, SealedSecret};
use std::time::Instant;

#[derive(Clone, clap::Args)]
pub struct ReplayBenchArgs {
    /// A superuser connection: the bench creates (and afterwards drops) a database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Events in the generated history.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Events per shadow transaction.
    #[arg(long, default_value_t = 5000)]
    pub batch_size: i64,
    /// Keep the database afterwards.
    #[arg(long)]
    pub keep: bool,
}

const EVENTS_PER_USER: u64 = 9;
const PROJECTS: usize = 10;
const EVENTS_PER_TRANSACTION: usize = 10_000;

pub async fn run(args: ReplayBenchArgs) -> anyhow::Result<()> {
    let admin_url = args.database.url()?;
    let name = format!("bench_replay_{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let url = create_database(&admin_url, &name).await?;
    let result = measure(&args, &url).await;
    if !args.keep {
        drop_database(&admin_url, &name).await;
    }
    result
}

async fn measure(args: &ReplayBenchArgs, url: &str) -> anyhow::Result<()> {
    let pool = store::connect_and_migrate(url).await?;
    let users = args.events.div_ceil(EVENTS_PER_USER);
    let began = Instant::now();
    let stored = store_history(&pool, users).await?;
    eprintln!("history: {stored} events for {users} users stored in {:.1} s", began.elapsed().as_secs_f64());
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;

    let replay = Replay::new(pool.clone(), startup::views(), None)?.with_batch_size(args.batch_size);
    let start = replay.prepare(true).await?;
    let cpu_before = own_cpu_seconds();
    let report = replay.run(start, &ConsoleProgress::for_stderr()).await?;
    let cpu = own_cpu_seconds() - cpu_before;
    let rate = report.events as f64 / report.rebuild_seconds;
    println!("replay --all: {} events in {:.2} s = {rate:.0} events/s", report.events, report.rebuild_seconds);
    println!(
        "provisioner CPU during the replay: {cpu:.2} s ({:.0}% of one core)",
        100.0 * cpu / report.rebuild_seconds
    );
    println!("swap: {:.0} ms under lock", report.swap_millis);
    for table in ["view_connections", "view_users", "view_connected_accounts"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&pool).await?;
        println!("{table}: {rows} rows");
    }
    Ok(())
}

/// Appends the generated history with COPY; returns the number of events.
async fn store_history(pool: &sqlx::PgPool, users: u64) -> anyhow::Result<u64> {
    let projects: Vec<ProjectId> = (0..PROJECTS).map(|_| ProjectId::random()).collect();
    let mut rows = String::new();
    let (mut in_transaction, mut stored) = (0, 0);
    for user in 0..users {
        let project = projects[user as usize % PROJECTS];
        for row in user_history(project, user)? {
            rows.push_str(&row);
            in_transaction += 1;
        }
        if in_transaction >= EVENTS_PER_TRANSACTION || user + 1 == users {
            copy_rows(pool, std::mem::take(&mut rows)).await?;
            stored += in_transaction as u64;
            in_transaction = 0;
        }
    }
    Ok(stored)
}

async fn copy_rows(pool: &sqlx::PgPool, rows: String) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let mut copy = tx
        .copy_in_raw(
            "COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             FROM STDIN WITH (FORMAT csv)",
        )
        .await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await?;
    tx.commit().await?;
    Ok(())
}

/// One user's nine events, as CSV rows.
fn user_history(project: ProjectId, user: u64) -> anyhow::Result<Vec<String>> {
    let user_id = format!("user-{user}");
    let slot = |slug: &str, name: &str| Slot {
        project_id: project,
        server: ServerRef::Catalog { slug: slug.into() },
        server_name: name.into(),
        user_id: user_id.clone(),
    };
    let settings = |read_only| InstanceSettings {
        platform: Some("bench".into()),
        connection_type: ConnectionType::StreamableHttp,
        legacy: false,
        read_only,
    };
    let sealed = || SealedSecret {
        key_id: uuid::Uuid::new_v4(),
        nonce: "AAAAAAAAAAAAAAAA".into(),
        ciphertext: "c2VhbGVkIGNyZWRlbnRpYWwgb2YgYSBiZW5jaCB1c2Vy".into(),
    };
    let auth = |slot: Slot, instance_id| {
        InstanceEvent::InstanceAuthSet(InstanceAuthSet {
            slot,
            instance_id: Some(instance_id),
            method: AuthMethod::ApiKey,
            credential: sealed(),
            replaced_key_id: None,
            oauth_state: None,
        })
    };
    let (gmail, slack) = (slot("gmail", "Gmail"), slot("slack", "Slack"));
    let (first, second, third) = (InstanceId::random(), InstanceId::random(), InstanceId::random());
    let gmail_events = [
        InstanceEvent::InstanceCreated(InstanceCreated {
            slot: gmail.clone(),
            instance_id: first,
            settings: settings(false),
        }),
        auth(gmail.clone(), first),
        InstanceEvent::InstanceSettingsChanged(InstanceSettingsChanged {
            slot: gmail.clone(),
            instance_id: first,
            settings: settings(true),
        }),
        InstanceEvent::InstanceDeleted(InstanceDeleted {
            slot: gmail.clone(),
            instance_id: first,
            destroyed_key_id: None,
        }),
        InstanceEvent::InstanceCreated(InstanceCreated { slot: gmail, instance_id: second, settings: settings(false) }),
    ];
    let slack_events = [
        InstanceEvent::InstanceCreated(InstanceCreated {
            slot: slack.clone(),
            instance_id: third,
            settings: settings(false),
        }),
        auth(slack, third),
    ];
    let account = AccountRef {
        project_id: project,
        connected_account_id: format!("ca_bench{user:08}"),
        auth_config_id: "ac_bench".into(),
        toolkit: "github".into(),
        auth_scheme: "OAUTH2".into(),
        user_id: user_id.clone(),
    };
    let account_events = [
        ConnectedAccountEvent::ConnectedAccountInitiated(ConnectedAccountInitiated {
            account: account.clone(),
            link_token_sha256: format!("{:064x}", user),
            callback_url: None,
            expires_at: 2_000_000_000,
        }),
        ConnectedAccountEvent::ConnectedAccountActivated(ConnectedAccountActivated {
            account: account.clone(),
            credential: sealed(),
            oauth_state: None,
        }),
    ];
    let user = UserId::parse(&user_id).map_err(anyhow::Error::msg)?;
    let mut rows = Vec::with_capacity(EVENTS_PER_USER as usize);
    for (id, events) in [
        (slot_id(project, &ServerRef::Catalog { slug: "gmail".into() }, &user), &gmail_events[..]),
        (slot_id(project, &ServerRef::Catalog { slug: "slack".into() }, &user), &slack_events[..]),
    ] {
        for (i, event) in events.iter().enumerate() {
            rows.push(csv_row(&id, i + 1, event)?);
        }
    }
    for (i, event) in account_events.iter().enumerate() {
        rows.push(csv_row(&account.connected_account_id, i + 1, event)?);
    }
    Ok(rows)
}

fn csv_row<E: Event>(aggregate_id: &str, sequence: usize, event: &E) -> anyhow::Result<String> {
    let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    Ok(format!(
        "{},{},{sequence},{},{},{},{}\n",
        E::AGGREGATE_TYPE,
        quoted(aggregate_id),
        event.event_type(),
        event.event_version(),
        quoted(&serde_json::to_string(event)?),
        quoted(r#"{"actor":"bench"}"#),
    ))
}

/// User and system CPU time of this process so far (Linux `/proc/self/stat`; 0 elsewhere).
fn own_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    (ticks(11) + ticks(12)) / 100.0
}
