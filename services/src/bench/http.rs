//! `provisioner bench http`: the Postgres ceiling for one create (pgbench), then the HTTP API
//! under load (new-instance creates, plain and with an `Idempotency-Key` each, repeat creates,
//! instance GETs) against `provisioner serve` on its own database, and the figures side by side.

use super::load::{Measurement, drive};
use super::pgbench::{self, CREATE_SCRIPT, Ceiling};
use super::serve_child::ServeChild;
use super::{percentiles_ms, with_database};
use crate::config::DatabaseArgs;
use crate::project::Projects;
use crate::projection::Projector;
use crate::secrets::MasterKey;
use crate::startup;
use crate::store::{self, CommandMetadata};
use domain::project::ProjectName;
use secrecy::ExposeSecret;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, clap::Args)]
pub struct HttpBenchArgs {
    /// A superuser connection: the bench creates (and afterwards drops) two databases.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Concurrent clients (pgbench) and connections (HTTP).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Keep the bench databases afterwards.
    #[arg(long)]
    pub keep: bool,
}

pub(crate) async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let admin = PgPoolOptions::new().max_connections(1).connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
    admin.close().await;
    let url = with_database(admin_url, name);
    store::connect_and_migrate(&url).await?.close().await;
    Ok(url)
}

pub(crate) async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(admin_url).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await;
    }
}

/// A project and key in the service's database.
pub(crate) async fn demo_key(url: &str) -> anyhow::Result<String> {
    let pool = store::connect_and_migrate(url).await?;
    let projector = Projector::new(pool.clone(), Projector::VIEWS, startup::views());
    let projects = Projects::new(startup::command_bus(&pool, Arc::new(projector)), pool);
    let meta = CommandMetadata::actor("bench");
    let project = projects.create(ProjectName::parse("bench").map_err(anyhow::Error::msg)?, &meta).await?;
    Ok(projects.issue_key(project, Some("bench".into()), &meta).await?.key.expose_secret().to_owned())
}

async fn post_create(client: &reqwest::Client, base: &str, key: &str, user: &str) -> Option<String> {
    post_create_keyed(client, base, key, user, None).await
}

/// A create, with this `Idempotency-Key` when one is given.
async fn post_create_keyed(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    user: &str,
    idempotency_key: Option<&str>,
) -> Option<String> {
    let body = json!({"serverName": "Gmail", "userId": user});
    let mut request = client.post(format!("{base}/mcp-server/instance/create")).bearer_auth(key).json(&body);
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("Idempotency-Key", idempotency_key);
    }
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let answer: serde_json::Value = response.json().await.ok()?;
    answer["instanceId"].as_str().map(str::to_owned)
}

pub async fn run(args: HttpBenchArgs) -> anyhow::Result<()> {
    let admin_url = args.database.url()?;
    let duration = Duration::from_secs(args.duration);
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let (ceiling_db, service_db) = (format!("bench_ceiling_{stamp}"), format!("bench_service_{stamp}"));
    let ceiling_url = create_database(&admin_url, &ceiling_db).await?;
    let service_url = create_database(&admin_url, &service_db).await?;
    let result = measure(&args, duration, &ceiling_url, &service_url).await;
    if !args.keep {
        drop_database(&admin_url, &ceiling_db).await;
        drop_database(&admin_url, &service_db).await;
    }
    result
}

