"""`warehouse-stock`: one console script for every operator task, each a subcommand.

Subcommands are thin: parse the arguments, call one function of `common/`, print the result
(JSON lines on stdout for what a script consumes, a summary on stderr), exit non-zero on failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from cli import migrations, poller, reconcile, redrive, replay, retention


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warehouse-stock",
        description="Operator commands of the warehouse stock service (configuration: see .env.example).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    for module in (migrations, replay, reconcile, retention, redrive, poller):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s", stream=sys.stderr)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
