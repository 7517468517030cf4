"""API docs without a CDN: Swagger UI at /docs and ReDoc at /redoc from vendored, pinned copies.

FastAPI's own /docs and /redoc load their JavaScript and CSS from public CDNs, so they render blank
where there is no internet (warehouse networks, private VPCs). These load the copies vendored in
functions/console/static/vendor/ (infra/scripts/vendor-assets.sh checks their sha256 sums), which
the console's router serves under /static/: an app serving these docs must include
functions.console.routes.router (the local app does; the ConsoleFunction Lambda does).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

DOCS_ASSETS = "/static/vendor"
SWAGGER_UI_ASSETS = f"{DOCS_ASSETS}/swagger-ui-dist@5.35.0"
REDOC_ASSETS = f"{DOCS_ASSETS}/redoc@2.5.4"


def docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """GET /docs (Swagger UI) and GET /redoc (ReDoc) for the schema at `openapi_url`, no CDN."""
    router = APIRouter()
    favicon = f"{SWAGGER_UI_ASSETS}/favicon-32x32.png"

    @router.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{SWAGGER_UI_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI_ASSETS}/swagger-ui.css",
            swagger_favicon_url=favicon,
            # The validator badge would send the schema's URL to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{REDOC_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )

    return router