async fn measure(args: &HttpBenchArgs, duration: Duration, ceiling_url: &str, service_url: &str) -> anyhow::Result<()> {
    let c = args.connections;
    eprintln!(
        "ceiling: pgbench, one create's SQL (read the stream, append the event), {c} clients, {}s",
        args.duration
    );
    let create_ceiling = pgbench::run(ceiling_url, Some(CREATE_SCRIPT), c, duration)?;
    eprintln!("ceiling: pgbench -S (primary-key selects), {c} clients, {}s", args.duration);
    pgbench::initialise(ceiling_url)?;
    let select_ceiling = pgbench::run(ceiling_url, None, c, duration)?;

    let master_key = MasterKey::generate_base64();
    let serve = ServeChild::start(service_url, &master_key)?;
    let key = Arc::new(demo_key(service_url).await?);
    let base = Arc::new(serve.base_url.clone());

    eprintln!("HTTP: new-instance creates (fresh users), {c} connections, {}s", args.duration);
    let (b, k) = (base.clone(), key.clone());
    let fresh = drive(c, duration, move |client, conn, n| {
        let (b, k) = (b.clone(), k.clone());
        async move { post_create(&client, &b, &k, &format!("fresh-{conn}-{n}")).await.is_some() }
    })
    .await;

    // The same creates, each with a key of its own: the price of claiming and keeping it.
    eprintln!("HTTP: new-instance creates with an Idempotency-Key each, {c} connections, {}s", args.duration);
    let (b, k) = (base.clone(), key.clone());
    let keyed = drive(c, duration, move |client, conn, n| {
        let (b, k) = (b.clone(), k.clone());
        async move {
            let user = format!("keyed-{conn}-{n}");
            post_create_keyed(&client, &b, &k, &user, Some(&user)).await.is_some()
        }
    })
    .await;

    // One user per connection, created once, then created again and again.
    let client = reqwest::Client::new();
    let mut instances = Vec::with_capacity(c);
    for conn in 0..c {
        instances.push(
            post_create(&client, &base, &key, &format!("repeat-{conn}"))
                .await
                .ok_or_else(|| anyhow::anyhow!("setup create failed"))?,
        );
    }
    eprintln!("HTTP: repeat creates, {c} connections, {}s", args.duration);
    let (b, k) = (base.clone(), key.clone());
    let repeat = drive(c, duration, move |client, conn, _| {
        let (b, k) = (b.clone(), k.clone());
        async move { post_create(&client, &b, &k, &format!("repeat-{conn}")).await.is_some() }
    })
    .await;

    eprintln!("HTTP: instance GETs, {c} connections, {}s", args.duration);
    let ids = Arc::new(instances);
    let (b, k, all) = (base.clone(), key.clone(), ids.clone());
    let gets = drive(c, duration, move |client, conn, _| {
        let (b, k, ids) = (b.clone(), k.clone(), all.clone());
        async move {
            let url = format!("{b}/mcp-server/instance/{}", ids[conn]);
            client.get(url).bearer_auth(k.as_str()).send().await.is_ok_and(|r| r.status().is_success())
        }
    })
    .await;

    let rss = serve.peak_rss_mib();
    drop(serve);
    let with_metrics = measure_with_metrics(c, duration, service_url, &master_key, &key, ids.clone()).await?;
    print_report(
        c,
        &create_ceiling,
        &select_ceiling,
        &[
            ("new-instance creates", &fresh, &create_ceiling),
            ("creates with Idempotency-Key", &keyed, &create_ceiling),
            ("repeat creates", &repeat, &select_ceiling),
            ("instance GETs", &gets, &select_ceiling),
        ],
        rss,
    );
    println!(
        "creates with Idempotency-Key / plain creates: {:.2} ({:.0} vs {:.0} req/s)",
        keyed.per_second() / fresh.per_second(),
        keyed.per_second(),
        fresh.per_second()
    );
    print_metrics_ratio(&[
        ("new-instance creates", &fresh, &with_metrics.fresh),
        ("instance GETs", &gets, &with_metrics.gets),
    ]);
    Ok(())
}

/// The same creates and GETs against a `serve` with metrics on, and one scrape of them.
struct WithMetrics {
    fresh: Measurement,
    gets: Measurement,
}

