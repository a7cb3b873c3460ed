//! An aggregate's state folded from its events, the way cqrs-es folds it before a command.

use crate::feed::FeedEvent;
use cqrs_es::Aggregate;
use domain::auth_config::AuthConfig;
use domain::connected_account::ConnectedAccount;
use domain::instance::Instance;
use domain::oauth_app::OAuthApp;
use domain::project::Project;
use domain::server::Server;
use serde_json::Value;

/// The state of a stream of `aggregate_type` after `events`, as JSON.
pub fn fold(aggregate_type: &str, events: &[FeedEvent]) -> anyhow::Result<Value> {
    match aggregate_type {
        "project" => fold_as::<Project>(events),
        "server" => fold_as::<Server>(events),
        "instance" => fold_as::<Instance>(events),
        "oauth_app" => fold_as::<OAuthApp>(events),
        "auth_config" => fold_as::<AuthConfig>(events),
        "connected_account" => fold_as::<ConnectedAccount>(events),
        other => anyhow::bail!("no aggregate of type `{other}`"),
    }
}

fn fold_as<A: Aggregate>(events: &[FeedEvent]) -> anyhow::Result<Value> {
    let mut aggregate = A::default();
    for event in events {
        let typed: A::Event = serde_json::from_str(&event.payload_json).map_err(|e| {
            anyhow::anyhow!("cannot decode {} {} at {}: {e}", event.aggregate_type, event.event_type, event.position)
        })?;
        aggregate.apply(typed);
    }
    Ok(serde_json::to_value(&aggregate)?)
}
