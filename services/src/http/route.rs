//! The route template a request matched, never its raw path: for metric labels and span names,
//! where ids would mean one series per id (and an instance id is a credential of the gateway's
//! URLs).
//!
//! An API path is named by its operation's template in the OpenAPI document
//! (`/mcp-server/instance/{instanceId}`), given by the router as [`Templates`]: that holds for
//! answers given before the operation's handler too (a 429, an idempotent replay, a 405).
//! Other routes (the gateway's) are named by the pattern poem's router attaches to the response
//! it returns (`/v3/mcp/:server_id`). The app's outer middleware only sees the response after
//! the surfaces rendered their errors (a new response without it), so [`remember`], right
//! around the router, puts the template into the request's [`RouteSlot`] for
//! [`super::context`] to read.

use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::{Arc, OnceLock};

/// Where the matched template is left for the outer middleware; empty when nothing matched.
#[derive(Clone, Default)]
pub struct RouteSlot(Arc<OnceLock<Arc<str>>>);

impl RouteSlot {
    /// The template, or `unmatched` for a path no route takes (a label of its own, never the
    /// path). The API's routes are nested at `/`, so a path none of them takes matched only
    /// that nest, whose own template is empty.
    pub fn template(&self) -> &str {
        self.0.get().map(|t| &**t).filter(|t| !t.is_empty()).unwrap_or("unmatched")
    }
}

/// The documented template of a path, if an operation of the API has it.
pub type Templates = Arc<dyn Fn(&str) -> Option<Arc<str>> + Send + Sync>;

/// Middleware around the router: puts the path's template into the request's slot.
pub async fn remember<E: Endpoint>(next: E, req: Request, templates: Templates) -> poem::Result<Response> {
    let slot = req.data::<RouteSlot>().cloned();
    let documented = templates(req.uri().path());
    let result = next.call(req).await.map(IntoResponse::into_response);
    let pattern = match &result {
        Ok(response) => response.data::<PathPattern>(),
        Err(error) => error.data::<PathPattern>(),
    };
    let template = documented.or_else(|| pattern.map(|p| p.0.clone()));
    if let (Some(slot), Some(template)) = (slot, template) {
        let _ = slot.0.set(template);
    }
    result
}
