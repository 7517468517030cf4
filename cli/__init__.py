"""The operator's command line: `warehouse-stock <subcommand>` (see `warehouse-stock --help`)."""