async fn measure_with_metrics(
    c: usize,
    duration: Duration,
    service_url: &str,
    master_key: &str,
    key: &Arc<String>,
    ids: Arc<Vec<String>>,
) -> anyhow::Result<WithMetrics> {
    // A free port picked here (the child only logs its API's address).
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string();
    let serve = ServeChild::start_with(service_url, master_key, &[("PROVISIONER_METRICS_LISTEN", &metrics_addr)])?;
    let base = Arc::new(serve.base_url.clone());
    eprintln!("HTTP with metrics on: new-instance creates (fresh users), {c} connections, {}s", duration.as_secs());
    let (b, k) = (base.clone(), key.clone());
    let fresh = drive(c, duration, move |client, conn, n| {
        let (b, k) = (b.clone(), k.clone());
        async move { post_create(&client, &b, &k, &format!("metered-{conn}-{n}")).await.is_some() }
    })
    .await;
    eprintln!("HTTP with metrics on: instance GETs, {c} connections, {}s", duration.as_secs());
    let (b, k) = (base.clone(), key.clone());
    let gets = drive(c, duration, move |client, conn, _| {
        let (b, k, ids) = (b.clone(), k.clone(), ids.clone());
        async move {
            let url = format!("{b}/mcp-server/instance/{}", ids[conn]);
            client.get(url).bearer_auth(k.as_str()).send().await.is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    // Proof that the run was metered: the counters saw its requests.
    let scrape = reqwest::get(format!("http://{metrics_addr}/metrics")).await?.text().await?;
    let counted = scrape.lines().filter(|l| l.starts_with("provisioner_http_requests_total{")).count();
    anyhow::ensure!(counted > 0, "the metrics listener counted no request:\n{scrape}");
    Ok(WithMetrics { fresh, gets })
}

fn print_metrics_ratio(pairs: &[(&str, &Measurement, &Measurement)]) {
    println!("\nwith metrics on (PROVISIONER_METRICS_LISTEN), beside the plain run (goal: ratio >= 0.90)");
    println!("{:<34} {:>10} {:>10} {:>9} {:>9} {:>9}", "", "plain/s", "metered/s", "p50 ms", "p99 ms", "ratio");
    for (name, plain, metered) in pairs {
        let (p50, _, p99) = percentiles_ms(&metered.latency);
        let ratio = metered.per_second() / plain.per_second();
        println!(
            "{name:<34} {:>10.0} {:>10.0} {p50:>9.2} {p99:>9.2} {ratio:>9.2}",
            plain.per_second(),
            metered.per_second()
        );
    }
}

fn print_report(
    connections: usize,
    create: &Ceiling,
    select: &Ceiling,
    phases: &[(&str, &Measurement, &Ceiling)],
    rss: Option<f64>,
) {
    println!("\nprovisioner bench http: {connections} concurrent clients");
    println!(
        "{:<34} {:>10} {:>9} {:>9} {:>9} {:>8} {:>9}",
        "", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "ratio"
    );
    for (name, ceiling) in [("ceiling: pgbench create SQL", create), ("ceiling: pgbench select-only", select)] {
        let (p50, p95, p99) = percentiles_ms(&ceiling.latency);
        println!(
            "{name:<34} {:>10.0} {p50:>9.2} {p95:>9.2} {p99:>9.2} {:>8} {:>9}",
            ceiling.transactions_per_second, "-", "1.00"
        );
    }
    for (name, m, ceiling) in phases {
        let (p50, p95, p99) = percentiles_ms(&m.latency);
        let ratio = m.per_second() / ceiling.transactions_per_second;
        println!("{name:<34} {:>10.0} {p50:>9.2} {p95:>9.2} {p99:>9.2} {:>8} {ratio:>9.2}", m.per_second(), m.errors);
    }
    let (_, _, ceiling_p99) = percentiles_ms(&create.latency);
    let (_, _, create_p99) = percentiles_ms(&phases[0].1.latency);
    println!("new-instance create p99 / ceiling p99: {:.2}", create_p99 / ceiling_p99);
    match rss {
        Some(mib) => println!("provisioner serve peak RSS: {mib:.1} MiB"),
        None => println!("provisioner serve peak RSS: unknown (no /proc)"),
    }
}
