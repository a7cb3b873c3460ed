//! The whole-request deadline (`PROVISIONER_REQUEST_TIMEOUT_SECS`): an API request that takes
//! longer is stopped and answered 503 in its surface's format, rather than holding a
//! connection and a database slot for as long as a stuck dependency does. The gateway's URLs
//! are outside it: they have their own upstream timeouts and streams that stay open.

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::time::Duration;

/// A request stopped at the deadline. It may have taken effect (a commit can finish just
/// before the deadline): the message says to read before retrying.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request took longer than {} s and was stopped; it may have taken effect: read the resource before \
     retrying",
    .0.as_secs()
)]
pub struct RequestTimedOut(pub Duration);

impl poem::error::ResponseError for RequestTimedOut {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

pub async fn within<E: Endpoint>(next: E, req: Request, limit: Duration) -> poem::Result<Response> {
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(answer) => answer.map(IntoResponse::into_response),
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "a request was stopped at its deadline");
            Err(RequestTimedOut(limit).into())
        }
    }
}
