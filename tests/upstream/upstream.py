"""A real MCP server (the `mcp` package's MCPServer, formerly FastMCP) for the gateway tests.

Serves Streamable HTTP on 127.0.0.1:PORT at /mcp with four tools:
  whoami            read-only: returns the credential headers it received, and how many
                    times delete_everything ran (so a test sees a call that must not arrive)
  delete_everything a write (readOnlyHint false, destructive)
  slow              read-only: sleeps `seconds` before answering
  fail              read-only: raises, so the call ends in a tool error
Usage: python upstream.py PORT [sse]
With `sse` it serves the legacy HTTP+SSE transport instead: GET /sse, POST /messages/.
"""

import asyncio
import json
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("gateway-test-upstream")
deletions = 0

# The headers whoami reports: what a gateway may or may not pass on.
REPORTED = (
    "authorization",
    "x-api-key",
    "x-user-api-key",
    "cookie",
    "x-upstream-key",
    "x-proxy-token",
    "x-disabled-header",
    "gaia-api-key",
    "mcp-protocol-version",
)


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def whoami(ctx: Context) -> str:
    headers = ctx.headers or {}
    return json.dumps({"headers": {name: headers.get(name) for name in REPORTED}, "deletions": deletions})


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
def delete_everything() -> str:
    global deletions
    deletions += 1
    return "deleted everything"


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}s"


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def fail() -> str:
    raise RuntimeError("this tool always fails")


if __name__ == "__main__":
    port = int(sys.argv[1])
    if sys.argv[2:] == ["sse"]:
        server.run("sse", host="127.0.0.1", port=port)
    else:
        server.run("streamable-http", host="127.0.0.1", port=port, streamable_http_path="/mcp")
