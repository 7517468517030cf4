"""How a dead letter is shown: its raw payload as JSON can carry it, cut to a preview, and pages by size.

No SQL here (`common.dead_letters.store` reads the rows): the rules that keep a dead-letter answer
within what a client and Lambda (6 MB per response) can take. A list item carries the first
RAW_PREVIEW_BYTES of its payload, a list page about MAX_PAGE_BYTES of JSON, and one whole dead
letter its whole payload, in base64 when its JSON-escaped text would be too large.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from common.adapters.cursor import encode_cursor
from common.dead_letters.models import RawEncoding, RejectedEventPage, RejectedEventView

# Bytes of raw payload each list item shows; the whole payload is at `raw_payload_url`.
RAW_PREVIEW_BYTES = 4096
# A list page stops growing at about this many bytes of JSON (Lambda answers at most 6 MB, and the
# proxy integration escapes the body once more).
MAX_PAGE_BYTES = 1024 * 1024
# A whole payload whose JSON-escaped text would exceed this is answered as base64 instead (control
# characters escape to six bytes each; base64 costs 4/3 and needs no escaping).
MAX_TEXT_PAYLOAD_JSON_BYTES = 2 * 1024 * 1024
# The columns `view` expects first, in this order (the payload columns follow).
VIEW_COLUMNS = (
    "id, reason, detail, movement_id, event, origin, kafka_topic, kafka_partition, kafka_offset, "
    "received_at, replayed_at, replay_status, replay_detail, resolved_at, resolved_by, resolution, "
    "resolution_note"
)


def raw_text(raw: bytes) -> tuple[str, RawEncoding]:
    """The payload as text when it is UTF-8, else base64, so any bytes survive JSON."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def preview_text(prefix: bytes, total_bytes: int) -> tuple[str, RawEncoding, bool]:
    """The first bytes of a payload as text (a character cut at the end dropped) or base64, and
    whether that is less than the whole payload."""
    truncated = total_bytes > len(prefix)
    if not truncated:
        text, encoding = raw_text(prefix)
        return text, encoding, False
    # At most 3 trailing bytes belong to a UTF-8 character the cut split.
    for cut in range(len(prefix), max(len(prefix) - 4, -1), -1):
        try:
            return prefix[:cut].decode("utf-8"), "utf-8", True
        except UnicodeDecodeError:
            continue
    return base64.b64encode(prefix).decode("ascii"), "base64", True


def whole_text(raw: bytes) -> tuple[str, RawEncoding]:
    """A whole payload as `raw_text` gives it, unless its escaped text would pass the limit."""
    text, encoding = raw_text(raw)
    # Only a long text can escape past the limit: measure it then, not for every payload.
    long_text = encoding == "utf-8" and len(text) * 6 > MAX_TEXT_PAYLOAD_JSON_BYTES
    if long_text and len(json.dumps(text)) > MAX_TEXT_PAYLOAD_JSON_BYTES:
        return base64.b64encode(raw).decode("ascii"), "base64"
    return text, encoding


def raw_payload_url(rejected_event_id: int) -> str:
    return f"/api/v1/rejected-events/{rejected_event_id}"


def view(
    row: Sequence[Any], text: str, encoding: RawEncoding, total: int, truncated: bool
) -> RejectedEventView:
    """A row of VIEW_COLUMNS with its payload as shown."""
    (rid, why, detail, mid, event, origin, topic, partition, offset, received, replayed,
     replay_status, replay_detail, resolved_at, resolved_by, resolution, resolution_note) = row  # fmt: skip
    settled = replay_status in ("applied", "duplicate") or resolved_at is not None
    return RejectedEventView(
        id=rid,
        reason=why,
        detail=detail,
        movement_id=mid,
        event=event,
        origin=origin,
        kafka_topic=topic,
        kafka_partition=partition,
        kafka_offset=offset,
        received_at=received,
        replayed_at=replayed,
        replay_status=replay_status,
        replay_detail=replay_detail,
        raw_payload=text,
        raw_payload_encoding=encoding,
        raw_payload_bytes=total,
        raw_payload_truncated=truncated,
        raw_payload_url=raw_payload_url(rid),
        resolved_at=resolved_at,
        resolved_by=resolved_by,
        resolution=resolution,
        resolution_note=resolution_note,
        replayable=why != "conflict" and not settled,
    )


def page(
    rows: Iterable[Sequence[Any]], *, more: bool, cursor_key: Callable[[int], str] = str
) -> RejectedEventPage:
    """Rows of VIEW_COLUMNS + (payload prefix, payload size) as a page of at most about
    MAX_PAGE_BYTES (at least one item); a page cut short by size has a next_cursor too."""
    items: list[RejectedEventView] = []
    empty = RejectedEventPage(items=[], next_cursor=encode_cursor("rejected", 2**63 - 1))
    size = len(empty.model_dump_json())
    for row in rows:
        text, encoding, truncated = preview_text(bytes(row[-2]), int(row[-1]))
        item = view(row[:-2], text, encoding, int(row[-1]), truncated)
        item_size = len(item.model_dump_json()) + 1  # and its comma
        if items and size + item_size > MAX_PAGE_BYTES:
            more = True
            break
        items.append(item)
        size += item_size
    cursor = encode_cursor("rejected", cursor_key(items[-1].id)) if more and items else None
    return RejectedEventPage(items=items, next_cursor=cursor)
