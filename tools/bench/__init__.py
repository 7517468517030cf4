"""The benchmarks and the load test: `make bench`, `make loadtest` (infra/scripts/bench.sh)."""
