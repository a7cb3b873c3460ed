//! The legacy transport's routes: `GET /sse?instance_id=…` and `POST /messages` (and
//! `/messages/`, which the app folds into `/messages`) with `?instance_id=…&session_id=…`.
//! Thin: reads the request, hands it to the gateway.

use super::super::Gateway;
use super::super::edge::{query_param, read_body};
use poem::web::Data;
use poem::{Body, Endpoint, EndpointExt, Request, Response, handler};

/// To mount at `/sse`.
pub fn sse_endpoint(gateway: Gateway) -> impl Endpoint {
    poem::get(open).data(gateway)
}

/// To mount at `/messages`.
pub fn messages_endpoint(gateway: Gateway) -> impl Endpoint {
    poem::post(post).data(gateway)
}

#[handler]
async fn open(req: &Request, gateway: Data<&Gateway>) -> Response {
    if let Some(refused) = gateway.refuse_origin(req.headers()) {
        return refused;
    }
    gateway.open_legacy(query_param(req, "instance_id").as_deref()).await
}

#[handler]
async fn post(req: &Request, body: Body, gateway: Data<&Gateway>) -> Response {
    if let Some(refused) = gateway.refuse_origin(req.headers()) {
        return refused;
    }
    let (instance_id, session_id) = (query_param(req, "instance_id"), query_param(req, "session_id"));
    gateway.post_legacy(instance_id.as_deref(), session_id.as_deref(), read_body(req, body).await).await
}
