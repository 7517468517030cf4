"""The header search: straight to the one thing a text names, else a page of candidates."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from common.adapters.db import get_pool
from common.reads.search import search
from common.reads.warehouses import codes_for
from functions.console.i18n import locale_of
from functions.console.pages.rendering import render

router = APIRouter(include_in_schema=False)

_KIND_PATHS = {"warehouse": "/ui/warehouses/", "product": "/ui/products/", "movement": "/ui/movements/"}


@router.get("/ui/go", response_model=None)
def go(request: Request) -> HTMLResponse | RedirectResponse:
    """The search box: straight to the one thing a text names (a warehouse code or id, a product
    or movement id, or the first digits of one), else a page listing what it may name."""
    locale = locale_of(request)
    text = request.query_params.get("id", "").strip()
    with get_pool().connection() as conn:
        result = search(conn, text)
        codes = codes_for(conn, [f.id for f in result.items if f.kind == "warehouse"])
    exact = [
        f
        for f in result.items
        if f.match != "prefix" and (f.match == "id" or f.label.lower() == text.lower())
    ]
    if len(exact) == 1 or len(result.items) == 1:
        found = exact[0] if len(exact) == 1 else result.items[0]
        return RedirectResponse(_KIND_PATHS[found.kind] + str(found.id), status_code=303)
    if not result.items:
        message = locale.t("error.not_found_id", text=text)
        return render(
            request, "error.html", 404, title=locale.t("title.not_found"), field=None, message=message
        )
    return render(
        request,
        "search.html",
        title=locale.t("title.search"),
        query=text,
        found=result.items,
        paths=_KIND_PATHS,
        codes=codes,
    )
