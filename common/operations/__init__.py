"""Operator work on the books: reconcile, retention, re-drive of failed batches, on-failure records."""
