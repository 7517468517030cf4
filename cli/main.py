"""`warehouse-stock`: one console script for every operator task, each a subcommand.

Subcommands are thin: parse the arguments, call one function of `common/`, print the result
(JSON lines on stdout for what a script consumes, a summary on stderr), exit non-zero on failure.
A failure is one line on stderr naming the command and the cause (`failures.describe`), never a
traceback; `--debug` (before the command) shows the traceback too.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from cli import dead_letters, demo, lookup, migrations, poller, reconcile, redrive, replay, retention
from cli.failures import describe

COMMANDS = (migrations, replay, dead_letters, reconcile, retention, redrive, poller, lookup, demo)


class Parser(argparse.ArgumentParser):
    """Usage errors in one line too: the error and where to read the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="warehouse-stock",
        description="Operator commands of the warehouse stock service (configuration: see .env.example).",
    )
    parser.add_argument("--debug", action="store_true", help="on failure, print the traceback too")
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>", parser_class=Parser)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Without --debug a failure's one line says it all: the libraries' own log lines about it (a
    # pool retrying a refused connection, a client losing its broker) would only repeat it.
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.INFO if args.debug else logging.CRITICAL)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s %(message)s", handlers=[handler])  # fmt: skip
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `warehouse-stock ... | head`: the reader has all it wanted
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"warehouse-stock {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every command's failure becomes one line
        if args.debug:
            traceback.print_exc()
        print(f"warehouse-stock {args.command}: {describe(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
