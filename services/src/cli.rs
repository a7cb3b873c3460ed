//! The `provisioner` command line.

use crate::config::DatabaseArgs;
use crate::nats::NatsArgs;
use crate::project::Projects;
use crate::projection::Projector;
use crate::projection::progress::ConsoleProgress;
use crate::projection::replay::Replay;
use crate::relay::{self, Relay, RelayReport};
use crate::startup::{self, Application, ServeArgs};
use crate::store::{self, CommandMetadata};
use crate::telemetry;
use anyhow::Context;
use clap::{Parser, Subcommand};
use domain::project::{ProjectName, RateLimit, RedirectHosts, RedirectHostsChange};
use events::{ApiKeyId, ProjectId};
use secrecy::ExposeSecret;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "provisioner", version, about = "Provisions MCP server instances for the users of API customers.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the projector (applies migrations first).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Run the NATS relay (and the gateway's record publisher) alone (they also run inside
    /// `serve` when NATS_URL is set); with --status, print where the relay is and exit.
    Relay(RelayArgs),
    /// The history of an aggregate, an instance or a user: who changed what, when, from which
    /// request; with --as-of, the state at that time.
    Audit(crate::audit::cli::AuditArgs),
    /// Rebuild views from position 0 into shadow tables while the service keeps serving, then
    /// swap them in at once; resumes an interrupted replay.
    Replay(ReplayArgs),
    /// Rebuild every view aside and compare it with the live tables; check that the NATS
    /// stream holds one message per event. Prints each difference; fails if there is one.
    Verify(crate::verify::VerifyArgs),
    /// Re-send stored events to NATS (a lost or new stream), skipping those already held.
    Republish(crate::relay::republish::Args),
    /// Projects (tenants).
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// API keys of a project.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Measurements that print figures (build with --release first).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(clap::Args)]
struct RelayArgs {
    /// Print the relay's checkpoint, its lag and the stream's last sequence, then exit.
    #[arg(long)]
    status: bool,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["projection", "all"])))]
