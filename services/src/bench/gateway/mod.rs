//! `provisioner bench gateway`: one upstream MCP server called directly and through the
//! gateway in the same run, on a database of its own.
//!
//! The bench starts its upstream (rmcp's Streamable HTTP server with one `echo` tool, in this
//! process; or `--upstream-url`), binds GitHub to it in an upstreams file, starts a child
//! `provisioner serve` with that file (the rest of its environment, NATS included, is the
//! bench's own), and creates a project, a GitHub instance and its credential (set-auth)
//! through the API. Then, for each path: a closed loop of `--sessions` sessions calling the
//! tool as fast as they are answered; an open loop at `--rate` calls/s; and finally
//! `--open-sessions` sessions opened through the gateway and held, with `serve`'s memory.

mod phases;
mod report;
mod session;
mod upstream;

use super::http::{create_database, demo_key, drop_database};
use super::serve_child::{ServeChild, cpu_seconds_of, postgres_cpu_seconds};
use crate::config::DatabaseArgs;
use crate::secrets::MasterKey;
use phases::Limit;
use report::{Memory, Row};
use serde_json::{Value, json};
use session::{Call, Endpoint};
use std::time::Duration;

#[derive(Clone, clap::Args)]
pub struct GatewayBenchArgs {
    /// A superuser connection: the bench creates (and afterwards drops) a database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Concurrent sessions of the closed and the open loop.
    #[arg(long, default_value_t = 64)]
    pub sessions: usize,
    /// Seconds of each measurement (closed and open loop, each path).
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// End each closed-loop measurement after this many calls in all (or at --duration).
    #[arg(long)]
    pub calls: Option<u64>,
    /// Calls per second of the open loop.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Sessions opened through the gateway and held for the memory measurement.
    #[arg(long, default_value_t = 1000)]
    pub open_sessions: usize,
    /// An upstream MCP server (Streamable HTTP) to call instead of the bench's own.
    #[arg(long)]
    pub upstream_url: Option<url::Url>,
    /// The tool called.
    #[arg(long, default_value = upstream::ECHO)]
    pub tool: String,
    /// The tool's arguments, a JSON object.
    #[arg(long, default_value = r#"{"text":"hello"}"#)]
    pub arguments: String,
    /// Keep the bench database afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// The token set on the bench's instance; the direct path sends what the gateway injects.
const TOKEN: &str = "bench-token";

pub async fn run(args: GatewayBenchArgs) -> anyhow::Result<()> {
    let call = Call { tool: args.tool.clone(), arguments: serde_json::from_str(&args.arguments)? };
    anyhow::ensure!(call.arguments.is_object(), "--arguments must be a JSON object");
    anyhow::ensure!(
        args.sessions > 0 && args.rate > 0 && args.duration > 0,
        "--sessions, --rate and --duration must be positive"
    );
    let admin_url = args.database.url()?;
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let name = format!("bench_gateway_{stamp}_{}", std::process::id());
    let url = create_database(&admin_url, &name).await?;
    let upstreams_file =
        std::env::temp_dir().join(format!("provisioner-bench-upstreams-{stamp}-{}.toml", std::process::id()));
    let result = measure(&args, &call, (&url, &name), &upstreams_file).await;
    let _ = std::fs::remove_file(&upstreams_file);
    if !args.keep {
        drop_database(&admin_url, &name).await;
    }
    result
}

async fn measure(
    args: &GatewayBenchArgs,
    call: &Call,
    (url, database): (&str, &str),
    upstreams_file: &std::path::Path,
) -> anyhow::Result<()> {
    let own = match &args.upstream_url {
        Some(_) => None,
        None => Some(upstream::EchoUpstream::start().await?),
    };
    let upstream_url = match (&args.upstream_url, &own) {
        (Some(external), _) => external.to_string(),
        (None, Some(own)) => own.url.clone(),
        (None, None) => unreachable!("started above"),
    };
    std::fs::write(upstreams_file, format!("[github]\nurl = \"{upstream_url}\"\n"))?;
    let file = upstreams_file.to_string_lossy();
    let serve = ServeChild::start_with(url, &MasterKey::generate_base64(), &[("PROVISIONER_UPSTREAMS", &file)])?;
    let key = demo_key(url).await?;
    let server_url = authenticated_instance(&serve.base_url, &key).await?;
    let direct = Endpoint { url: upstream_url.clone(), authorization: Some(format!("Bearer {TOKEN}")) };
    let gateway = Endpoint { url: server_url, authorization: None };
    let idle_rss = serve.rss_mib();

    let what = if own.is_some() { "rmcp echo server in the bench process" } else { upstream_url.as_str() };
    println!("provisioner bench gateway: upstream {what}, tool {}", call.tool);
    println!("load average at start: {}", load_average());
    let (s, limit) = (args.sessions, Limit { duration: Duration::from_secs(args.duration), calls: args.calls });

    eprintln!("closed loop: {s} sessions, direct then through the gateway");
    let closed_direct = cpu_during(None, database, phases::closed_loop(&direct, call, s, limit)).await?;
    let closed_gateway = cpu_during(Some(&serve), database, phases::closed_loop(&gateway, call, s, limit)).await?;
    report::table(
        &format!("closed loop: {s} sessions calling as fast as they are answered, {} s each", args.duration),
        &[closed_direct.row("direct"), closed_gateway.row("gateway")],
    );
    let ratio = closed_gateway.measured.per_second() / closed_direct.measured.per_second();
    println!("gateway / direct: {ratio:.2} of the rate");

    let duration = Duration::from_secs(args.duration);
    eprintln!("open loop: {} calls/s, direct then through the gateway", args.rate);
    let open_direct = cpu_during(None, database, phases::open_loop(&direct, call, s, args.rate, duration)).await?;
    let open_gateway =
        cpu_during(Some(&serve), database, phases::open_loop(&gateway, call, s, args.rate, duration)).await?;
    report::table(
        &format!(
            "open loop: {} calls/s offered over {s} sessions, {} s each (latency from when a call was due)",
            args.rate, args.duration
        ),
        &[open_direct.row("direct"), open_gateway.row("gateway")],
    );
    let (dp50, _, dp99) = super::percentiles_ms(&open_direct.measured.latency);
    let (gp50, _, gp99) = super::percentiles_ms(&open_gateway.measured.latency);
    println!("added by the gateway: p50 {:+.2} ms, p99 {:+.2} ms", gp50 - dp50, gp99 - dp99);

    eprintln!("sessions: {} opened through the gateway and held", args.open_sessions);
    let memory = hold_sessions(&serve, &gateway, args.open_sessions, idle_rss).await?;
    report::memory(&memory);

    println!("load average at the end: {}", load_average());
    let verdicts = report::verdicts(
        (&closed_direct.measured, &closed_gateway.measured),
        (&open_direct.measured, &open_gateway.measured),
        args.rate,
        &memory,
    );
    report::goals(&verdicts);
    Ok(())
}

/// A GitHub instance with a token set (set-auth); its `serverUrl`.
async fn authenticated_instance(base: &str, key: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).bearer_auth(key).json(&body).send();
    let created: Value = post("/mcp-server/instance/create", json!({"serverName": "GitHub", "userId": "bench-user"}))
        .await?
        .error_for_status()?
        .json()
        .await?;
    let set = json!({"instanceId": created["instanceId"], "authData": {"token": TOKEN}});
    post("/mcp-server/instance/set-auth", set).await?.error_for_status()?;
    created["serverUrl"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("create answered {created}"))
}

