"""Lambda entry point of the webhook function (API Gateway HTTP API, payload 2.0)."""

from __future__ import annotations

from functions.http.guards import check_lambda_start
from functions.http.lambda_adapter import lambda_handler
from functions.webhook.routes import router

# Fail closed: in Lambda this function does not start with its routes open.
check_lambda_start(webhook=True)
handler = lambda_handler([router], service="webhook")
