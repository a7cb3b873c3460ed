//! Errors raised outside handlers (routing, extractors, authentication) are rendered in the
//! format of the surface the path belongs to, so that each product's clients always get the
//! error body they know. Here, beside the mounting of the surfaces, since it names each
//! surface's prefixes and renderer: `http` stays below the surfaces.

use crate::http::caller::AuthError;
use crate::http::caller::KeySource;
use crate::http::context::RequestContext;
use crate::http::problem::Problem;
use crate::rate_limit::Limited;
use poem::web::Json;
use poem::{Endpoint, IntoResponse, Request, Response};

/// The surface a path belongs to: whose error format it answers in, where its callers send their key.
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

    /// Where this surface's callers present their API key, in the order its extractor reads them.
    fn key_sources(&self) -> &'static [KeySource] {
        match self {
            Self::Gaia => &crate::gaia::KEY_SOURCES,
            Self::Klavis => &crate::klavis::KEY_SOURCES,
            Self::Composio => &crate::composio::KEY_SOURCES,
            Self::Service => &crate::project_api::KEY_SOURCES,
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

/// The surfaces as the idempotency middleware needs them.
pub const FOR_IDEMPOTENCY: crate::idempotency::Surfaces =
    crate::idempotency::Surfaces { key_sources: key_sources_of, render: render_for };

fn key_sources_of(path: &str) -> &'static [KeySource] {
    Surface::of(path).key_sources()
}

fn render_for(path: &str, problem: Problem) -> Response {
    Surface::of(path).render(problem)
}

pub async fn render_errors<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let surface = Surface::of(req.uri().path());
    let request_id = RequestContext::of(&req).request_id;
    match next.call(req).await {
        Ok(response) => Ok(response.into_response()),
        // A handler's own error response (already in its surface's format).
        Err(err) if err.is_from_response() => Ok(err.into_response()),
        Err(err) => {
            let limited = err.downcast_ref::<AuthError>().and_then(AuthError::rate_limited).map(Limited::headers);
            let problem = Problem::from_poem(err);
            // The kind and field only: an error's text may quote a value sent by mistake.
            let field = problem.location.as_ref().map(|l| l.field_name());
            tracing::debug!(%request_id, kind = ?problem.kind, ?field, "request refused before its handler");
            let mut response = surface.render(problem);
            // Over the rate: when to come back, and the policy.
            response.headers_mut().extend(limited.into_iter().flatten());
            Ok(response)
        }
    }
}
