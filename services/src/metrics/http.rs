//! Requests counted and timed, by surface, route template, method and status (recorded by
//! [`crate::http::context`], which sees every answer in its final form).

use poem::http::Method;
use std::time::Duration;

pub fn handled(method: &Method, surface: &'static str, route: &str, status: u16, elapsed: Duration) {
    if !super::enabled() {
        return;
    }
    let labels = [("surface", surface.to_owned()), ("route", route.to_owned())];
    ::metrics::histogram!(super::HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
    let method = method_label(method);
    ::metrics::counter!(super::HTTP_REQUESTS, "surface" => surface, "route" => route.to_owned(), "method" => method, "status" => status.to_string())
        .increment(1);
}

/// Methods outside the standard ones share one label: a client could invent any number.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
