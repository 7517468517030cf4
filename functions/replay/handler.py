"""Lambda entry point of the replay function (API Gateway HTTP API, payload 2.0)."""

from __future__ import annotations

from functions.http_common import lambda_handler
from functions.replay.routes import router

handler, metrics = lambda_handler([router], service="replay")
