"""The official MCP Python client (`mcp` package) against a URL, for the gateway tests.

Usage: python client.py URL CALLER_KEY
Connects over Streamable HTTP sending the caller's own key (which must never reach the
upstream), initializes, lists the tools, calls whoami, and prints one JSON object:
{"server": ..., "tools": [...], "whoami": {...}} or {"error": "..."}.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, caller_key: str) -> dict:
    headers = {"Authorization": f"Bearer {caller_key}", "x-api-key": caller_key, "Cookie": f"session={caller_key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=20) as http:
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
        print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
    except BaseException as e:  # noqa: BLE001 - the test reads what failed
        print(json.dumps({"error": repr(e)}))
        sys.exit(1)
