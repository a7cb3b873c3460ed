//! How the browser-facing OAuth endpoints answer: a redirect, or a plain HTML page.

use super::Outcome;
use poem::http::StatusCode;
use poem_openapi::ApiResponse;
use poem_openapi::payload::Html;

#[derive(ApiResponse)]
pub enum OAuthAnswer {
    /// On to the provider, or back to the caller's `redirect_url`.
    #[oai(status = 302)]
    Redirect(#[oai(header = "Location")] String),
    /// The flow ended here: a plain page says how.
    #[oai(status = 200)]
    Page(Html<String>),
    #[oai(status_range = "4XX")]
    Refused(StatusCode, Html<String>),
    #[oai(status_range = "5XX")]
    Failed(StatusCode, Html<String>),
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, message: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p>{m}</p></body></html>",
        t = escape(title),
        m = escape(message)
    ))
}

impl From<Outcome> for OAuthAnswer {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Redirect(url) => Self::Redirect(url),
            Outcome::Page { status: 200, title, message } => Self::Page(page(title, &message)),
            Outcome::Page { status, title, message } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                if status.is_server_error() {
                    Self::Failed(status, page(title, &message))
                } else {
                    Self::Refused(status, page(title, &message))
                }
            }
        }
    }
}
