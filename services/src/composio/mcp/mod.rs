//! `/api/v3/mcp`: MCP servers in Composio's shape (on the same server registry as the GAIA
//! surface) and their per-user instances.

mod convert;
mod instances;
mod servers;
mod wire;

pub use instances::McpInstancesApi;
pub use servers::McpServersApi;
