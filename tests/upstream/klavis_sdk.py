"""Klavis's own Python SDK (`klavis` on PyPI) against this service, for the REST helper tests.

Usage: python klavis_sdk.py BASE_URL API_KEY SERVER_URL
Lists the instance's tools (mcp_native and openai), calls whoami and fail, and prints one JSON
object: {"native": [...], "openai": [...], "whoami": {...}, "fail": {...}} or {"error": "..."}.
"""

import json
import sys

from klavis import Klavis


def main(base_url: str, api_key: str, server_url: str) -> dict:
    client = Klavis(api_key=api_key, base_url=base_url)
    native = client.mcp_server.list_tools(server_url=server_url)
    openai = client.mcp_server.list_tools(server_url=server_url, format="openai")
    whoami = client.mcp_server.call_tools(server_url=server_url, tool_name="whoami", tool_args={})
    fail = client.mcp_server.call_tools(server_url=server_url, tool_name="fail")
    return {
        "native": {"success": native.success, "format": native.format, "names": sorted(t["name"] for t in native.tools)},
        "openai": sorted(t["function"]["name"] for t in openai.tools if t["type"] == "function"),
        "whoami": {"success": whoami.success, "text": whoami.result.content[0]["text"]},
        "fail": {"success": fail.success, "error": fail.error, "is_error": fail.result.is_error},
    }


if __name__ == "__main__":
    try:
        print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3])))
    except BaseException as e:  # noqa: BLE001 - the test reads what failed
        print(json.dumps({"error": repr(e)}))
        sys.exit(1)
