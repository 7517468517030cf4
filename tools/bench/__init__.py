"""The benchmarks: `make bench` (`python -m tools.bench.run`, infra/scripts/bench.sh), `make loadtest`
(`python -m tools.bench.loadtest`), and the console and reconcile benchmarks; docs/performance.md."""
