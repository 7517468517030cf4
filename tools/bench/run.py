"""`make bench` (`python -m tools.bench.run`): every throughput and latency figure of the service,
measured in one run, one table, each row beside its same-run ceiling.

Row families (tools/bench/rows/<module>.py, each documented there; `--only` picks some):

  ingest   1, 2, 2b  the Kafka handler in process; bare SQL on JSON and on decoded columns
  kafka    3, 3s     Kafka end to end through one standalone poller; its memory (--soak)
  drain    3d, 3e    a backlog drained by `make run`, as a share of row 2b; CPU per event per process
  webhook  4-4c      the webhook (group commit), one connection, the one-transaction baseline, and a
                     no-op POST parsing the same bodies on the same server
  reads    5a-5e     GET stock warm and cold, against no-ops through the app, FastAPI and bare ASGI
  cold     6         cold start of each Lambda handler module
  lambda   7         each `sam build` artifact under aws-lambda-rie + awslambdaric: cold and warm invokes
  (http = webhook + reads)

Every row is the median of `--runs` runs (3), their spread printed beside it; every run is checked
against the database before its number is used: a fast wrong answer is reported as a failure, not
a result. CPU per event or request of the processes under test (from /proc) is printed beside
every rate: on a shared machine it is the steadier figure. The benchmark uses a database of its own
(BENCH_DATABASE_URL, default: DATABASE_URL's server, database `bench`, created and migrated here)
whose ledger tables it truncates, Redis database 5 and fresh Kafka topics, all on 127.0.0.1.
Raw results: .stack/bench/results-<time>.json; logs: .stack/bench/logs/.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from functions.local_app.serve import cores
from tools.bench.harness import (
    LOG_DIR,
    OUT_DIR,
    ROOT,
    Config,
    Report,
    Row,
    bench_database_url,
    bench_redis_url,
    log,
    loopback,
    prepare_database,
    render,
)

# The row families in table order: `--only` name -> module with `run(cfg, report)` (and, if it
# has options of its own, `add_arguments(parser)`). A new family is one line here.
FAMILIES: dict[str, str] = {
    "ingest": "tools.bench.rows.ingest",
    "kafka": "tools.bench.rows.kafka_poller",
    "drain": "tools.bench.rows.drain",
    "webhook": "tools.bench.rows.webhook",
    "reads": "tools.bench.rows.reads",
    "cold": "tools.bench.rows.cold_start",
    "lambda": "tools.bench.rows.lambda_runtime",
}
ALIASES = {"http": ("webhook", "reads")}


def family(name: str) -> Any:
    return importlib.import_module(FAMILIES[name])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = ",".join([*FAMILIES, *ALIASES])
    p.add_argument("--runs", type=int, default=3, help="runs per row; the table shows their median (3)")
    p.add_argument("--only", default=",".join(FAMILIES), help=f"comma-separated subset of {names}")
    p.add_argument("--events", type=int, default=100_000, help="rows 1-2b: events per run (100,000)")
    p.add_argument("--batch", type=int, default=1000, help="rows 1-2b: records per handler call (1,000)")
    p.add_argument("--kafka-events", type=int, default=200_000, help="row 3: events per run (200,000)")
    p.add_argument("--drain-events", type=int, default=200_000, help="row 3d: records per run (200,000)")
    p.add_argument(
        "--drain-partitions", type=int, default=4, help="row 3d: partitions of its topic (4: two per poller)"
    )
    p.add_argument("--soak", action="store_true", help="also row 3s: poller memory over --soak-events")
    p.add_argument("--soak-events", type=int, default=1_000_000)
    p.add_argument("--seconds", type=float, default=10, help="rows 4-5: seconds per wrk run (10)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument(
        "--http-workers",
        type=int,
        default=cores(),
        help="worker processes of every HTTP server (default: the cores, as make run)",
    )
    p.add_argument(
        "--poller-crc32c",
        action="store_true",
        help="what-if for row 3: run the poller with the crc32c wheel of .stack/bench/pylib importable "
        "(kafka-python then checks record CRCs in C instead of pure Python)",
    )
    p.add_argument(
        "--whatif-apply-ahead",
        action="store_true",
        help="what-if for rows 3 and 3d: pollers with KAFKA_APPLY_AHEAD=true (batch N+1 decoded while "
        "batch N commits, common/intake/apply_ahead.py)",
    )
    for name in FAMILIES:
        add_arguments: Callable[[argparse.ArgumentParser], None] | None = getattr(
            family(name), "add_arguments", None
        )
        if add_arguments is not None:
            add_arguments(p)
    return p


def parse_args(argv: list[str] | None) -> Config:
    p = parser()
    args = p.parse_args(argv)
    only: set[str] = set()
    for name in (s.strip() for s in args.only.split(",") if s.strip()):
        if name not in FAMILIES and name not in ALIASES:
            p.error(f"unknown rows: {name}")
        only.update(ALIASES.get(name, (name,)))
    if args.soak:
        only.add("kafka")
    cfg = Config(
        runs=args.runs,
        events=args.events,
        batch=args.batch,
        kafka_events=args.kafka_events,
        drain_events=args.drain_events,
        drain_partitions=args.drain_partitions,
        soak_events=args.soak_events,
        http_seconds=args.seconds,
        connections=args.connections,
        http_workers=args.http_workers,
        poller_crc32c=args.poller_crc32c,
        whatif_apply_ahead=args.whatif_apply_ahead,
        only=only,
        soak=args.soak,
        database_url=bench_database_url(),
        redis_url=bench_redis_url(),
        bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        args=vars(args),
    )
    for target in (cfg.database_url.replace("postgresql://", "//"), cfg.redis_url, *cfg.bootstrap.split(",")):
        loopback(target if "//" in target else target.strip())
    return cfg


def setup(cfg: Config) -> None:
    """Directories, and the configuration of in-process rows: the same as the processes we start."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        DATABASE_URL=cfg.database_url, REDIS_URL=cfg.redis_url, KAFKA_BOOTSTRAP_SERVERS=cfg.bootstrap
    )
    os.environ.pop("DB_SECRET_ARN", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    prepare_database(cfg.database_url)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    started = time.time()
    setup(cfg)
    report = Report()
    report.raw["loadavg_start"] = os.getloadavg()
    failed = False
    for name in FAMILIES:
        if name not in cfg.only:
            continue
        try:
            family(name).run(cfg, report)
        except Exception as exc:  # one broken row must not hide the others
            failed = True
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            report.add(Row(f"{name}", f"FAILED: {type(exc).__name__}: {str(exc)[:200]}"))
    from common.adapters.db import close_pool

    close_pool()  # the seeding's pool, so its threads do not outlive the table
    table = render(report, cfg, started)
    out = OUT_DIR / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    config = {k: v for k, v in asdict(cfg).items() if k not in ("only", "args")} | {"only": sorted(cfg.only)}
    out.write_text(json.dumps({"config": config, "rows": [asdict(r) for r in report.rows], "raw": report.raw},
                              indent=1, default=str))  # fmt: skip
    print(table)
    print(f"\nraw results: {out.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
