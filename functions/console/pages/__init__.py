"""The monitoring console: server-rendered HTML pages under /ui/, a little JavaScript, no build step.

Every page is a handful of queries (common/reads/) rendered by Jinja2 with autoescaping; the
browser loads only files served by this app (a Content-Security-Policy of 'self' enforces it).
Query parameters are read as text and checked here, so a bad one answers an HTML page saying
which field is wrong (status 422), not a JSON body a person would have to decode.

One module per concept: `params` (reading the query), `rendering` (templates, headers, the
422/404 pages), then one per page family: `overview`, `warehouses` (+ a warehouse, a product),
`movements` (+ one movement), `losses`, `dead_letters`, `settings`, `search`. `ROUTERS` are
their routers, each flat: functions/console/routes.py includes them beside the other console
routers, and the ConsoleFunction serves them as they are (no two of their paths overlap).
"""

from __future__ import annotations

from fastapi import APIRouter

from functions.console.pages import dead_letters, losses, movements, overview, search, settings, warehouses

ROUTERS: tuple[APIRouter, ...] = tuple(
    family.router for family in (overview, warehouses, movements, losses, settings, dead_letters, search)
)

__all__ = ["ROUTERS"]
