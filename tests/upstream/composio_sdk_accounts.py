"""Composio's own Python client (composio-client, the Stainless v3.1 client) against the service:
creates an API_KEY account with an alias, updates it with `connected_accounts.patch` (alias and a
credential field), and reads it back. Prints one JSON report; a refusal is reported, not raised.

usage: composio_sdk_accounts.py BASE_URL API_KEY AUTH_CONFIG_ID"""

import json
import sys

import composio_client
from composio_client import Composio


def main() -> None:
    base_url, api_key, auth_config_id = sys.argv[1:4]
    client = Composio(api_key=api_key, base_url=base_url, max_retries=0)
    report = {}
    created = client.connected_accounts.create(
        auth_config={"id": auth_config_id},
        connection={"user_id": "sdk-user", "alias": "sdk-alias",
                    "state": {"auth_scheme": "API_KEY", "val": {"status": "ACTIVE", "api_key": "sdk-key-1"}}},
    )
    report["created"] = created.id
    patched = client.connected_accounts.patch(
        created.id, alias="sdk-renamed",
        connection={"state": {"auth_scheme": "API_KEY", "val": {"api_key": "sdk-key-2", "generic_id": None}}},
    )
    report["patched"] = {"id": patched.id, "status": patched.status, "success": patched.success}
    report["alias"] = client.connected_accounts.retrieve(created.id).alias
    listed = client.connected_accounts.list(user_ids=["sdk-user"])
    report["listed_aliases"] = [item.alias for item in listed.items]
    other = client.connected_accounts.create(
        auth_config={"id": auth_config_id},
        connection={"user_id": "sdk-user",
                    "state": {"auth_scheme": "API_KEY", "val": {"status": "ACTIVE", "api_key": "sdk-key-3"}}},
    )
    try:
        client.connected_accounts.patch(other.id, alias="sdk-renamed")
        report["duplicate"] = "accepted"
    except composio_client.APIStatusError as e:
        report["duplicate"] = {"status": e.status_code, "body": e.body}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
