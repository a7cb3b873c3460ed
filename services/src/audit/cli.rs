//! `provisioner audit`: a history as a table for people, or as JSON lines for tools.

use super::{Audit, Entry, Filter, Subject, parse_time};
use crate::config::DatabaseArgs;
use crate::error::AppError;
use anyhow::{Context, bail};
use chrono::SecondsFormat;
use events::{InstanceId, ProjectId};

#[derive(clap::Args)]
pub struct AuditArgs {
    /// The aggregate type: project, server, instance, oauth_app, auth_config or connected_account.
    pub aggregate_type: Option<String>,
    /// The aggregate's id (for `instance`, a slot id or an instance id).
    pub id: Option<String>,
    /// The history of the slot holding this instance.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: Option<String>,
    /// Everything about this end user (with --project): instance slots and connected accounts.
    #[arg(long, value_name = "USER_ID", requires = "project")]
    pub user: Option<String>,
    #[arg(long, value_name = "PROJECT_ID")]
    pub project: Option<String>,
    /// Only events recorded at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events recorded at or before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Only events of this type (`instance.created`); repeatable.
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    pub event_types: Vec<String>,
    /// Also print each stream's state at this time (RFC 3339), folded from its events.
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// One JSON object per line (every field, payload included) instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

impl AuditArgs {
    fn subject(&self) -> anyhow::Result<Subject> {
        match (&self.aggregate_type, &self.id, &self.instance, &self.user) {
            (Some(aggregate_type), Some(id), None, None) => {
                Ok(Subject::Aggregate { aggregate_type: aggregate_type.clone(), id: id.clone() })
            }
            (None, None, Some(instance), None) => {
                Ok(Subject::Instance(instance.parse::<InstanceId>().context("--instance")?))
            }
            (None, None, None, Some(user)) => {
                let project = self.project.as_deref().context("--user needs --project")?;
                Ok(Subject::User {
                    project_id: project.parse::<ProjectId>().context("--project")?,
                    user_id: user.clone(),
                })
            }
            (Some(_), None, None, None) => bail!("give the aggregate's id after its type"),
            _ => bail!("give one of: <aggregate-type> <id>, --instance <id>, --user <id> --project <id>"),
        }
    }

