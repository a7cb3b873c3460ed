"""The official MCP Python client (`mcp` package) against a URL, for the gateway tests.

Usage: python client.py URL CALLER_KEY [MODE]
Connects over Streamable HTTP sending the caller's own key (which must never reach the
upstream), initializes, lists the tools, calls whoami, and prints one JSON object:
{"server": ..., "tools": [...], "whoami": {...}} or {"error": "..."}.
With MODE (`legacy`, `auto` or `2026-07-28`) it connects with the SDK's high-level `Client`
in that mode instead: `2026-07-28` is the stateless protocol (no initialize, no session, the
method and tool name mirrored in the Mcp-Method / Mcp-Name headers); the object then says
which protocol version the calls used.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client

def caller_headers(caller_key: str) -> dict:
    return {"Authorization": f"Bearer {caller_key}", "x-api-key": caller_key, "Cookie": f"session={caller_key}"}


async def with_mode(url: str, caller_key: str, mode: str) -> dict:
    async with httpx2.AsyncClient(headers=caller_headers(caller_key), timeout=20) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            tools = await client.list_tools()
            result = await client.call_tool("whoami", {})
            whoami = json.loads(result.content[0].text)
            return {
                "tools": sorted(tool.name for tool in tools.tools),
                "whoami": whoami,
                "protocol_version": whoami["headers"]["mcp-protocol-version"],
            }


async def main(url: str, caller_key: str) -> dict:
    async with httpx2.AsyncClient(headers=caller_headers(caller_key), timeout=20) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
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


if __name__ == "__main__":
    try:
        if len(sys.argv) > 3:
            print(json.dumps(asyncio.run(with_mode(sys.argv[1], sys.argv[2], sys.argv[3]))))
        else:
            print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
    except BaseException as e:  # noqa: BLE001 - the test reads what failed
        print(json.dumps({"error": repr(e)}))
        sys.exit(1)
