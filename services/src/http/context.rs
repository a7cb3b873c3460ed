//! Per-request context: the request id (taken from `x-request-id` or minted), the client's
//! address and user agent, and the W3C trace context it continues. It opens the request's
//! tracing span, is echoed in the response, and follows the request into the metadata of
//! every event it causes. Each request is counted and timed here (see [`crate::metrics`]).

use super::route::RouteSlot;
use crate::store::CommandMetadata;
use crate::telemetry::trace_context;
use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    /// The id of the request being handled, for error bodies that carry it (Composio's
    /// `request_id`) and are built where the request itself is out of reach.
    static CURRENT_REQUEST_ID: String;
}

/// The id of the request this task is handling, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `future` in a task of its own that stays part of the current request: the request's id
/// (for error bodies) and span follow it. For work that must finish even if the client goes
/// away, which drops the request's own future.
pub fn spawn_in_request<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = future.instrument(tracing::Span::current());
    match current_request_id() {
        Some(id) => tokio::spawn(CURRENT_REQUEST_ID.scope(id, task)),
        None => tokio::spawn(task),
    }
}

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// What the events of this request carry as their `traceparent` (see [`trace_context`]).
    pub traceparent: Option<String>,
}

impl RequestContext {
    fn of_request(req: &Request) -> Self {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let request_id = header(REQUEST_ID_HEADER)
            .filter(|id| is_acceptable_request_id(id))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let client_addr = req.remote_addr().as_socket_addr().map(|a| a.ip().to_string());
        let user_agent = header("user-agent").map(|ua| ua.chars().take(256).collect());
        Self { request_id, client_addr, user_agent, traceparent: None }
    }

    /// The context a handler was called with; a default one for requests that bypassed the
    /// middleware (never the case through [`super::app`]).
    pub fn of(req: &Request) -> Self {
        req.data::<Self>().cloned().unwrap_or_else(|| Self::of_request(req))
    }

    pub fn metadata(&self, actor: String) -> CommandMetadata {
        CommandMetadata {
            actor,
            request_id: Some(self.request_id.clone()),
            client_addr: self.client_addr.clone(),
            user_agent: self.user_agent.clone(),
            traceparent: self.traceparent.clone(),
        }
    }
}

/// A caller-chosen id is kept only if it is short printable ASCII: it ends up in logs,
/// events and response headers.
fn is_acceptable_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Middleware: attaches the context, runs the request inside its span, logs the outcome
/// (never the body), and echoes the request id.
pub async fn with_request_context<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let mut context = RequestContext::of_request(&req);
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = tracing::field::Empty,
        request_id = %context.request_id,
        // Filled once routed. (The exported span keeps the name `request`: its context is taken
        // before routing, for the events' metadata, and a started span is not renamed.)
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    // An exported span names its route template only: a path may hold an instance id, which is
    // a credential of the gateway's URLs, and a trace backend is not the service's own log.
    if !crate::telemetry::exporting() {
        span.record("path", req.uri().path());
    }
    context.traceparent = trace_context::continue_request(req.headers(), &span);
    let request_id = HeaderValue::from_str(&context.request_id).ok();
    let id = context.request_id.clone();
    let (method, surface) = (req.method().clone(), super::surface::label(req.uri().path()));
    let route = RouteSlot::default();
    req.set_data(context);
    req.set_data(route.clone());
    let handled = async move {
        let started = Instant::now();
        let mut response = match next.call(req).await {
            Ok(response) => response.into_response(),
            Err(err) => err.into_response(),
        };
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        let span = tracing::Span::current();
        span.record("http.route", route.template());
        span.record("http.response.status_code", status);
        crate::metrics::http::handled(&method, surface, route.template(), status, elapsed);
        tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request handled");
        if let Some(id) = request_id {
            response.headers_mut().insert(REQUEST_ID_HEADER, id);
        }
        Ok(response)
    }
    .instrument(span);
    CURRENT_REQUEST_ID.scope(id, handled).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_printable_request_ids_are_kept() {
        assert!(is_acceptable_request_id("abc"));
        assert!(!is_acceptable_request_id(""));
        assert!(!is_acceptable_request_id("has space"));
        assert!(!is_acceptable_request_id(&"x".repeat(129)));
    }
}
