"""The console function's routes: the /ui/ pages, /static/ files and the JSON reports.

`router` is what the local app includes. The ConsoleFunction Lambda serves `lambda_routers()`:
the same plus /docs, /redoc and /openapi.json, the schema of the whole HTTP API (every
function's routes), since in AWS no other function serves the docs.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from functions.console.api import router as api_router
from functions.console.assets import router as assets_router
from functions.console.export import router as export_router
from functions.console.pages import ROUTERS as PAGE_ROUTERS
from functions.http.offline_docs import docs_router

OPENAPI_PATH = "/openapi.json"

ROUTERS = (*PAGE_ROUTERS, export_router, assets_router, api_router)

router = APIRouter()
for _part in ROUTERS:
    router.include_router(_part)

openapi_router = APIRouter()


@lru_cache(maxsize=1)
def api_schema() -> dict[str, Any]:
    """The OpenAPI schema of every route the HTTP API serves, built once per container."""
    from functions.get_movement.routes import router as get_movement_router
    from functions.get_stock.routes import router as get_stock_router
    from functions.http.app import make_app
    from functions.list_resources.routes import router as list_router
    from functions.replay.routes import router as replay_router
    from functions.webhook.models import schema_models
    from functions.webhook.routes import router as webhook_router

    app = make_app(
        [webhook_router, get_movement_router, get_stock_router, list_router, replay_router, *ROUTERS],
        lambda_mode=True,
        schema_models=schema_models,
    )
    return app.openapi()


@openapi_router.get(OPENAPI_PATH, include_in_schema=False)
def openapi() -> JSONResponse:
    return JSONResponse(api_schema())


def lambda_routers() -> list[APIRouter]:
    """Everything the ConsoleFunction serves (template.yaml declares exactly these routes)."""
    from functions.http.app import API_TITLE

    return [*ROUTERS, docs_router(API_TITLE, OPENAPI_PATH), openapi_router]
