"""Developer tools, not part of the service: benchmarks (bench/), the fault suite (chaos/), and
what they share with the tests (the bad-input corpus, Kafka helpers). Tools never import from
tests/; tests may import from here."""
