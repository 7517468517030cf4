"""The ledger: apply a batch of movement halves in one transaction (lock, decide with the domain
rules, write), its tables' statements, the write use cases, outcome counts and the event-log fold."""
