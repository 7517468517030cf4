"""The local app: all HTTP routes in one process, plus the Kafka poller in kafka mode."""
