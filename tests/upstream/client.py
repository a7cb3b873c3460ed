"""The official MCP Python client (`mcp` package) against a URL, for the gateway tests.

Usage: python client.py URL CALLER_KEY [sse]
Connects over Streamable HTTP (or, with `sse`, the legacy HTTP+SSE transport) sending the
caller's own key (which must never reach the upstream), initializes, lists the tools, calls
whoami, and prints one JSON object:
{"server": ..., "tools": [...], "whoami": {...}} or {"error": "..."}.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


async def session_report(read, write) -> dict:
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool("whoami", {})
        text = result.content[0].text
        return {
            "server": init.server_info.name,
            "tools": sorted(tool.name for tool in tools.tools),
            "whoami": json.loads(text),
        }


async def main(url: str, caller_key: str, transport: str) -> dict:
    headers = {"Authorization": f"Bearer {caller_key}", "x-api-key": caller_key, "Cookie": f"session={caller_key}"}
    if transport == "sse":
        async with sse_client(url, headers=headers, timeout=20) as (read, write):
            return await session_report(read, write)
    async with httpx2.AsyncClient(headers=headers, timeout=20) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            return await session_report(read, write)


if __name__ == "__main__":
    try:
        transport = sys.argv[3] if len(sys.argv) > 3 else "streamable-http"
        print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], transport))))
    except BaseException as e:  # noqa: BLE001 - the test reads what failed
        print(json.dumps({"error": repr(e)}))
        sys.exit(1)
