"""The official MCP Python client (`mcp` package) against a URL, for the gateway tests.

Usage: python client.py URL CALLER_KEY [WAY]
Connects sending the caller's own key (which must never reach the upstream), initializes,
lists the tools, calls whoami, and prints one JSON object:
{"server": ..., "tools": [...], "whoami": {...}} or {"error": "..."}.
WAY is how it connects:
  streamable-http  (the default) ClientSession over Streamable HTTP
  sse              ClientSession over the legacy HTTP+SSE transport
  legacy, auto, 2026-07-28
                   the SDK's high-level `Client` in that mode: `2026-07-28` is the stateless
                   protocol (no initialize, no session, the method and tool name mirrored in
                   the Mcp-Method / Mcp-Name headers); the object then also says which
                   protocol version the calls used ("protocol_version").
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

MODES = ("legacy", "auto", "2026-07-28")


def caller_headers(caller_key: str) -> dict:
    return {"Authorization": f"Bearer {caller_key}", "x-api-key": caller_key, "Cookie": f"session={caller_key}"}


async def session_report(read, write) -> dict:
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool("whoami", {})
        return {
            "server": init.server_info.name,
            "tools": sorted(tool.name for tool in tools.tools),
            "whoami": json.loads(result.content[0].text),
        }


async def client_report(http, url: str, mode: str) -> dict:
    async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        tools = await client.list_tools()
        result = await client.call_tool("whoami", {})
        whoami = json.loads(result.content[0].text)
        return {
            "tools": sorted(tool.name for tool in tools.tools),
            "whoami": whoami,
            "protocol_version": whoami["headers"]["mcp-protocol-version"],
        }


async def main(url: str, caller_key: str, way: str) -> dict:
    headers = caller_headers(caller_key)
    if way == "sse":
        async with sse_client(url, headers=headers, timeout=20) as (read, write):
            return await session_report(read, write)
    async with httpx2.AsyncClient(headers=headers, timeout=20) as http:
        if way in MODES:
            return await client_report(http, url, way)
        async with streamable_http_client(url, http_client=http) as (read, write):
            return await session_report(read, write)


if __name__ == "__main__":
    try:
        way = sys.argv[3] if len(sys.argv) > 3 else "streamable-http"
        print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], way))))
    except BaseException as e:  # noqa: BLE001 - the test reads what failed
        print(json.dumps({"error": repr(e)}))
        sys.exit(1)