    fn filter(&self) -> anyhow::Result<Filter> {
        let time = |flag: &str, raw: &Option<String>| {
            raw.as_deref().map(|r| parse_time(r).map_err(|e| anyhow::anyhow!("{flag}: {e}"))).transpose()
        };
        Ok(Filter {
            since: time("--since", &self.since)?,
            until: time("--until", &self.until)?,
            event_types: self.event_types.clone(),
        })
    }
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let subject = args.subject()?;
    let filter = args.filter()?;
    let as_of = args.as_of.as_deref().map(parse_time).transpose().map_err(|e| anyhow::anyhow!("--as-of: {e}"))?;
    let pool = crate::store::connect_and_migrate(&args.database.url()?).await?;
    let audit = Audit::new(pool);
    let history = audit.history(&subject, &filter, None).await.map_err(explain)?;
    let calls = match super::whose(&subject) {
        Some(whose) => audit.calls(&whose, None, &filter, super::MAX_RECORDS).await.map_err(explain)?,
        None => Vec::new(),
    };
    if args.json {
        for entry in &history.entries {
            println!("{}", serde_json::to_string(entry)?);
        }
        // A record is told from an event by its `record_id` and `kind`.
        for call in &calls {
            println!("{}", serde_json::to_string(&call_line(call))?);
        }
    } else {
        print!("{}", table(&history.entries));
        eprintln!("{} events, project {}", history.entries.len(), history.project_id);
        if !calls.is_empty() {
            println!();
            print!("{}", calls_table(&calls));
            eprintln!("{} gateway records (sessions and tool calls)", calls.len());
        }
    }
    if let Some(at) = as_of {
        for stream in &history.streams {
            let state = match audit.state_at(stream, at, None).await {
                Ok(state) => state,
                Err(AppError::Rejected(_)) => serde_json::Value::Null,
                Err(e) => return Err(explain(e)),
            };
            let line = serde_json::json!({"as_of": at, "aggregate_type": stream.aggregate_type, "aggregate_id": stream.aggregate_id, "state": state});
            println!(
                "{}",
                if args.json { serde_json::to_string(&line)? } else { serde_json::to_string_pretty(&line)? }
            );
        }
    }
    Ok(())
}

fn explain(e: AppError<super::AuditError>) -> anyhow::Error {
    match e {
        AppError::Rejected(refusal) => anyhow::anyhow!("{refusal}"),
        other => anyhow::anyhow!("{other}"),
    }
}

/// A gateway record as one JSON line: the record with its commit position.
fn call_line(call: &crate::gateway_record::StoredRecord) -> serde_json::Value {
    let mut line = serde_json::to_value(&call.record).unwrap_or_default();
    line["position"] = serde_json::Value::String(call.position.to_string());
    line
}

/// The gateway's records, one line each, oldest first.
fn calls_table(calls: &[crate::gateway_record::StoredRecord]) -> String {
    const HEADERS: [&str; 7] = ["TIME", "KIND", "TOOL", "OUTCOME", "DURATION_MS", "REQUEST_ID", "TARGET"];
    let rows: Vec<[String; 7]> = calls
        .iter()
        .map(|call| {
            let r = &call.record;
            let target = match &r.target {
                events::gateway::Target::Instance { instance_id, user_id } => {
                    format!("instance {instance_id} (user {user_id})")
                }
                events::gateway::Target::ComposioServer { server_id, user_id, connected_account_id } => {
                    let who = user_id.as_deref().or(connected_account_id.as_deref()).unwrap_or("-");
                    format!("server {server_id} ({who})")
                }
                events::gateway::Target::RegisteredServer { server_id } => format!("registered server {server_id}"),
            };
            [
                r.time.clone(),
                r.kind.to_string(),
                r.tool_name.clone().unwrap_or_else(|| "-".into()),
                r.outcome.to_string(),
                format!("{:.1}", r.duration_ms),
                r.request_id.clone(),
                target,
            ]
        })
        .collect();
    aligned(&HEADERS, &rows)
}

/// Aligned columns, one line per event, oldest first.
fn table(entries: &[Entry]) -> String {
    const HEADERS: [&str; 8] = ["RECORDED_AT", "STREAM", "SEQ", "EVENT", "ACTOR", "REQUEST_ID", "CLIENT", "USER_AGENT"];
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|e| {
            [
                e.recorded_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                format!("{}:{}", e.aggregate_type, e.aggregate_id),
                e.sequence.to_string(),
                format!("{} v{}", e.event_type, e.event_version),
                e.actor.clone().unwrap_or_else(|| "-".into()),
                e.request_id.clone().unwrap_or_else(|| "-".into()),
                e.client_addr.clone().unwrap_or_else(|| "-".into()),
                e.user_agent.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    aligned(&HEADERS, &rows)
}

/// `headers` and `rows` in columns as wide as their widest cell.
fn aligned<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(actor: Option<&str>) -> Entry {
        Entry {
            position: "1/1".into(),
            aggregate_type: "server".into(),
            aggregate_id: "abc".into(),
            sequence: 1,
            event_type: "server.registered".into(),
            event_version: "1.0".into(),
            recorded_at: chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").unwrap().into(),
            actor: actor.map(str::to_owned),
            request_id: Some("abc".into()),
            client_addr: None,
            user_agent: None,
            data: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_table_aligns_its_columns_and_marks_missing_values() {
        let out = table(&[entry(Some("api_key:0123456789")), entry(None)]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        let actor_column = lines[0].find("ACTOR").unwrap();
        assert_eq!(&lines[1][actor_column..actor_column + 18], "api_key:0123456789");
        assert_eq!(&lines[2][actor_column..actor_column + 2], "- ");
        assert!(lines[1].starts_with("2026-11-23T10:00:00.000Z  server:abc  1    server.registered v1.0"));
    }
}
