//! Errors raised outside handlers (routing, extractors, authentication) are rendered in the
//! format of the surface the path belongs to, so that each product's clients always get the
//! error body they know.

use super::context::RequestContext;
use super::problem::Problem;
use poem::web::Json;
use poem::{Endpoint, IntoResponse, Request, Response};

enum Surface {
    /// GAIA AI's MCP server registry under `/api/mcp`.
    Gaia,
    /// Klavis AI's API: `/mcp-server`, `/user`, `/white-labeling`, `/oauth`.
    Klavis,
    /// Composio's API under `/api/v3` (and `/api/v3.1`, rewritten to it).
    Composio,
    /// Everything else: health, docs, unknown paths.
    Service,
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// The surface a path belongs to, as a metric label: `gaia`, `klavis`, `composio`, `gateway`
/// (the MCP gateway's URLs, whose errors are JSON-RPC) or `service`.
pub fn label(path: &str) -> &'static str {
    let gateway = path == "/mcp"
        || under(path, "/v3/mcp")
        || path == "/sse"
        || path == "/messages"
        || (under(path, "/api/mcp/servers") && path.ends_with("/mcp"));
    if gateway {
        return "gateway";
    }
    match Surface::of(path) {
        Surface::Gaia => "gaia",
        Surface::Klavis => "klavis",
        Surface::Composio => "composio",
        Surface::Service => "service",
    }
}

impl Surface {
    fn of(path: &str) -> Self {
        if under(path, "/api/mcp") {
            Self::Gaia
        } else if under(path, "/api/v3") || under(path, "/api/v3.1") {
            Self::Composio
        } else if ["/mcp-server", "/user", "/white-labeling", "/oauth"].iter().any(|p| under(path, p)) {
            Self::Klavis
        } else {
            Self::Service
        }
    }

    fn render(&self, problem: Problem) -> Response {
        match self {
            Self::Gaia => crate::gaia::render(problem),
            Self::Klavis => crate::klavis::render(problem),
            Self::Composio => crate::composio::render(problem),
            Self::Service => {
                let status = problem.default_status();
                Json(serde_json::json!({ "error": problem.describe() })).with_status(status).into_response()
            }
        }
    }
}

pub async fn render_errors<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let surface = Surface::of(req.uri().path());
    let request_id = RequestContext::of(&req).request_id;
    match next.call(req).await {
        Ok(response) => Ok(response.into_response()),
        // A handler's own error response (already in its surface's format).
        Err(err) if err.is_from_response() => Ok(err.into_response()),
        Err(err) => {
            let problem = Problem::from_poem(err);
            // The kind and field only: an error's text may quote a value sent by mistake.
            let field = problem.location.as_ref().map(|l| l.field_name());
            tracing::debug!(%request_id, kind = ?problem.kind, ?field, "request refused before its handler");
            Ok(surface.render(problem))
        }
    }
}
