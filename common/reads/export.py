"""CSV export of any list or report: streamed page by page, UTF-8 with a byte order mark.

A list is exported by walking its own paginated query (the same function, filters and order the
screen and the JSON use) and writing each page's rows as they come, so an export of a million rows
holds one page in memory and a pooled connection only while a page is read. The BOM makes
spreadsheet software read the file as UTF-8; a warehouse id column is followed by the warehouse's
code (from the page's `warehouse_codes`), so the file names warehouses as the console does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import psycopg
from pydantic import BaseModel

BOM = "\ufeff"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# Rows an export reads per query (the lists' own page cut, at their largest page).
EXPORT_PAGE = 500


class Page(Protocol):
    @property
    def items(self) -> Any: ...

    @property
    def next_cursor(self) -> str | None: ...


Fetch = Callable[[psycopg.Connection, str | None], Page]
Connect = Callable[[], AbstractContextManager[psycopg.Connection]]


def columns(model: type[BaseModel]) -> list[str]:
    """The model's fields in order, each `*warehouse_id` followed by its `*warehouse_code`."""
    names: list[str] = []
    for name in model.model_fields:
        names.append(name)
        if name.endswith("warehouse_id"):
            code = name[: -len("id")] + "code"
            if code not in model.model_fields:
                names.append(code)
    return names


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A cell a spreadsheet would run as a formula is written as text (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def rows_csv(header: list[str], rows: Iterable[Iterable[Any]], *, delimiter: str = ",") -> Iterator[bytes]:
    """The BOM and header, then one chunk of CSV per row given (`delimiter=";"` for spreadsheets
    whose decimal separator is the comma)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", delimiter=delimiter)
    buffer.write(BOM)
    writer.writerow(header)
    yield buffer.getvalue().encode("utf-8")
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(v) for v in row])
        yield buffer.getvalue().encode("utf-8")


def model_rows(
    model: type[BaseModel], items: Iterable[BaseModel], codes: dict[Any, str]
) -> Iterator[list[Any]]:
    """Each item as the cells of `columns(model)`."""
    names = columns(model)
    for item in items:
        values = dict(item)
        for name in names:
            if name not in values and name.endswith("warehouse_code"):
                values[name] = codes.get(values.get(name[: -len("code")] + "id"))
        yield [values.get(name) for name in names]


def export_pages(connect: Connect, fetch: Fetch, model: type[BaseModel]) -> Iterator[bytes]:
    """The whole list `fetch` pages through (first page: cursor None), as CSV chunks.

    The first page is read before this returns, so a database fault or a bad filter raises here,
    while the caller can still answer with an error instead of a truncated file.
    """
    with connect() as conn:
        first = fetch(conn, None)

    def rows() -> Iterator[list[Any]]:
        page = first
        while True:
            yield from model_rows(model, page.items, dict(getattr(page, "warehouse_codes", None) or {}))
            if page.next_cursor is None:
                return
            with connect() as conn:
                page = fetch(conn, page.next_cursor)

    return rows_csv(columns(model), rows())


def export_items(
    model: type[BaseModel], items: Iterable[BaseModel], codes: dict[Any, str]
) -> Iterator[bytes]:
    """A report already in hand (one query, no pages) as CSV chunks."""
    return rows_csv(columns(model), model_rows(model, items, codes))
