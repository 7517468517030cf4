"""Keyset pagination: the opaque cursor every list hands out, and the page cut.

Pages are ordered by a unique key and continue strictly after the last key returned, so a page
costs one index range scan however deep the client pages, and rows inserted meanwhile are
neither skipped nor repeated. The cursor is that last key, tagged with the list it belongs to and
base64url-encoded: opaque to clients, and refused (`BadCursor`) when forged or from another list.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal, TypeVar
from uuid import UUID

ListKind = Literal["stock", "movements", "rejected", "transit"]
T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


class BadCursor(ValueError):
    """The cursor was not produced by this list."""


def encode_cursor(kind: ListKind, key: object) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).rstrip(b"=").decode()


def decode_cursor(kind: ListKind, cursor: str) -> str:
    """The key inside `cursor`, checked to belong to the `kind` list (not yet typed)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("not a cursor returned by this list") from None
    tag, _, key = text.partition(":")
    if tag != kind or not key:
        raise BadCursor("not a cursor returned by this list")
    return key


def decode_uuid_key(kind: ListKind, cursor: str | None) -> UUID | None:
    if cursor is None:
        return None
    try:
        return UUID(decode_cursor(kind, cursor))
    except ValueError:
        raise BadCursor("not a cursor returned by this list") from None


def decode_int_key(kind: ListKind, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    key = decode_cursor(kind, cursor)
    if not key.isascii() or not key.isdigit() or len(key) > 18:
        raise BadCursor("not a cursor returned by this list")
    return int(key)


def page_of(rows: list[T], limit: int) -> tuple[list[T], bool]:
    """The first `limit` rows and whether there are more (the query asked for limit + 1)."""
    return rows[:limit], len(rows) > limit