/// A measurement with the CPU `serve` (when given) and the bench used during it.
struct Measured {
    measured: super::load::Measurement,
    serve_cpu: Option<f64>,
    postgres_cpu: Option<f64>,
    bench_cpu: Option<f64>,
}

impl Measured {
    fn row<'a>(&'a self, name: &'a str) -> Row<'a> {
        Row {
            name,
            measured: &self.measured,
            serve_cpu: self.serve_cpu,
            postgres_cpu: self.postgres_cpu,
            bench_cpu: self.bench_cpu,
        }
    }
}

async fn cpu_during(
    serve: Option<&ServeChild>,
    database: &str,
    measurement: impl Future<Output = anyhow::Result<super::load::Measurement>>,
) -> anyhow::Result<Measured> {
    let serve_before = serve.and_then(ServeChild::cpu_seconds);
    let bench_before = cpu_seconds_of("self");
    let postgres_before = postgres_cpu_seconds(database);
    let measured = measurement.await?;
    let used = |before: Option<f64>, after: Option<f64>| Some(after? - before?);
    Ok(Measured {
        measured,
        serve_cpu: used(serve_before, serve.and_then(ServeChild::cpu_seconds)),
        // Backends started during the measurement count from zero.
        postgres_cpu: Some(
            postgres_cpu_seconds(database)
                .iter()
                .map(|(pid, after)| after - postgres_before.get(pid).copied().unwrap_or(0.0))
                .sum(),
        ),
        bench_cpu: used(bench_before, cpu_seconds_of("self")),
    })
}

/// `n` sessions opened through the gateway, then their standing streams, with `serve`'s RSS
/// at each step.
async fn hold_sessions(serve: &ServeChild, gateway: &Endpoint, n: usize, idle: Option<f64>) -> anyhow::Result<Memory> {
    let settle = || tokio::time::sleep(Duration::from_millis(500));
    settle().await;
    let before = serve.rss_mib();
    let sessions = phases::open_sessions(gateway, n).await?;
    settle().await;
    let initialized = serve.rss_mib();
    let streams = phases::listen_all(&sessions).await?;
    settle().await;
    let listening = serve.rss_mib();
    let peak = serve.peak_rss_mib();
    drop(streams);
    drop(sessions);
    Ok(Memory { sessions: n, idle, before, initialized, listening, peak })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
