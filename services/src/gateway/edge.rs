//! The gateway's routes: `POST`, `GET` and `DELETE` on `/mcp` (and `/mcp/`, which the app
//! folds into `/mcp`) with `?instance_id=`, and on `/v3/mcp/{server_id}` (and its `/mcp`) with
//! Composio's selector, and on `/api/mcp/servers/{id}/mcp` (GAIA) with the GAIA key. Thin: reads
//! the request, hands it to the gateway.

use super::{Address, Gateway, GatewayError, Incoming, MAX_REQUEST_BYTES};
use crate::http::caller::{AuthError, authenticate};
use bytes::Bytes;
use poem::http::Method;
use poem::web::{Data, Path};
use poem::{Body, Endpoint, EndpointExt, Request, Response, handler};

/// The gateway's endpoint, to mount at `/mcp`.
pub fn endpoint(gateway: Gateway) -> impl Endpoint {
    poem::get(serve).post(serve).delete(serve).data(gateway)
}

/// The gateway's endpoint for Composio URLs, to mount at `/v3/mcp/:server_id` (and
/// `/v3/mcp/:server_id/mcp`).
pub fn composio_endpoint(gateway: Gateway) -> impl Endpoint {
    poem::get(serve_composio).post(serve_composio).delete(serve_composio).data(gateway)
}

/// The gateway's endpoint for registered servers' `gatewayUrl`s, to mount at
/// `/api/mcp/servers/:server_id/mcp`.
pub fn registered_endpoint(gateway: Gateway) -> impl Endpoint {
    poem::get(serve_registered).post(serve_registered).delete(serve_registered).data(gateway)
}

#[handler]
async fn serve(req: &Request, body: Body, gateway: Data<&Gateway>) -> Response {
    let incoming = Incoming {
        method: req.method().clone(),
        address: Address::Instance(query_param(req, "instance_id")),
        headers: req.headers().clone(),
        body: read_body(req, body).await,
    };
    gateway.handle(incoming).await
}

#[handler]
async fn serve_composio(req: &Request, server_id: Path<String>, body: Body, gateway: Data<&Gateway>) -> Response {
    let address = Address::Composio { server_id: server_id.0, query: req.uri().query().map(str::to_owned) };
    let incoming = Incoming {
        method: req.method().clone(),
        address,
        headers: req.headers().clone(),
        body: read_body(req, body).await,
    };
    gateway.handle(incoming).await
}

#[handler]
async fn serve_registered(req: &Request, server_id: Path<String>, body: Body, gateway: Data<&Gateway>) -> Response {
    // The GAIA API's own key sources and resolution, so a key works here exactly as there.
    let caller = authenticate(req, &crate::gaia::KEY_SOURCES).await.map_err(|e| match e {
        AuthError::Missing | AuthError::Invalid => GatewayError::GaiaKeyRequired,
        AuthError::Unavailable => GatewayError::Internal,
        AuthError::RateLimited(limited) => GatewayError::RateLimited(limited),
    });
    let incoming = Incoming {
        method: req.method().clone(),
        address: Address::Registered { server_id: server_id.0, caller },
        headers: req.headers().clone(),
        body: read_body(req, body).await,
    };
    gateway.handle(incoming).await
}

/// The first value of `name` in the query.
pub(super) fn query_param(req: &Request, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The longest a POST's body may take to arrive. The gateway's URLs have no request deadline
/// (their answers may stream for minutes), so a body sent a byte at a time would otherwise
/// hold its task for ever; 4 MiB at 140 KiB/s fits.
pub(super) const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A POST's body, within [`MAX_REQUEST_BYTES`] and [`BODY_READ_TIMEOUT`]; none for GET and DELETE.
pub(super) async fn read_body(req: &Request, body: Body) -> Result<Option<Bytes>, GatewayError> {
    if req.method() != Method::POST {
        return Ok(None);
    }
    let read = tokio::time::timeout(BODY_READ_TIMEOUT, body.into_bytes_limit(MAX_REQUEST_BYTES));
    let Ok(read) = read.await else { return Err(GatewayError::BodyTimeout(BODY_READ_TIMEOUT)) };
    read.map(Some).map_err(|e| match e {
        poem::error::ReadBodyError::PayloadTooLarge => GatewayError::TooLarge(MAX_REQUEST_BYTES),
        _ => GatewayError::InvalidRequest("the request body could not be read".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post() -> Request {
        Request::builder().method(Method::POST).uri("/mcp/?instance_id=x".parse().unwrap()).finish()
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_is_refused_at_the_body_read_timeout() {
        let never = Body::from_bytes_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        let started = tokio::time::Instant::now();
        let read = read_body(&post(), never).await;
        assert!(matches!(read, Err(GatewayError::BodyTimeout(t)) if t == BODY_READ_TIMEOUT), "{read:?}");
        assert_eq!(started.elapsed(), BODY_READ_TIMEOUT);
        assert_eq!(GatewayError::BodyTimeout(BODY_READ_TIMEOUT).status(), poem::http::StatusCode::REQUEST_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_whole_body_is_read() {
        let read = read_body(&post(), Body::from_bytes(Bytes::from_static(b"{}"))).await;
        assert_eq!(read.unwrap().as_deref(), Some(&b"{}"[..]));
    }
}
