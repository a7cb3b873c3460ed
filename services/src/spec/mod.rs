//! `/openapi.json`: the document poem-openapi derives from the handlers' types, completed with
//! what those types cannot carry, so that every response matches what the document declares
//! and every route is in it (checked by schemathesis in `tests/tests/system/spec.rs`).

mod aliases;
pub mod allow;
mod constraints;
mod nullable;
mod pages;
mod requests;

use poem::http::header::CONTENT_TYPE;
use poem::{Endpoint, Response, handler};
use serde_json::Value;
use std::sync::Arc;

/// The finished document, from poem-openapi's.
pub fn document(generated: &str) -> Value {
    let mut spec: Value = serde_json::from_str(generated).expect("poem-openapi writes JSON");
    // Before `nullable`, which then marks the rules' optional fields too.
    constraints::apply(&mut spec);
    requests::declare(&mut spec);
    nullable::mark_optional_properties(&mut spec);
    pages::declare_json_errors(&mut spec);
    // Last, so that the v3.1 copies carry everything above.
    aliases::add_v3_1(&mut spec);
    spec
}

/// `GET /openapi.json`, rendered once.
pub fn endpoint(document: &Value) -> impl Endpoint + use<> {
    let body: Arc<str> = document.to_string().into();
    #[handler]
    fn serve(body: poem::web::Data<&Arc<str>>) -> Response {
        Response::builder().header(CONTENT_TYPE, "application/json; charset=utf-8").body(body.0.to_string())
    }
    poem::EndpointExt::data(serve, body)
}
