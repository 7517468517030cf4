"""Lambda function: GET /api/v1/movements/{movement_id}."""
