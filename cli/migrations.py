"""`warehouse-stock migrate [status]`: apply the schema migrations, or show where they stand."""

from __future__ import annotations

import argparse
import json
import sys

from common.adapters.db import connect
from common.adapters.migrate import MigrationError, migrate, status


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "migrate",
        help="apply pending schema migrations (safe to run twice or in parallel)",
        description="Apply pending migrations in one transaction; `status` lists each migration's state.",
    )
    parser.add_argument("action", nargs="?", choices=["apply", "status"], default="apply")
    parser.add_argument("--database-url", help="defaults to DATABASE_URL / DB_SECRET_ARN")
    parser.add_argument("--json", action="store_true", help="status: one JSON object per migration")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with connect(args.database_url) as conn:
        if args.action == "status":
            states = status(conn)
            for state in states:
                when = state.applied_at.isoformat() if state.applied_at else None
                if args.json:
                    print(json.dumps({"version": state.version, "state": state.state, "applied_at": when}))
                else:
                    print(f"{state.version:<32} {state.state:<8} {when or '-'}")
            return 0 if all(s.state in ("applied", "pending") for s in states) else 1
        try:
            applied = migrate(conn)
        except MigrationError as exc:
            print(f"migrate: {exc}", file=sys.stderr)
            return 1
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0
