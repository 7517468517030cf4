"""Lambda entry point of the get_stock function (API Gateway HTTP API, payload 2.0)."""

from __future__ import annotations

from functions.get_stock.routes import router
from functions.http.lambda_adapter import lambda_handler

handler = lambda_handler([router], service="get_stock")
