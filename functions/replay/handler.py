"""Lambda entry point of the replay function (API Gateway HTTP API, payload 2.0)."""

from __future__ import annotations

from functions.http.guards import check_lambda_start
from functions.http.lambda_adapter import lambda_handler
from functions.replay.routes import router

# Fail closed: in Lambda this function does not start with its routes open.
check_lambda_start(operator=True)
handler = lambda_handler([router], service="replay")
