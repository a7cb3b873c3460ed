//! `/openapi.json`: the document poem-openapi derives from the handlers' types, completed with
//! what those types cannot carry, so that every response matches what the document declares
//! and every route is in it (checked by schemathesis in `tests/tests/system/spec.rs`).

mod aliases;
pub mod allow;
mod constraints;
mod idempotency_key;
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
    idempotency_key::declare(&mut spec);
    nullable::mark_optional_properties(&mut spec);
    pages::declare_json_errors(&mut spec);
    // Last, so that the v3.1 copies carry everything above.
    aliases::add_v3_1(&mut spec);
    spec
}

/// `/docs`: poem-openapi's Swagger UI page, showing the finished document.
pub fn docs(page: &str, generated: &str, document: &Value) -> impl Endpoint + use<> {
    let html = docs_page(page, generated, document);
    poem::Route::new().at("/", poem::endpoint::make_sync(move |_| poem::web::Html(html.clone())))
}

/// The page embeds the document verbatim, and poem-openapi builds it from its own.
fn docs_page(page: &str, generated: &str, document: &Value) -> String {
    page.replacen(generated, &document.to_string(), 1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_page_shows_the_finished_document() {
        let generated = "{\"paths\": {}}";
        let page = format!("<script>let spec = {generated};</script>");
        let html = docs_page(&page, generated, &serde_json::json!({"paths": {"/finished": {}}}));
        assert_eq!(html, "<script>let spec = {\"paths\":{\"/finished\":{}}};</script>");
    }
}
