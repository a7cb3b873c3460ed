//! Errors raised outside handlers (routing, extractors, authentication) are rendered in the
//! format of the surface the path belongs to, so that each product's clients always get the
//! error body they know. Here, beside the mounting of the surfaces, since it names each
//! surface's renderer: `http` stays below the surfaces (it knows their prefixes only).

use crate::http::caller::{AuthError, KeySource};
use crate::http::context::RequestContext;
use crate::http::problem::Problem;
use crate::http::surface::Surface;
use crate::rate_limit::Limited;
use poem::web::Json;
use poem::{Endpoint, IntoResponse, Request, Response};

/// A problem in the format of the surface it concerns.
fn render(surface: Surface, problem: Problem) -> Response {
    match surface {
        Surface::Gaia => crate::gaia::render(problem),
        Surface::Klavis => crate::klavis::render(problem),
        Surface::Composio => crate::composio::render(problem),
        Surface::Service => {
            let status = problem.default_status();
            Json(serde_json::json!({ "error": problem.describe() })).with_status(status).into_response()
        }
    }
}

/// Where a surface's callers present their API key, in the order its extractor reads them.
fn key_sources(surface: Surface) -> &'static [KeySource] {
    match surface {
        Surface::Gaia => &crate::gaia::KEY_SOURCES,
        Surface::Klavis => &crate::klavis::KEY_SOURCES,
        Surface::Composio => &crate::composio::KEY_SOURCES,
        Surface::Service => &crate::project_api::KEY_SOURCES,
    }
}

/// The surfaces as the idempotency middleware needs them.
pub const FOR_IDEMPOTENCY: crate::idempotency::Surfaces =
    crate::idempotency::Surfaces { key_sources: key_sources_of, render: render_for };

fn key_sources_of(path: &str) -> &'static [KeySource] {
    key_sources(Surface::of(path))
}

fn render_for(path: &str, problem: Problem) -> Response {
    render(Surface::of(path), problem)
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
            let mut response = render(surface, problem);
            // Over the rate: when to come back, and the policy.
            response.headers_mut().extend(limited.into_iter().flatten());
            Ok(response)
        }
    }
}
