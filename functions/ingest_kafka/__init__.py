"""Lambda function for Kafka event source mappings (Amazon MSK and self-managed Apache Kafka)."""
