"""Lambda function: the paginated lists (warehouse stock, movements, dead letters)."""
