"""CSV answers for the JSON lists and reports: `?format=csv` or `Accept: text/csv`.

The rows come from `common.reads.export` (the list's own query, page by page); this module only
decides whether CSV was asked for and wraps the chunks in a streamed download.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import StreamingResponse

from common.reads.export import CSV_MEDIA_TYPE

Format = Annotated[
    Literal["json", "csv"] | None,
    Query(
        description=(
            "`csv`: the whole list with these filters (every page, `limit` and `cursor` ignored) as a "
            "CSV download, UTF-8 with a byte order mark; so does `Accept: text/csv`. Default JSON."
        )
    ),
]

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}, "example": "\ufeffwarehouse_id,...\r\n"}}}
}


def wants_csv(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def csv_download(chunks: Iterator[bytes], filename: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )
