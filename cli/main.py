"""`warehouse-stock`: one console script for every operator task, each a subcommand.

The subcommands are thin: parse the arguments, call one function of `common/`, print the result.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warehouse-stock", description=__doc__)
    parser.add_subparsers(dest="command", required=True, metavar="<command>")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
