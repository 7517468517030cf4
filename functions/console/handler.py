"""Lambda entry point of the console function (API Gateway HTTP API, payload 2.0): the /ui/ pages,
their static files, /docs, /redoc, /openapi.json and the JSON reports."""

from __future__ import annotations

from functions.console.routes import lambda_routers
from functions.http.guards import check_lambda_start
from functions.http.lambda_adapter import lambda_handler

# Fail closed: it serves an operator route (/ui/dead-letters/rows, raw payloads), so like the
# operator functions it does not start in Lambda with that route open.
check_lambda_start(operator=True)
handler = lambda_handler(lambda_routers(), service="console")
