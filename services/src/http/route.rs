//! The route template a request matched (`/mcp-server/instance/:instance_id`), never its raw
//! path: for metric labels and span names, where ids would mean one series per id (and an
//! instance id is a credential of the gateway's URLs).
//!
//! poem's router attaches the matched pattern to the response it returns; the app's outer
//! middleware only sees the response after the surfaces rendered their errors (a new response
//! without it), so [`remember`], right around the router, puts it into the request's
//! [`RouteSlot`] for [`super::context`] to read.

use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::{Arc, OnceLock};

/// Where the matched template is left for the outer middleware; empty when nothing matched.
#[derive(Clone, Default)]
pub struct RouteSlot(Arc<OnceLock<Arc<str>>>);

impl RouteSlot {
    /// The template, or `unmatched` (any path no route takes: a label of its own, not the path).
    pub fn template(&self) -> &str {
        self.0.get().map_or("unmatched", |t| t)
    }
}

/// Middleware around the router: copies the matched template into the request's slot.
pub async fn remember<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let slot = req.data::<RouteSlot>().cloned();
    let result = next.call(req).await.map(IntoResponse::into_response);
    let pattern = match &result {
        Ok(response) => response.data::<PathPattern>(),
        Err(error) => error.data::<PathPattern>(),
    };
    if let (Some(slot), Some(pattern)) = (slot, pattern) {
        let _ = slot.0.set(pattern.0.clone());
    }
    result
}
