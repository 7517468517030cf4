"""How events arrive: Kafka records and the MSK event shape, apply-ahead, the outage wait, and the
webhook's group commit."""
