"""Lambda entry point of the webhook function (API Gateway HTTP API, payload 2.0)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from common.metrics import add_outcome_listener
from functions.http_common import lambda_handler
from functions.webhook.routes import router

handler, metrics = lambda_handler([router], service="webhook")


def _count_outcome(outcome: str, reason: str, origin: str) -> None:
    """Each event's outcome as a CloudWatch metric (flushed at the end of the invocation)."""
    metrics.add_metric(
        name=f"WebhookEvents_{outcome}{'_' + reason if reason else ''}", unit=MetricUnit.Count, value=1
    )


add_outcome_listener(_count_outcome)
