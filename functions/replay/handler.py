"""Lambda entry point of the replay function (API Gateway HTTP API, payload 2.0)."""

from __future__ import annotations

from functions.http.lambda_adapter import lambda_handler
from functions.replay.routes import router

handler = lambda_handler([router], service="replay")
