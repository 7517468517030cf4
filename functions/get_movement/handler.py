"""Lambda entry point of the get_movement function (API Gateway HTTP API, payload 2.0)."""

from __future__ import annotations

from functions.get_movement.routes import router
from functions.http.lambda_adapter import lambda_handler

handler = lambda_handler([router], service="get_movement")