struct ReplayArgs {
    /// The projection to rebuild: projects, servers, instances, oauth_apps, auth_configs or
    /// connected_accounts.
    #[arg(long)]
    projection: Option<String>,
    /// Rebuild every projection.
    #[arg(long)]
    all: bool,
    /// Start from position 0 even if an interrupted replay left a shadow to resume.
    #[arg(long)]
    restart: bool,
    /// Events per shadow transaction.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    batch_size: i64,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The Postgres ceiling (pgbench), then creates, repeat creates and GETs over HTTP.
    Http(crate::bench::http::HttpBenchArgs),
    /// The NATS relay: commit-to-consumer latency at a steady rate, catch-up over a backlog.
    Relay(crate::bench::relay::RelayBenchArgs),
    /// Every projection rebuilt from a generated history of 1,000,000 events: events/s.
    Replay(crate::bench::replay::ReplayBenchArgs),
    /// The MCP gateway: one upstream called directly and through the gateway (closed loop,
    /// open loop at a fixed rate, sessions held), with the goals met or missed.
    Gateway(crate::bench::gateway::GatewayBenchArgs),
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project; prints its id alone on stdout.
    Create {
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// The hosts the project's OAuth flows may redirect the browser to: changes them with
    /// --add/--remove, --set or --clear, then prints the list in force, one host a line.
    RedirectHosts(RedirectHostsArgs),
    /// The project's own request rate per API key (instead of PROVISIONER_RATE_LIMIT_PER_KEY):
    /// sets it with --per-second and --burst, or --clear, then prints the rate in force.
    RateLimit(RateLimitArgs),
}

#[derive(clap::Args)]
struct RateLimitArgs {
    project: String,
    /// Requests per second each key of the project may make, sustained.
    #[arg(long, requires = "burst", conflicts_with = "clear")]
    per_second: Option<u32>,
    /// Requests each key may make at once beyond the rate (refilled at the rate).
    #[arg(long, requires = "per_second", conflicts_with = "clear")]
    burst: Option<u32>,
    /// Back to the deployment's default.
    #[arg(long)]
    clear: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(clap::Args)]
struct RedirectHostsArgs {
    project: String,
    /// Allow a host (app.example.com, localhost:3000, *.example.com); repeatable.
    #[arg(long, value_name = "HOST")]
    add: Vec<String>,
    /// Stop allowing a host; repeatable.
    #[arg(long, value_name = "HOST")]
    remove: Vec<String>,
    /// Replace the whole list with these hosts.
    #[arg(long, value_name = "HOST", num_args = 1.., conflicts_with_all = ["add", "remove"])]
    set: Option<Vec<String>>,
    /// Allow no host at all (flows end on this service's own pages).
    #[arg(long, conflicts_with_all = ["add", "remove", "set"])]
    clear: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

impl RedirectHostsArgs {
    /// The change asked for; `None` to only list.
    fn change(&self) -> anyhow::Result<Option<RedirectHostsChange>> {
        let parse = |flag: &str, entries: &[String]| {
            RedirectHosts::parse(entries).map_err(|e| anyhow::anyhow!("--{flag} {}: {}", entries[e.index], e.reason))
        };
        Ok(match &self.set {
            Some(hosts) => Some(RedirectHostsChange::Replace(parse("set", hosts)?)),
            None if self.clear => Some(RedirectHostsChange::Replace(RedirectHosts::default())),
            None if self.add.is_empty() && self.remove.is_empty() => None,
            None => Some(RedirectHostsChange::Edit {
                add: parse("add", &self.add)?,
                remove: parse("remove", &self.remove)?,
            }),
        })
    }
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Issue an API key; prints the key alone on stdout. It is shown this once.
    Create {
        #[arg(long)]
        project: String,
        /// A label for people.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke an API key by its id.
    Revoke {
        #[arg(long)]
        project: String,
        #[arg(long = "key-id")]
        key_id: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let outcome = runtime.block_on(run(cli.command));
    // The spans of the last requests are still in the exporter's batch.
    telemetry::shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Relay(args) if args.status => relay_status(args).await,
        Command::Relay(args) => relay(args).await,
        Command::Audit(args) => crate::audit::cli::run(args).await,
        Command::Replay(args) => replay(args).await,
        Command::Verify(args) => crate::verify::run(args).await,
        Command::Republish(args) => crate::relay::republish::run(args).await,

        Command::Migrate(database) => {
            store::connect_and_migrate(&database.url()?).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Project { command: ProjectCommand::Create { name, database } } => {
            let name = ProjectName::parse(&name).map_err(|reason| anyhow::anyhow!("project name {reason}"))?;
            let project_id = projects(&database).await?.create(name, &CommandMetadata::actor("cli")).await?;
            println!("{project_id}");
            Ok(())
        }
        Command::Project { command: ProjectCommand::RedirectHosts(args) } => redirect_hosts(args).await,
        Command::Project { command: ProjectCommand::RateLimit(args) } => rate_limit(args).await,
        Command::Key { command: KeyCommand::Create { project, name, database } } => {
            let project_id: ProjectId = project.parse().context("--project")?;
            let issued = projects(&database).await?.issue_key(project_id, name, &CommandMetadata::actor("cli")).await?;
            println!("{}", issued.key.expose_secret());
            eprintln!("key id {} (store the key now: it is not shown again)", issued.key_id);
            Ok(())
        }
        Command::Bench { command: BenchCommand::Http(args) } => crate::bench::http::run(args).await,
        Command::Bench { command: BenchCommand::Relay(args) } => crate::bench::relay::run(args).await,
        Command::Bench { command: BenchCommand::Replay(args) } => crate::bench::replay::run(args).await,
        Command::Bench { command: BenchCommand::Gateway(args) } => crate::bench::gateway::run(args).await,
        Command::Key { command: KeyCommand::Revoke { project, key_id, database } } => {
            let project_id: ProjectId = project.parse().context("--project")?;
            let key_id: ApiKeyId = key_id.parse().context("--key-id")?;
            projects(&database).await?.revoke_key(project_id, key_id, &CommandMetadata::actor("cli")).await?;
            eprintln!("key {key_id} revoked");
            Ok(())
        }
    }
}

async fn redirect_hosts(args: RedirectHostsArgs) -> anyhow::Result<()> {
    let project_id: ProjectId = args.project.parse().context("the project id")?;
    let change = args.change()?;
    let projects = projects(&args.database).await?;
    let hosts = match change {
        Some(change) => projects.change_redirect_hosts(project_id, change, &CommandMetadata::actor("cli")).await?,
        None => projects.redirect_hosts(project_id).await?,
    };
    for host in hosts.entries() {
        println!("{host}");
    }
    if hosts.is_empty() {
        eprintln!("no redirect hosts: OAuth flows of this project end on this service's own pages");
    }
    Ok(())
}

async fn rate_limit(args: RateLimitArgs) -> anyhow::Result<()> {
    let project_id: ProjectId = args.project.parse().context("the project id")?;
    let projects = projects(&args.database).await?;
    let meta = CommandMetadata::actor("cli");
    let in_force = match (args.per_second, args.burst) {
        (Some(per_second), Some(burst)) => {
            let limit = RateLimit::new(per_second, burst).map_err(|reason| anyhow::anyhow!("{reason}"))?;
            projects.set_rate_limit(project_id, Some(limit), &meta).await?
        }
        _ if args.clear => projects.set_rate_limit(project_id, None, &meta).await?,
        _ => projects.rate_limit(project_id).await?,
    };
    match in_force {
        Some(limit) => println!("{} requests/s per key, burst {}", limit.per_second(), limit.burst()),
        None => println!("the deployment's default (PROVISIONER_RATE_LIMIT_PER_KEY)"),
    }
    Ok(())
}

/// Project commands from the CLI. No projector may be running, so the CLI brings the views
/// up to date itself before it returns: a key it prints works at once.
async fn projects(database: &DatabaseArgs) -> anyhow::Result<Projects> {
    let pool = store::connect_and_migrate(&database.url()?).await?;
    let projector = Projector::new(pool.clone(), Projector::VIEWS, startup::views());
    Ok(Projects::new(startup::command_bus(&pool, Arc::new(projector)), pool))
}

async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let pool = store::connect_and_migrate(&args.database.url()?).await?;
    let replay = Replay::new(pool, startup::views(), args.projection.as_deref())?.with_batch_size(args.batch_size);
    let start = replay.prepare(args.restart).await?;
    if start.resumed {
        eprintln!("replay: resuming the interrupted replay in schema {} at {}", replay.schema(), start.at);
    } else {
        eprintln!("replay: rebuilding into schema {} from position 0", replay.schema());
    }
    let report = replay.run(start, &ConsoleProgress::for_stderr()).await?;
    eprintln!(
        "replay: {} events in {:.1} s ({:.0} events/s); views swapped at {} ({:.0} ms under lock)",
        report.events,
        report.rebuild_seconds,
        report.events as f64 / report.rebuild_seconds.max(1e-3),
        report.swapped_at,
        report.swap_millis
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let application = Application::build(&settings).await?;
    application.run_until_stopped(shutdown_signal()).await
}

/// The relay and the gateway's record publisher, as `serve` runs them.
async fn relay(args: RelayArgs) -> anyhow::Result<()> {
    let settings = args.nats.required()?;
    let pool = store::connect_and_migrate(&args.database.url()?).await?;
    check_nats_at_start(&settings).await?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let relay = tokio::spawn(Relay::new(pool.clone(), settings.clone()).run(cancel.clone()));
    let publisher = tokio::spawn(crate::gateway_record::Publisher::new(pool, settings).run(cancel.clone()));
    shutdown_signal().await;
    cancel.cancel();
    relay.await?;
    publisher.await?;
    Ok(())
}

/// Stops a start whose NATS settings NATS refuses (a wrong credential or certificate); a
/// NATS that does not answer yet is only waited for, as the relay does.
async fn check_nats_at_start(settings: &crate::nats::RelaySettings) -> anyhow::Result<()> {
    match crate::nats::probe(settings).await {
        Err(e) if crate::nats::ConnectFailure::is_misconfiguration(&e) => Err(e),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "NATS does not answer yet; the relay keeps trying");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// What an operator needs to know of the relay, one fact per line. Fails (after printing)
/// when NATS refuses the configured credential or certificate.
async fn relay_status(args: RelayArgs) -> anyhow::Result<()> {
    let pool = store::connect_and_migrate(&args.database.url()?).await?;
    let report = RelayReport::read(&pool, Relay::SUBSCRIBER).await?;
    println!("checkpoint            {}", report.checkpoint);
    println!("lag                   {} events, {:.1} s", report.lag.events, report.lag.seconds);
    let settings = args.nats.relay_settings()?;
    let live = match &settings {
        Some(settings) => Some(relay::stream::connect(settings, "provisioner-relay-status", 1).await),
        None => None,
    };
    let mut refused = None;
    let live_sequence = match (live, &settings) {
        (Some(Ok(js)), Some(settings)) => {
            relay::stream::last_sequence(&js, settings.namespace.stream()).await.map_err(|e| format!("{e:#}"))
        }
        (Some(Err(e)), _) => {
            let why = format!("{e:#}");
            if crate::nats::ConnectFailure::is_misconfiguration(&e) {
                refused = Some(e);
            }
            Err(why)
        }
        _ => Err("NATS_URL not set".into()),
    };
    let stream = settings.as_ref().map_or(events::envelope::STREAM, |s| s.namespace.stream());
    match (live_sequence, report.heartbeat.as_ref().and_then(|b| b.stream_last_sequence)) {
        (Ok(sequence), _) => println!("stream last sequence  {sequence} ({stream})"),
        (Err(why), Some(recorded)) => println!("stream last sequence  {recorded} (recorded by the relay; live: {why})"),
        (Err(why), None) => println!("stream last sequence  unknown ({why})"),
    }
    match &report.heartbeat {
        None => println!("relay                 never ran"),
        Some(beat) => println!(
            "relay                 {}, last heard {:.1} s ago{}",
            if beat.healthy { "healthy" } else { "failing" },
            beat.age_seconds,
            beat.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
    }
    match &report.oversized.newest_message_id {
        None => println!("without data          none"),
        Some(newest) => println!(
            "without data          {} events too large for NATS, published as claim checks (newest {newest}; \
             see the relay_oversized table)",
            report.oversized.events
        ),
    }
    match (&refused, report.problem(std::time::Duration::from_secs(10))) {
        (Some(_), _) => println!("status                misconfigured: NATS refuses this service's settings"),
        (None, Some(problem)) => println!("status                degraded: {problem}"),
        (None, None) => println!("status                ok"),
    }
    refused.map_or(Ok(()), Err)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
