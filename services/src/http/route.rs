//! The route template a request matched (`/mcp-server/instance/:param0`: poem-openapi names
//! an operation's path parameters by position), never its raw
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
    /// The template, or `unmatched` for a path no route takes (a label of its own, never the
    /// path). The API's routes are nested at `/`, so a path none of them takes matched only
    /// that nest, whose own template is empty.
    pub fn template(&self) -> &str {
        self.0.get().map(|t| &**t).filter(|t| !t.is_empty()).unwrap_or("unmatched")
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
