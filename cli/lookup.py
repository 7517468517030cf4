"""`warehouse-stock product|warehouses|search|export`: the reads an operator asks from a shell.

The same functions as the JSON routes and the console (`common.reads`); `--json` prints the JSON
the API answers. `export` writes a whole list as CSV (UTF-8 with BOM) to stdout or a file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from common.adapters.cursor import MAX_LIMIT
from common.adapters.db import get_pool
from common.dead_letters import store
from common.dead_letters.models import RejectedEventView
from common.domain.outcomes import Reason
from common.reads import export
from common.reads.losses import RouteStats, routes_report
from common.reads.models import MovementView, StockView, WarehouseEntry, answer_json
from common.reads.movements import list_movements, parse_duration
from common.reads.search import search
from common.reads.stock import product_stock, warehouse_stock
from common.reads.warehouses import directory

LISTS = ("stock", "movements", "dead-letters", "warehouses", "routes")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    product = commands.add_parser(
        "product", help="a product on hand in every warehouse, in transit, the total"
    )
    product.add_argument("product_id", type=UUID)
    product.add_argument("--json", action="store_true", help="the JSON the API answers")
    product.set_defaults(run=run_product)

    warehouses = commands.add_parser("warehouses", help="the warehouse directory: codes learnt from events")
    warehouses.add_argument("--json", action="store_true", help="the JSON the API answers")
    warehouses.set_defaults(run=run_warehouses)

    find = commands.add_parser(
        "search", help="warehouse codes, warehouse, product and movement ids or prefixes"
    )
    find.add_argument("text")
    find.add_argument("--json", action="store_true", help="the JSON the API answers")
    find.set_defaults(run=run_search)

    dump = commands.add_parser("export", help="a whole list as CSV (UTF-8 with BOM), the console's filters")
    dump.add_argument("list", choices=LISTS)
    dump.add_argument(
        "--warehouse-id", type=UUID, help="stock: the warehouse (required); movements: either end"
    )
    dump.add_argument("--product-id", type=UUID, help="movements: of this product")
    dump.add_argument("--status", choices=["in_transit", "delivered", "arrival_only"], help="movements")
    dump.add_argument("--older-than", help="movements in transit longer than this (2h, 3d)")
    dump.add_argument("--reason", choices=[r.value for r in Reason], help="dead letters")
    dump.add_argument("--unresolved", action="store_true", help="dead letters")
    dump.add_argument("--output", "-o", type=Path, help="a file (default: stdout)")
    dump.set_defaults(run=run_export)


def run_product(args: argparse.Namespace) -> int:
    with get_pool().connection() as conn:
        found = product_stock(conn, args.product_id)
    if found is None:
        raise LookupError(f"no applied event names product {args.product_id}")
    if args.json:
        print(found.model_dump_json())
        return 0
    for s in found.warehouses:
        print(f"on hand    {s.warehouse_code or '-':<16} {s.warehouse_id}  {s.quantity:>12}")
    for m in found.in_transit:
        print(f"in transit {m.source_warehouse_code or '-':<16} {m.movement_id}  {m.quantity:>12}")
    print(f"total {found.total} = {found.on_hand} on hand + {found.in_transit_units} in transit "
          f"({found.in_transit_movements} movements)")  # fmt: skip
    return 0


def run_warehouses(args: argparse.Namespace) -> int:
    with get_pool().connection() as conn:
        items = directory(conn)
    for entry in items:
        if args.json:
            print(entry.model_dump_json())
            continue
        notes = []
        if len(entry.codes) > 1:
            notes.append("also seen as " + ", ".join(c.code for c in entry.codes[1:]))
        if entry.code_shared_with:
            notes.append(f"code shared with {len(entry.code_shared_with)} other warehouse(s)")
        line = f"{entry.code or '-':<16} {entry.warehouse_id}  {entry.products:>8} products {entry.units:>12}"
        print(line + (f"  ({'; '.join(notes)})" if notes else ""))
    return 0


def run_search(args: argparse.Namespace) -> int:
    with get_pool().connection() as conn:
        result = search(conn, args.text)
    if args.json:
        print(answer_json(result))
        return 0
    if not result.items:
        raise LookupError(f"nothing found for {args.text!r}")
    for found in result.items:
        print(f"{found.kind:<10} {found.id}  {found.label if found.label != str(found.id) else ''}")
    return 0


def _chunks(args: argparse.Namespace) -> Iterator[bytes]:
    connect = get_pool().connection
    if args.list == "stock":
        if args.warehouse_id is None:
            raise ValueError("export stock: give --warehouse-id")
        wid = args.warehouse_id
        return export.export_pages(
            connect, lambda c, cur: warehouse_stock(c, wid, limit=MAX_LIMIT, cursor=cur), StockView
        )
    if args.list == "movements":
        age: timedelta | None = parse_duration(args.older_than) if args.older_than else None
        return export.export_pages(
            connect,
            lambda c, cur: list_movements(
                c, status=args.status, warehouse_id=args.warehouse_id, product_id=args.product_id,
                older_than=age, limit=MAX_LIMIT, cursor=cur,
            ),  # fmt: skip
            MovementView,
        )  # fmt: skip
    if args.list == "dead-letters":
        reason = Reason(args.reason) if args.reason else None
        return export.export_pages(
            connect,
            lambda c, cur: store.list_page(
                c, reason=reason, unresolved=args.unresolved, limit=MAX_LIMIT, cursor=cur
            ),
            RejectedEventView,
        )
    with connect() as conn:
        if args.list == "warehouses":
            return export.export_items(WarehouseEntry, directory(conn), {})
        report = routes_report(conn, limit=1000)
    return export.export_items(RouteStats, report.items, report.warehouse_codes)


def run_export(args: argparse.Namespace) -> int:
    chunks = _chunks(args)
    if args.output is None:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return 0
    with args.output.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    print(f"export: wrote {args.output}", file=sys.stderr)
    return 0
