//! HTTP plumbing shared by every surface: request context, JSON bodies with precise errors,
//! secret inputs, authentication, and `Problem`, the surface-independent error each surface
//! renders in its own format.

pub mod body;
pub mod caller;
pub mod context;
pub mod deadline;
pub mod drain;
pub mod input;
pub mod problem;
pub mod route;
pub mod secret_input;
pub mod server;
pub mod service_error;
pub mod surface;
pub mod uri;

use poem::{Endpoint, IntoResponse, Request, Response};

/// `/user/` is `/user`: Klavis's SDK lists users at `user/` (FastAPI redirects either form to
/// the other), while routes here are registered without the slash.
pub async fn without_trailing_slash<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rewritten = match req.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rewritten.parse() {
            *req.uri_mut() = uri;
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}
