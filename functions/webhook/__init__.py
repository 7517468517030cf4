"""Lambda function: POST /api/v1/kafka/webhook, movement events over HTTP."""
