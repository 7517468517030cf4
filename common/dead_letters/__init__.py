"""The dead letters: the `rejected_events` table, its one list and one letter, how a letter is
shown, its retention, and the outbox that copies parked Kafka records to DLQ_TOPIC."""
