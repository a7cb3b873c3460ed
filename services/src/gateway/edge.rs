//! The gateway's routes: `POST`, `GET` and `DELETE` on `/mcp` (and `/mcp/`, which the app
//! folds into `/mcp`) with `?instance_id=`. Thin: reads the request, hands it to the gateway.

use super::{Gateway, GatewayError, Incoming, MAX_REQUEST_BYTES};
use poem::http::Method;
use poem::web::Data;
use poem::{Body, Endpoint, EndpointExt, Request, Response, handler};

/// The gateway's endpoint, to mount at `/mcp`.
pub fn endpoint(gateway: Gateway) -> impl Endpoint {
    poem::get(serve).post(serve).delete(serve).data(gateway)
}

#[handler]
async fn serve(req: &Request, body: Body, gateway: Data<&Gateway>) -> Response {
    let instance_id = req.uri().query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "instance_id").map(|(_, v)| v.into_owned())
    });
    let body = if req.method() == Method::POST {
        body.into_bytes_limit(MAX_REQUEST_BYTES).await.map(Some).map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => GatewayError::TooLarge(MAX_REQUEST_BYTES),
            _ => GatewayError::InvalidRequest("the request body could not be read".into()),
        })
    } else {
        Ok(None)
    };
    let incoming = Incoming { method: req.method().clone(), instance_id, headers: req.headers().clone(), body };
    gateway.handle(incoming).await
}
