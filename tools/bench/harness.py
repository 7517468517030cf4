"""What every row family of `make bench` shares: its configuration, the results table, the
benchmark's own database and the check of a run against it.

A row family (tools/bench/rows/ingest.py, drain.py, webhook.py, ...) is a module with
`run(cfg: Config, report: Report) -> None` that measures its rows `cfg.runs` times, checks every
run against the database, and adds one `Row` per measurement; tools/bench/run.py registers the
families and prints the table. A family may also define `add_arguments(parser)` for options of its
own, read back from `cfg.args`.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from common.adapters.migrate import DATA_TABLES
from tools.bench.workload import Workload

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / ".stack" / "bench"
LOG_DIR = OUT_DIR / "logs"
PY = sys.executable
LEDGER_TABLES = ", ".join(DATA_TABLES)


@dataclass
class Config:
    runs: int
    events: int
    batch: int
    kafka_events: int
    drain_events: int
    drain_partitions: int
    soak_events: int
    http_seconds: float
    connections: int
    http_workers: int
    poller_crc32c: bool
    whatif_apply_ahead: bool
    only: set[str]
    soak: bool
    database_url: str
    redis_url: str
    bootstrap: str
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    args: dict[str, Any] = field(default_factory=dict)  # every option, the families' own included


# --- results ------------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    value: str
    target: str = ""
    verdict: str = ""
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  -> {row.label}: {row.value} {row.verdict}", file=sys.stderr, flush=True)


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """The runs behind a median, so the noise is visible next to the number."""
    return "runs " + " / ".join(fmt.format(v) for v in values)


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def render(report: Report, cfg: Config, started: float) -> str:
    headers = ("measurement", f"median of {cfg.runs}", "target", "", "notes")
    rows = [(r.label, r.value, r.target, r.verdict, r.note) for r in report.rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers[:4])]
    load = report.raw.get("loadavg_start", (float("nan"),) * 3)
    lines = [
        f"make bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"{time.time() - started:.0f} s; every row: median of {cfg.runs} runs, each checked against the DB",
        f"load average before / after: {load[0]:.1f} / {os.getloadavg()[0]:.1f} (above ~0.5 other work "
        "shared the cores: compare rows of one run with each other, not across machines)",
        "",
        "  ".join(h.ljust(w) for h, w in zip(headers[:4], widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)).rstrip())
        if row[4]:
            lines.append(" " * 4 + row[4])
    lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines)


# --- the benchmark's own services -----------------------------------------------------------------


def loopback(url_or_hostport: str) -> None:
    """Refuse anything but this machine: benchmarks only ever load 127.0.0.1."""
    host = urlsplit(url_or_hostport if "//" in url_or_hostport else f"//{url_or_hostport}").hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"bench: refusing non-loopback target {host!r} (only 127.0.0.1 is benchmarked)")


def bench_database_url() -> str:
    """BENCH_DATABASE_URL, else DATABASE_URL's server with the database `bench`."""
    explicit = os.environ.get("BENCH_DATABASE_URL")
    if explicit:
        return explicit
    base = urlsplit(
        os.environ.get("DATABASE_URL", "postgresql://warehouse:warehouse@127.0.0.1:5432/warehouse")
    )
    return urlunsplit(base._replace(path="/bench"))


def bench_redis_url() -> str:
    explicit = os.environ.get("BENCH_REDIS_URL")
    if explicit:
        return explicit
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return f"{parts.scheme}://{parts.netloc}/5"


def prepare_database(url: str) -> None:
    """Create (CREATEDB privilege) and migrate the benchmark's own database."""
    import psycopg
    from psycopg import sql

    from common.adapters.migrate import migrate

    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url, connect_timeout=5) as conn:
        migrate(conn)


def child_env(cfg: Config, **extra: str) -> dict[str, str]:
    """The environment of every process we start: our database, Redis db and broker, quiet logs."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=cfg.database_url,
        REDIS_URL=cfg.redis_url,
        KAFKA_BOOTSTRAP_SERVERS=cfg.bootstrap,
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.pop("DB_SECRET_ARN", None)
    env.update(extra)
    return env


# --- database checks ------------------------------------------------------------------------------


def db() -> Any:
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, connect_timeout=5)


def truncate() -> None:
    with db() as conn:
        conn.execute(f"TRUNCATE {LEDGER_TABLES} RESTART IDENTITY")


def check_state(work: Workload, *, origin: str | None = None) -> list[str]:
    """Compare the tables with what the stream must leave behind; an empty list means all is right."""
    problems = []
    with db() as conn:
        where = "WHERE origin = %s" if origin else ""
        params = (origin,) if origin else ()
        events = conn.execute(f"SELECT count(*) FROM movement_events {where}", params).fetchone()[0]
        movements = conn.execute("SELECT count(*) FROM movements").fetchone()[0]
        rejected = conn.execute("SELECT count(*) FROM rejected_events").fetchone()[0]
        stock = {
            (str(w), str(p)): q
            for w, p, q in conn.execute("SELECT warehouse_id, product_id, quantity FROM stock")
        }
    if events != work.applied:
        problems.append(f"{events} event rows, expected {work.applied}")
    if movements != len(work.movements):
        problems.append(f"{movements} movements, expected {len(work.movements)}")
    if rejected:
        problems.append(f"{rejected} rejected events, expected none")
    wrong = sum(1 for k, q in work.stock.items() if stock.get(k, 0) != q)
    extra = len(set(stock) - set(work.stock))
    if wrong or extra:
        problems.append(f"{wrong} stock rows differ from the expected values, {extra} unexpected rows")
    return problems


@contextlib.contextmanager
def stdout_to(path: Path) -> Iterator[None]:
    """Send fd 1 to a log while the handler runs: its log lines are part of its cost, not our output."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
