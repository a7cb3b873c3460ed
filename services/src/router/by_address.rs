//! The rate per client address of the routes that take no API key: the gateway's capability
//! URLs (a Klavis instance's `/mcp/?instance_id=…`, `/sse`, `/messages`), the OAuth browser
//! pages and the hosted connect links. Each refusal in the form its clients read: a JSON-RPC
//! error at the gateway, a plain page in the browser. The address is the TCP peer's: behind a
//! proxy every client shares the proxy's (limit there instead, or leave this off).

use crate::gateway::GatewayError;
use crate::rate_limit::RateLimits;
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};

/// Whether a path is one of the routes without a key, and whether it is the gateway's.
fn keyless(path: &str) -> Option<Keyless> {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/mcp") || under("/sse") || under("/messages") {
        Some(Keyless::Gateway)
    } else if under("/oauth") || path.contains("/connected_accounts/link/") {
        Some(Keyless::Browser)
    } else {
        None
    }
}

enum Keyless {
    Gateway,
    Browser,
}

pub async fn limit<E: Endpoint>(next: E, req: Request, limits: RateLimits) -> poem::Result<Response> {
    let (Some(keyless), Some(address)) = (keyless(req.uri().path()), req.remote_addr().as_socket_addr()) else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    let Err(limited) = limits.check_address(address.ip()) else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    Ok(match keyless {
        Keyless::Gateway => GatewayError::RateLimited(limited).respond(None),
        Keyless::Browser => {
            let mut page = limited.message().with_status(StatusCode::TOO_MANY_REQUESTS).into_response();
            page.headers_mut().extend(limited.headers());
            page
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyless_routes_are_the_capability_urls_and_the_browser_pages() {
        for path in ["/mcp", "/mcp/", "/sse", "/messages/"] {
            assert!(matches!(keyless(path), Some(Keyless::Gateway)), "{path}");
        }
        for path in ["/oauth/github/callback", "/api/v3/connected_accounts/link/tok"] {
            assert!(matches!(keyless(path), Some(Keyless::Browser)), "{path}");
        }
        for path in ["/mcp-server/instance/create", "/v3/mcp/x", "/api/mcp/servers", "/health", "/messagesx"] {
            assert!(keyless(path).is_none(), "{path}");
        }
    }
}
