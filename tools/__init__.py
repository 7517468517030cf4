"""Developer tools, not part of the service: benchmarks (bench/), the fault suite (chaos/), and
what they share with each other and the tests (child processes, the bad-input corpus, Kafka
helpers). Each runs from the repository root as `python -m tools....`. Tools never import from
tests/; tests may import from here."""
