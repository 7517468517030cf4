"""The dead-letter list pages by size, and one dead letter comes whole, on the real test database.

The list function's own app (what its Lambda serves) runs in process. Dead letters are inserted
directly (the list does not care how they were parked), with payloads large enough that the old
list, 500 whole payloads per page, would have answered tens of megabytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from common.adapters import db
from common.adapters.config import get_settings
from common.dead_letters import store as dead_letters
from common.dead_letters import views as dead_letter_views
from tests.e2e.support import rejected_cursor_before

pytestmark = pytest.mark.integration

LIST = "/api/v1/rejected-events"


@pytest.fixture
def client(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from functions.http.app import make_app
    from functions.list_resources.routes import router

    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("DB_SECRET_ARN", "OPERATOR_TOKEN", "OPERATOR_TOKEN_SECRET_ARN", "OPERATOR_AUTH"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    db.close_pool()
    yield TestClient(make_app([router], lambda_mode=True), raise_server_exceptions=False)
    db.close_pool()
    get_settings.cache_clear()


def park(database_url: str, payloads: list[bytes]) -> list[int]:
    """Dead letters with these raw payloads (reason invalid, from the webhook); their ids in order."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO rejected_events (reason, detail, raw_payload, origin) "
            "VALUES ('invalid', 'test: list by size', %s, 'webhook') RETURNING id",
            [(p,) for p in payloads],
            returning=True,
        )
        ids = []
        while True:
            row = cur.fetchone()
            assert row is not None
            ids.append(int(row[0]))
            if not cur.nextset():
                break
    return ids


def pages(client: TestClient, first_id: int, limit: int = 500) -> Iterator[tuple[dict[str, Any], int]]:
    """Every page of the list from `first_id` on, with its size in bytes."""
    cursor: str | None = rejected_cursor_before(first_id)
    while cursor:
        response = client.get(LIST, params={"limit": limit, "cursor": cursor})
        assert response.status_code == 200, response.text
        page = response.json()
        yield page, len(response.content)
        cursor = page["next_cursor"]


def test_a_page_stops_at_about_one_mib_and_the_next_cursor_continues(client, database_url) -> None:
    payloads = [json.dumps({"n": i, "pad": "x" * 10_000}).encode() for i in range(300)]
    ids = park(database_url, payloads)

    seen: list[int] = []
    sizes: list[int] = []
    for page, size in pages(client, ids[0]):
        sizes.append(size)
        seen += [item["id"] for item in page["items"] if item["id"] in set(ids)]
    assert seen == ids  # nothing skipped, nothing twice, in order
    assert len(sizes) >= 2, "300 previews of 4 KiB do not fit one 1 MiB page"
    assert max(sizes) <= dead_letter_views.MAX_PAGE_BYTES
    assert sizes[0] > dead_letter_views.MAX_PAGE_BYTES * 0.9  # cut by size, not short for another reason


def test_list_items_show_a_preview_and_link_the_whole_payload(client, database_url) -> None:
    # `{"dd": "` is 8 bytes, then 3-byte characters: the 4096-byte cut falls inside the 1363rd.
    big = json.dumps({"dd": "€" * 5000}, ensure_ascii=False).encode()
    small = b'{"short": true}'
    binary = bytes(range(256)) * 40
    ids = park(database_url, [big, small, binary])

    items = {item["id"]: item for page, _ in pages(client, ids[0]) for item in page["items"]}

    cut = items[ids[0]]
    assert cut["raw_payload_truncated"] is True
    assert cut["raw_payload_bytes"] == len(big)
    assert cut["raw_payload_encoding"] == "utf-8"
    preview = cut["raw_payload"].encode()
    assert big.startswith(preview)
    assert len(preview) == 8 + 3 * 1362  # the split character is dropped, not mangled
    assert cut["raw_payload_url"] == f"/api/v1/rejected-events/{ids[0]}"

    whole = items[ids[1]]
    assert (whole["raw_payload"], whole["raw_payload_truncated"], whole["raw_payload_bytes"]) == (
        small.decode(),
        False,
        len(small),
    )
    # Fields the console reads are still there.
    assert {"id", "reason", "detail", "received_at", "replay_status", "raw_payload_encoding"} <= set(whole)

    raw = items[ids[2]]
    assert raw["raw_payload_encoding"] == "base64" and raw["raw_payload_truncated"] is True
    assert base64.b64decode(raw["raw_payload"]) == binary[:4096]


def test_one_dead_letter_comes_with_its_whole_payload(client, database_url) -> None:
    big = json.dumps({"data": "€" * 200_000}, ensure_ascii=False).encode()  # 600 KB of text
    binary = b"\xff\xfe" + b"\x00" * 70_000
    big_id, binary_id = park(database_url, [big, binary])

    text = client.get(f"{LIST}/{big_id}")
    assert text.status_code == 200
    body = text.json()
    assert body["raw_payload"].encode() == big
    assert (body["raw_payload_truncated"], body["raw_payload_bytes"], body["raw_payload_encoding"]) == (
        False,
        len(big),
        "utf-8",
    )

    raw = client.get(f"{LIST}/{binary_id}").json()
    assert raw["raw_payload_encoding"] == "base64"
    assert base64.b64decode(raw["raw_payload"]) == binary


def test_a_payload_that_would_escape_past_the_limit_is_answered_as_base64(client, database_url) -> None:
    # Valid UTF-8, but every byte a control character: its JSON text is six times its size.
    controls = b"\x01" * 400_000
    (rid,) = park(database_url, [controls])
    body = client.get(f"{LIST}/{rid}").json()
    assert body["raw_payload_encoding"] == "base64"
    assert base64.b64decode(body["raw_payload"]) == controls


def test_an_unknown_or_impossible_id(client) -> None:
    missing = client.get(f"{LIST}/{dead_letters.MAX_ID}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json()["detail"] == f"rejected event {dead_letters.MAX_ID} not found"
    for bad in ("0", "abc", str(2**63)):
        response = client.get(f"{LIST}/{bad}")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "rejected_event_id"
