"""Benchmarks of one component at a time, each run on its own with `python -m`: the ledger, reconcile,
the console's pages."""
