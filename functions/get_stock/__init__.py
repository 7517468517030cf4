"""Lambda function: GET /api/v1/warehouse/{warehouse_id}/products/{product_id}."""
