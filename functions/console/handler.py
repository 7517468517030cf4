"""Lambda entry point of the console function (API Gateway HTTP API, payload 2.0): the /ui/ pages,
their static files, /docs, /redoc, /openapi.json and the JSON reports."""

from __future__ import annotations

from functions.console.routes import lambda_routers
from functions.http.lambda_adapter import lambda_handler

handler = lambda_handler(lambda_routers(), service="console")
