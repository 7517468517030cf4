"""Lambda entry point of the list_resources function (API Gateway HTTP API, payload 2.0)."""

from __future__ import annotations

from functions.http.lambda_adapter import lambda_handler
from functions.list_resources.routes import router

handler = lambda_handler([router], service="list_resources")
