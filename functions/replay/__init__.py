"""Lambda function: POST /api/v1/rejected-events/{id}/replay, an operator's retry of a dead letter."""
