//! Which surface a path belongs to, by its prefix: for rendering errors in that surface's
//! format (see `router::surface`) and for metric labels.

pub enum Surface {
    /// GAIA AI's MCP server registry under `/api/mcp`.
    Gaia,
    /// Klavis AI's API: `/mcp-server`, `/user`, `/white-labeling`, `/oauth`.
    Klavis,
    /// Composio's API under `/api/v3` (and `/api/v3.1`, rewritten to it).
    Composio,
    /// Everything else: health, docs, unknown paths.
    Service,
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// The surface a path belongs to, as a metric label: `gaia`, `klavis`, `composio`, `gateway`
/// (the MCP gateway's URLs, whose errors are JSON-RPC) or `service`.
pub fn label(path: &str) -> &'static str {
    let gateway = path == "/mcp"
        || under(path, "/v3/mcp")
        || path == "/sse"
        || path == "/messages"
        || (under(path, "/api/mcp/servers") && path.ends_with("/mcp"));
    if gateway {
        return "gateway";
    }
    match Surface::of(path) {
        Surface::Gaia => "gaia",
        Surface::Klavis => "klavis",
        Surface::Composio => "composio",
        Surface::Service => "service",
    }
}

impl Surface {
    pub fn of(path: &str) -> Self {
        if under(path, "/api/mcp") {
            Self::Gaia
        } else if under(path, "/api/v3") || under(path, "/api/v3.1") {
            Self::Composio
        } else if ["/mcp-server", "/user", "/white-labeling", "/oauth"].iter().any(|p| under(path, p)) {
            Self::Klavis
        } else {
            Self::Service
        }
    }
}
