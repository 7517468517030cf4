"""Query parameters read as text and checked here: a bad one raises `BadParameter`, which the page
answers with an HTML page naming the field (status 422), not a JSON body a person would have to decode.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from functions.console.i18n import Locale

PAGE_SIZE = 50


class BadParameter(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_uuid(field: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise BadParameter(field, "not a UUID") from None


def parse_time(field: str, value: str | None) -> datetime | None:
    """An ISO-8601 time or an HTML datetime-local value (no offset: UTC); empty means none."""
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(field, "not an ISO-8601 time (e.g. 2025-02-18T14:00:00Z)") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:  # near year 1 or 9999 an offset can carry the time out of datetime's range
        return parsed.astimezone(UTC)
    except OverflowError:
        raise BadParameter(field, "out of range once converted to UTC (years 1 to 9999)") from None


def parse_limit(value: str | None, default: int = PAGE_SIZE, most: int = 500) -> int:
    if value is None or value == "":
        return default
    # isascii: '²' and '١' are digits to str.isdigit, not to a person reading the URL (nor to int).
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= most:
        raise BadParameter("limit", f"a whole number from 1 to {most}")
    return int(value)


def parse_cursor(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > 200:
        raise BadParameter("cursor", "not a cursor returned by this list")
    return value


_NAIVE_TIME = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?\s*$")


def local_time(locale: Locale, field: str, value: str | None) -> datetime | None:
    """A time typed in a filter: one without an offset (what <input type=datetime-local> sends) is
    in the operator's zone, as every time on the page; then read as `parse_time` reads any."""
    if value is not None and _NAIVE_TIME.match(value):
        try:
            naive = datetime.fromisoformat(value.strip())
        except ValueError:
            naive = None  # `parse_time` names the field
        if naive is not None:
            offset = naive.replace(tzinfo=locale.zone).utcoffset() or timedelta(0)
            sign = "-" if offset < timedelta(0) else "+"
            hours, rest = divmod(int(abs(offset).total_seconds()), 3600)
            seconds = f":{rest % 60:02d}" if rest % 60 else ""  # local mean time before 1900
            value = f"{value.strip()}{sign}{hours:02d}:{rest // 60:02d}{seconds}"
    return parse_time(field, value)


def local_input(locale: Locale, value: datetime | None) -> str:
    """A time as an <input type=datetime-local> value, in the operator's zone."""
    if value is None:
        return ""
    local = locale.local(value)
    return f"{local.year:04d}-{local:%m-%dT%H:%M:%S}"  # %Y drops a small year's zeros on glibc
