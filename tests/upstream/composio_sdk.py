"""Composio's own generated Python client (`composio-client` on PyPI) against this service, for the
toolkit tests. Only `base_url` differs from a client of Composio's cloud.

Usage: python composio_sdk.py BASE_URL API_KEY
Lists the toolkits (a first page, every page by cursor, a category, a search), reads two toolkits,
and asks for one that does not exist; prints one JSON object with what it saw, or {"error": "..."}.
"""

import json
import sys

from composio_client import Composio, NotFoundError


def main(base_url: str, api_key: str) -> dict:
    client = Composio(api_key=api_key, base_url=base_url)
    first = client.toolkits.list(limit=10)
    slugs, cursor, pages = [], None, 0
    while True:
        page = client.toolkits.list(limit=25, cursor=cursor) if cursor else client.toolkits.list(limit=25)
        slugs.extend(item.slug for item in page.items)
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
    dev = client.toolkits.list(category="developer-tools", sort_by="alphabetically", limit=1000)
    found = client.toolkits.list(search="github")
    github = client.toolkits.retrieve("github")
    oauth = github.auth_config_details[0]
    exa = client.toolkits.retrieve("exa")
    try:
        client.toolkits.retrieve("no-such-toolkit")
        missing = None
    except NotFoundError as e:
        missing = {"status": e.status_code, "body": e.body}
    fields = lambda group: [[f.name, f.required, f.is_secret] for f in group.required + group.optional]
    return {
        "first": {"count": len(first.items), "total_items": first.total_items, "total_pages": first.total_pages,
                  "current_page": first.current_page, "has_next": first.next_cursor is not None},
        "all": {"slugs": slugs, "pages": pages},
        "dev": [item.slug for item in dev.items],
        "dev_categories": [[c.id for c in item.meta.categories] for item in dev.items],
        "search": [item.slug for item in found.items],
        "github": {
            "name": github.name,
            "managed": github.composio_managed_auth_schemes,
            "mode": oauth.mode,
            "creation": fields(oauth.fields.auth_config_creation),
            "initiation": fields(oauth.fields.connected_account_initiation),
            "categories": [c.slug for c in github.meta.categories],
            "type": github.type,
        },
        "exa": {
            "modes": [d.mode for d in exa.auth_config_details],
            "initiation": fields(exa.auth_config_details[0].fields.connected_account_initiation),
        },
        "missing": missing,
    }


if __name__ == "__main__":
    try:
        print(json.dumps(main(sys.argv[1], sys.argv[2])))
    except BaseException as e:  # noqa: BLE001 - the test reads what failed
        print(json.dumps({"error": repr(e)}))
        sys.exit(1)
