"""`make bench`: every throughput and latency figure of the service, measured in one run, one table.

Rows (each the median of `--runs` runs, 3 by default, interleaved so drift hits all alike):

1. ingestion through `functions.ingest_kafka.handler.handler`: MSK events of 1,000 records built
   in advance, fresh keys per run, a realistic mix (see tools/bench/workload.py); only the
   handler calls are timed;
2. the ceiling: the same stream applied by bare set-based SQL (tools/bench/ceiling_sql.py) in the
   same database, and row 1 as a share of it;
3. Kafka end to end: 200,000 events produced to a fresh topic while the standalone poller
   (`python -m functions.local_app.poller`, a subprocess) applies them; first produced to last
   applied, and the poller's peak RSS from /proc (`--soak`: 1,000,000 events, RSS growth);
3d. the drain: 200,000 records produced with the app stopped, then `make run` started (the
   supervisor, functions/local_app/serve.py, with its default pollers); from the app answering
   /health to the last record applied, so the producer is not the bound; CPU per event of the
   pollers and of PostgreSQL;
4. the webhook at 64 connections (wrk, a Lua script making distinct valid events) on the app as
   `make run` serves it (group commit), then the database checked: every 2xx event logged once,
   stock = seed + log; 4a one connection's latency against 4b, the same app with one transaction
   per event (tools/bench/peer_like.py, the peer-like design) as the baseline;
5. GET stock on 1,000 existing keys at 64 connections on the `make run` server, cache warm and
   cache off, against same-run ceilings with the same worker count: a no-op route in the same app
   (5c), FastAPI's own no-op (5d) and a bare ASGI callable (5e) (tools/bench/bench_asgi.py);
   one connection's latency first (uvicorn #3149: Nagle left on with several workers);
6. cold start of each Lambda handler module (tools/bench/cold_start.py).

CPU per event or request (the server's processes, PostgreSQL's backends, redis-server, from /proc)
is printed beside every rate: on a shared machine it is the steadier figure.

Every run of a row is checked against the database (counts, stock per key) before its number is
used: a fast wrong answer is reported as a failure, not a result. The benchmark uses a database of
its own (BENCH_DATABASE_URL, default: DATABASE_URL's server, database `bench`, created and
migrated here) whose ledger tables it truncates, Redis database 5 and fresh Kafka topics, all on
127.0.0.1. Raw results: .stack/bench/results-<time>.json; logs: .stack/bench/logs/.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import pickle
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from common.adapters.migrate import DATA_TABLES  # noqa: E402
from functions.local_app.serve import cores  # noqa: E402
from tools.bench import ceiling_sql, cold_start  # noqa: E402
from tools.bench.workload import Workload, generate, msk_events, partition_of  # noqa: E402

OUT_DIR = ROOT / ".stack" / "bench"
LOG_DIR = OUT_DIR / "logs"
PY = sys.executable
LEDGER_TABLES = ", ".join(DATA_TABLES)
STOCK_PATH = "/api/v1/warehouse/{w}/products/{p}"
WEBHOOK_PATH = "/api/v1/kafka/webhook"
NOOP_PATH = "/bench/noop"

TARGETS = {
    "ingest_share": 0.70,
    "kafka_eps": 15_000,
    "soak_growth_mb": 50,
    "webhook_eps": 1_500,
    "webhook_p99_ms": 100.0,
    "drain_eps": 10_000,
    "stock_p99_ms": 25.0,
    "stock_share": 0.60,
}


# --- configuration ------------------------------------------------------------------------------


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


def stop_processes(*procs: subprocess.Popen[Any]) -> None:
    """SIGTERM every process still running, then wait; kill what does not stop within 20 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _loopback(url_or_hostport: str) -> None:
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


# --- rows 1 and 2: the ingest handler against bare SQL ---------------------------------------------


def _proc_cpu_seconds(pid: int | str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_backend_cpu(database_url: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends of our database (from /proc: same host).

    With the process's own CPU time this gives a cost per event that, unlike events/s, hardly
    depends on what else the machine is doing."""
    parts = urlsplit(database_url)
    title = f" {parts.username} {parts.path.lstrip('/')} ".encode()
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if cmdline.startswith(b"postgres:") and title in cmdline:
                total += _proc_cpu_seconds(pid)
        except OSError:
            continue
    return total


@dataclass
class IngestRun:
    eps: float
    python_us: float  # this process's CPU per event
    postgres_us: float  # the database backends' CPU per event


def bench_ingest(cfg: Config, report: Report) -> None:
    import psycopg

    from common.adapters.db import get_pool
    from functions.ingest_kafka.handler import handler

    results: dict[str, list[IngestRun]] = {"handler": [], "ceiling": [], "columns": []}
    mix = ""
    # Connections opened before any clock or CPU counter starts, and kept: their backends' CPU is
    # what pg_backend_cpu counts (a backend that exits within a run would take its CPU with it).
    get_pool().wait()
    sql_conn = psycopg.connect(cfg.database_url, autocommit=True)

    def measure(kind: str, work: Workload, apply: Callable[[], None]) -> None:
        truncate()
        # The input built in advance (3 x 100,000 events, millions of objects) is no part of the
        # handler's work, but every full collection the handler's allocations trigger would walk it:
        # frozen, it is left out (measured: 185 -> 130 us Python CPU per event, 4,000 -> 5,100/s).
        gc.collect()
        gc.freeze()
        cpu, pg = time.process_time(), pg_backend_cpu(cfg.database_url)
        started = time.perf_counter()
        try:
            apply()
        finally:
            seconds = time.perf_counter() - started
            gc.unfreeze()
        cpu, pg = time.process_time() - cpu, pg_backend_cpu(cfg.database_url) - pg
        problems = check_state(work)
        if problems:
            raise RuntimeError(f"{kind} run left a wrong state: " + "; ".join(problems))
        n = len(work.values)
        results[kind].append(IngestRun(n / seconds, 1e6 * cpu / n, 1e6 * pg / n))
        log(
            f"  {kind:8} {n / seconds:8,.0f} events/s  ({1e6 * cpu / n:.0f} us Python + "
            f"{1e6 * pg / n:.0f} us PostgreSQL CPU per event)"
        )

    for run in range(cfg.runs):
        seed = int(cfg.nonce, 16) + run
        log(f"ingest run {run + 1}/{cfg.runs}: generating 3 x {cfg.events:,} events")
        # One stream shape, three disjoint key sets: the handler, bare SQL on JSON, bare SQL on columns.
        work_h, work_c, work_d = (generate(cfg.events, seed=seed) for _ in range(3))
        mix = work_h.mix()
        events = msk_events(work_h, topic=f"bench-ingest-{cfg.nonce}", batch_size=cfg.batch)
        staged = [
            ceiling_sql.staged_rows(e)
            for e in msk_events(work_c, topic=f"bench-ceiling-{cfg.nonce}", batch_size=cfg.batch)
        ]
        columns = [
            ceiling_sql.decoded_rows(e)
            for e in msk_events(work_d, topic=f"bench-columns-{cfg.nonce}", batch_size=cfg.batch)
        ]

        def run_handler(events: list[dict[str, Any]] = events) -> None:
            with stdout_to(LOG_DIR / "ingest-handler.log"):
                for event in events:
                    handler(event, cold_start.FakeContext())

        def run_sql(batches: list[Any], decoded: bool) -> None:
            ceiling_sql.apply_batches(sql_conn, batches, decoded=decoded)

        steps: list[tuple[str, Workload, Callable[[], None]]] = [
            ("handler", work_h, run_handler),
            ("ceiling", work_c, partial(run_sql, staged, False)),
            ("columns", work_d, partial(run_sql, columns, True)),
        ]
        for kind, work, apply in steps[run % 3 :] + steps[: run % 3]:  # rotated: drift hits all alike
            measure(kind, work, apply)

    sql_conn.close()

    def m(kind: str, attr: str) -> float:
        return med([getattr(r, attr) for r in results[kind]])

    h, c, d = m("handler", "eps"), m("ceiling", "eps"), m("columns", "eps")
    share = h / c
    report.raw["ingest"] = {k: [asdict(r) for r in v] for k, v in results.items()} | {"mix": mix}
    report.add(
        Row(
            f"1. ingest handler, {cfg.events:,} events in batches of {cfg.batch:,}",
            f"{h:,.0f} events/s",
            note=f"{spread([r.eps for r in results['handler']])}; {mix}; CPU per event: "
            f"{m('handler', 'python_us'):.0f} us Python + {m('handler', 'postgres_us'):.0f} us PostgreSQL",
        )
    )
    report.add(
        Row(
            "2. bare SQL ceiling, JSON decoded by PostgreSQL (COPY + set-based upserts); row 1 / row 2",
            f"{c:,.0f} events/s; {100 * share:.0f} %",
            f">= {100 * TARGETS['ingest_share']:.0f} %",
            verdict(share >= TARGETS["ingest_share"]),
            f"{spread([r.eps for r in results['ceiling']])}; CPU per event: "
            f"{m('ceiling', 'python_us'):.0f} us Python + {m('ceiling', 'postgres_us'):.0f} us PostgreSQL",
        )
    )
    report.add(
        Row(
            "2b. bare SQL, fields decoded in advance (the database's writes alone); row 1 / row 2b",
            f"{d:,.0f} events/s; {100 * h / d:.0f} %",
            note=f"{spread([r.eps for r in results['columns']])}; CPU per event: "
            f"{m('columns', 'python_us'):.0f} us Python + {m('columns', 'postgres_us'):.0f} us PostgreSQL",
        )
    )


# --- row 3: Kafka end to end through the standalone poller ----------------------------------------


def _kafka_admin(cfg: Config) -> Any:
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=cfg.bootstrap, client_id="bench-admin", request_timeout_ms=15000
    )


def _producer_env(cfg: Config) -> dict[str, str]:
    """kafka-python computes CRC-32C in pure Python unless the `crc32c` package is importable;
    bench.sh puts one in .stack/bench/pylib so the load generator is not the bottleneck."""
    env = child_env(cfg)
    pylib = Path(os.environ.get("BENCH_PYLIB") or OUT_DIR / "pylib")
    if pylib.is_dir():
        env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{pylib}"
    return env


def producer_main(data_path: str) -> int:
    """The producer subprocess: read the stream, say ready, wait for 'go', produce it all, report.

    Line protocol on stdout: `ready`, then `first <epoch>` at the first send and
    `done <epoch> <count>` after the final flush.
    """
    from kafka import KafkaProducer

    spec = pickle.loads(Path(data_path).read_bytes())
    producer = KafkaProducer(
        bootstrap_servers=spec["bootstrap"].split(","),
        acks=1,
        linger_ms=10,
        batch_size=256 * 1024,
        max_request_size=8 * 1024 * 1024,
        client_id="bench-producer",
    )
    topic, partitions, rate = spec["topic"], spec["partitions"], spec.get("rate") or 0
    producer.partitions_for(topic)
    for key, value in spec.get("warmup", []):
        producer.send(topic, key=key, value=value, partition=partition_of(key, partitions))
    producer.flush()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    started = time.time()
    print(f"first {started}", flush=True)
    for i, (key, value) in enumerate(zip(spec["keys"], spec["values"], strict=True)):
        producer.send(topic, key=key, value=value, partition=partition_of(key, partitions))
        if rate and i % 100 == 0:
            ahead = started + i / rate - time.time()
            if ahead > 0:
                time.sleep(ahead)
    producer.flush()
    print(f"done {time.time()} {len(spec['values'])}", flush=True)
    producer.close(timeout=10)
    return 0


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB from /proc/PID/status; (0, 0) once the process is gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return rss, hwm


def last_warning(log_path: str) -> str:
    """The poller log's last WARNING line, to say why a run failed."""
    lines = [ln for ln in Path(log_path).read_text(errors="replace").splitlines() if " WARNING " in ln]
    return lines[-1].split(" WARNING ", 1)[1][:300] if lines else "no warning in its log"


def count_applied(conn: Any, topic: str) -> int:
    """Events of `topic` applied so far, cheaply enough to ask many times a second.

    An exact count scans the event log, and a scan 20 times a second of a table growing to 200,000
    rows would load the very database being measured. The log's ids come from a sequence (restarted
    by `truncate`) and only this run writes to it, so max(id), an index lookup, counts the rows;
    ids a rolled-back batch consumed could only make it run ahead, so an exact count confirms it
    once it reaches a target (`exact_applied`)."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM movement_events").fetchone()[0])


def exact_applied(conn: Any, topic: str) -> int:
    row = conn.execute("SELECT count(*) FROM movement_events WHERE kafka_topic = %s", (topic,)).fetchone()
    return int(row[0])


@dataclass
class KafkaRun:
    events: int
    seconds: float
    eps: float
    produce_seconds: float
    peak_rss_mb: float
    rss_after_warmup_mb: float
    rss_end_mb: float
    rss_samples: list[tuple[float, int, float]]  # (seconds since first produced, applied, RSS MB)
    problems: list[str]
    poller_cpu_us: float = 0.0  # the poller's CPU per event while the stream was applied
    postgres_cpu_us: float = 0.0


def kafka_e2e(cfg: Config, events: int, *, label: str, timeout: float) -> KafkaRun:
    """One run: fresh topic and group, poller subprocess, producer subprocess, DB polled for progress."""
    from kafka.admin import NewTopic

    topic = f"bench-{label}-{cfg.nonce}-{uuid.uuid4().hex[:6]}"
    partitions = 3
    work = generate(events, seed=int(uuid.uuid4().hex[:8], 16))
    warm = generate(1, seed=1)  # one restock, applied before the clock starts: the poller is live
    truncate()
    admin = _kafka_admin(cfg)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    tmp = Path(tempfile.mkdtemp(prefix="bench-kafka-", dir=OUT_DIR))
    data = tmp / "stream.pickle"
    data.write_bytes(
        pickle.dumps(
            {
                "bootstrap": cfg.bootstrap,
                "topic": topic,
                "partitions": partitions,
                "keys": work.keys,
                "values": work.values,
                "warmup": list(zip(warm.keys, warm.values, strict=True)),
            }
        )
    )
    env = child_env(cfg, KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"bench-{topic}", LOG_LEVEL="INFO")
    if cfg.poller_crc32c:  # what-if: the poller with the crc32c wheel importable (see --poller-crc32c)
        env["PYTHONPATH"] = _producer_env(cfg)["PYTHONPATH"]
    poller_log = open(LOG_DIR / f"poller-{label}.log", "ab")  # noqa: SIM115 - closed below
    if cfg.whatif_apply_ahead:  # what-if: batch N+1 decoded while batch N commits
        env["KAFKA_APPLY_AHEAD"] = "true"
    poller = subprocess.Popen(
        [PY, "-m", "functions.local_app.poller"], cwd=ROOT, env=env, stdout=poller_log, stderr=poller_log
    )
    producer = subprocess.Popen(
        [PY, __file__, "--producer", str(data)],
        cwd=ROOT,
        env=_producer_env(cfg),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    samples: list[tuple[float, int, float]] = []
    problems: list[str] = []
    expected = work.applied + warm.applied
    try:
        assert producer.stdout is not None and producer.stdin is not None
        if producer.stdout.readline().strip() != "ready":
            raise RuntimeError("the producer did not start (see above)")
        deadline = time.monotonic() + 60
        with db() as conn:
            while count_applied(conn, topic) < warm.applied:
                if poller.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the poller did not apply the warm-up event: {last_warning(poller_log.name)} "
                        f"(log: {poller_log.name})"
                    )
                time.sleep(0.1)
            rss_warm = rss_kb(poller.pid)[0] / 1024
            cpu_start = _proc_cpu_seconds(poller.pid), pg_backend_cpu(cfg.database_url)
            producer.stdin.write("go\n")
            producer.stdin.flush()
            first = float(producer.stdout.readline().split()[1])
            produced_at: list[float] = []

            def wait_producer() -> None:
                line = producer.stdout.readline() if producer.stdout else ""
                if line.startswith("done"):
                    produced_at.append(float(line.split()[1]))

            waiter = threading.Thread(target=wait_producer, daemon=True)
            waiter.start()
            deadline = time.monotonic() + timeout
            applied = 0
            last_sample = 0.0
            while True:
                applied = count_applied(conn, topic)
                if applied >= expected:
                    applied = exact_applied(conn, topic)
                now = time.time()
                if now - last_sample >= 1.0 or applied >= expected:
                    samples.append((now - first, applied, rss_kb(poller.pid)[0] / 1024))
                    last_sample = now
                if applied >= expected:
                    break
                if poller.poll() is not None:
                    raise RuntimeError(f"the poller exited with {poller.returncode} (log: {poller_log.name})")
                if time.monotonic() > deadline:
                    problems.append(f"timed out after {timeout:.0f} s with {applied:,}/{expected:,} applied")
                    break
                time.sleep(0.1)
            finished = time.time()
            rss_end, hwm = rss_kb(poller.pid)
            cpu_used = (
                _proc_cpu_seconds(poller.pid) - cpu_start[0],
                pg_backend_cpu(cfg.database_url) - cpu_start[1],
            )
        waiter.join(10)
    finally:
        stop_processes(producer, poller)
        poller_log.close()
        with contextlib.suppress(Exception):
            admin.delete_topics([topic])
        admin.close()
        data.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            tmp.rmdir()
    combined = Workload(
        values=work.values + warm.values,
        keys=work.keys + warm.keys,
        kinds=work.kinds + warm.kinds,
        stock={**work.stock, **warm.stock},
        movements=work.movements | warm.movements,
    )
    if not problems:
        problems = check_state(combined)
    seconds = finished - first
    return KafkaRun(
        events=events,
        seconds=seconds,
        eps=(applied - warm.applied) / seconds if seconds > 0 else 0.0,
        produce_seconds=(produced_at[0] - first) if produced_at else float("nan"),
        peak_rss_mb=hwm / 1024,
        rss_after_warmup_mb=rss_warm,
        rss_end_mb=rss_end / 1024,
        rss_samples=samples,
        problems=problems,
        poller_cpu_us=1e6 * cpu_used[0] / max(applied - warm.applied, 1),
        postgres_cpu_us=1e6 * cpu_used[1] / max(applied - warm.applied, 1),
    )


@dataclass
class DrainRun:
    events: int
    partitions: int
    pollers: int
    produce_seconds: float
    startup_seconds: float  # from launching `make run` to /health answering
    seconds: float  # from /health answering to the last event applied
    eps: float
    applied_before_up: int
    poller_cpu_us: float  # the poller processes' CPU per event, from the app up to the end
    postgres_cpu_us: float
    workers_cpu_us: float  # the HTTP workers (idle here) and the supervisor
    problems: list[str]


def _poller_pids(root: int) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == root and (b"functions.local_app.poller" in cmdline):
            pids.append(int(pid))
    return pids


def kafka_drain(cfg: Config, events: int, partitions: int, timeout: float) -> DrainRun:
    """Records produced with the app stopped, then `make run` (the supervisor, kafka mode, its
    default pollers) started; timed from the app answering /health to the last record applied, so
    the producer is not the bound. CPU per event from /proc: the pollers, PostgreSQL's backends."""
    from kafka.admin import NewTopic

    topic = f"bench-drain-{cfg.nonce}-{uuid.uuid4().hex[:6]}"
    work = generate(events, seed=int(uuid.uuid4().hex[:8], 16))
    truncate()
    admin = _kafka_admin(cfg)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    tmp = Path(tempfile.mkdtemp(prefix="bench-drain-", dir=OUT_DIR))
    data = tmp / "stream.pickle"
    spec = {"bootstrap": cfg.bootstrap, "topic": topic, "partitions": partitions, "keys": work.keys,
            "values": work.values}  # fmt: skip
    data.write_bytes(pickle.dumps(spec))
    producer = subprocess.Popen([PY, __file__, "--producer", str(data)], cwd=ROOT, env=_producer_env(cfg),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    serve: subprocess.Popen[bytes] | None = None
    problems: list[str] = []
    port = free_port()
    log_file = open(LOG_DIR / "serve-drain.log", "ab")  # noqa: SIM115 - closed below
    try:
        assert producer.stdout is not None and producer.stdin is not None
        if producer.stdout.readline().strip() != "ready":
            raise RuntimeError("the producer did not start")
        producer.stdin.write("go\n")
        producer.stdin.flush()
        first = float(producer.stdout.readline().split()[1])
        done = producer.stdout.readline().split()
        if not done or done[0] != "done":
            raise RuntimeError("the producer did not finish")
        produce_seconds = float(done[1]) - first
        producer.wait(30)
        env = child_env(cfg, APP_MODE="kafka", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"bench-{topic}",
                        APP_HOST="127.0.0.1", APP_PORT=str(port), APP_WORKERS=str(cfg.http_workers),
                        ACCESS_LOG="false", LOG_LEVEL="WARNING")  # fmt: skip
        env.pop("KAFKA_POLLERS", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        launched = time.monotonic()
        if cfg.whatif_apply_ahead:
            env["KAFKA_APPLY_AHEAD"] = "true"
        command = [PY, "-m", "functions.local_app.serve"]
        serve = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=log_file)
        deadline = launched + 90
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2),
            ):
                break
            if serve.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"make run did not come up (log: {log_file.name})")
            time.sleep(0.05)
        up = time.monotonic()
        pollers = _poller_pids(serve.pid)
        with db() as conn:
            applied_before = count_applied(conn, topic)
            cpu0 = sum(_proc_cpu_seconds(p) for p in pollers), pg_backend_cpu(cfg.database_url)
            tree0 = process_tree_cpu(serve.pid)
            deadline = up + timeout
            applied = applied_before
            while True:
                applied = count_applied(conn, topic)
                if applied >= work.applied:
                    applied = exact_applied(conn, topic)
                    if applied >= work.applied:
                        break
                if time.monotonic() > deadline:
                    problems.append(
                        f"timed out after {timeout:.0f} s with {applied:,}/{work.applied:,} applied"
                    )
                    break
                time.sleep(0.05)
            finished = time.monotonic()
            poller_cpu = sum(_proc_cpu_seconds(p) for p in pollers) - cpu0[0]
            pg_cpu = pg_backend_cpu(cfg.database_url) - cpu0[1]
            other_cpu = process_tree_cpu(serve.pid) - tree0 - poller_cpu
    finally:
        stop_processes(*(p for p in (producer, serve) if p is not None))
        log_file.close()
        with contextlib.suppress(Exception):
            admin.delete_topics([topic])
        admin.close()
        data.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            tmp.rmdir()
    if not problems:
        problems = check_state(work)
    n = max(work.applied - applied_before, 1)
    return DrainRun(
        events=events,
        partitions=partitions,
        pollers=len(pollers),
        produce_seconds=produce_seconds,
        startup_seconds=up - launched,
        seconds=finished - up,
        eps=(applied - applied_before) / (finished - up),
        applied_before_up=applied_before,
        poller_cpu_us=1e6 * poller_cpu / n,
        postgres_cpu_us=1e6 * pg_cpu / n,
        workers_cpu_us=1e6 * other_cpu / n,
        problems=problems,
    )


def bench_drain(cfg: Config, report: Report) -> None:
    runs: list[DrainRun] = []
    for run in range(cfg.runs):
        log(f"kafka drain run {run + 1}/{cfg.runs}: producing {cfg.drain_events:,} records, then make run")
        result = kafka_drain(
            cfg, cfg.drain_events, cfg.drain_partitions, timeout=max(120.0, cfg.drain_events / 500)
        )
        if result.problems:
            raise RuntimeError("kafka drain run failed: " + "; ".join(result.problems))
        log(
            f"  {result.eps:,.0f} events/s with {result.pollers} pollers; up after "
            f"{result.startup_seconds:.1f} s; CPU per event: pollers {result.poller_cpu_us:.0f} us + "
            f"PostgreSQL {result.postgres_cpu_us:.0f} us"
        )
        runs.append(result)
    report.raw["drain"] = [asdict(r) for r in runs]
    eps = [r.eps for r in runs]
    report.add(
        Row(
            f"3d. Kafka drain, {cfg.drain_events:,} records pre-produced to {cfg.drain_partitions} "
            f"partitions, make run ({runs[0].pollers} pollers, {cfg.http_workers} workers)"
            + (" (what-if: pollers applying ahead)" if cfg.whatif_apply_ahead else ""),
            f"{med(eps):,.0f} events/s",
            f">= {TARGETS['drain_eps']:,} events/s",
            verdict(med(eps) >= TARGETS["drain_eps"]),
            f"{spread(eps)}; from the app up (after {med([r.startup_seconds for r in runs]):.1f} s) to the "
            f"last applied; CPU per event: pollers {med([r.poller_cpu_us for r in runs]):.0f} us + "
            f"PostgreSQL {med([r.postgres_cpu_us for r in runs]):.0f} us (+ workers and supervisor "
            f"{med([r.workers_cpu_us for r in runs]):.0f} us); state checked",
        )
    )


def bench_kafka(cfg: Config, report: Report) -> None:
    runs: list[KafkaRun] = []
    for run in range(cfg.runs):
        log(f"kafka e2e run {run + 1}/{cfg.runs}: {cfg.kafka_events:,} events")
        result = kafka_e2e(cfg, cfg.kafka_events, label="e2e", timeout=max(120.0, cfg.kafka_events / 500))
        if result.problems:
            raise RuntimeError("kafka e2e run failed: " + "; ".join(result.problems))
        log(
            f"  {result.eps:,.0f} events/s (produced in {result.produce_seconds:.1f} s), "
            f"poller peak RSS {result.peak_rss_mb:.0f} MB"
        )
        runs.append(result)
    eps = [r.eps for r in runs]
    report.raw["kafka"] = [asdict(r) for r in runs]
    report.add(
        Row(
            f"3. Kafka e2e, {cfg.kafka_events:,} events via the standalone poller; poller peak RSS"
            + (" (what-if: crc32c importable)" if cfg.poller_crc32c else "")
            + (" (what-if: poller applying ahead)" if cfg.whatif_apply_ahead else ""),
            f"{med(eps):,.0f} events/s; {med([r.peak_rss_mb for r in runs]):.0f} MB",
            f">= {TARGETS['kafka_eps']:,} events/s",
            verdict(med(eps) >= TARGETS["kafka_eps"]),
            f"{spread(eps)}; producer done after {med([r.produce_seconds for r in runs]):.1f} s; CPU per "
            f"event: poller {med([r.poller_cpu_us for r in runs]):.0f} us + PostgreSQL "
            f"{med([r.postgres_cpu_us for r in runs]):.0f} us",
        )
    )
    if cfg.soak:
        log(f"kafka soak: {cfg.soak_events:,} events")
        soak = kafka_e2e(cfg, cfg.soak_events, label="soak", timeout=max(600.0, cfg.soak_events / 300))
        report.raw["soak"] = asdict(soak)
        # Growth is taken from the first tenth of the stream on: by then pools, caches and the
        # consumer's buffers have reached their working size; the warm-up figure is shown too.
        steady = next((rss for _, applied, rss in soak.rss_samples if applied >= soak.events // 10), None)
        base = steady if steady is not None else soak.rss_after_warmup_mb
        growth = soak.rss_end_mb - base
        report.add(
            Row(
                f"3s. soak, {cfg.soak_events:,} events: poller RSS at 10 % -> end",
                f"{base:.0f} -> {soak.rss_end_mb:.0f} MB ({growth:+.0f}); {soak.eps:,.0f} events/s",
                f"growth < {TARGETS['soak_growth_mb']} MB",
                verdict(growth < TARGETS["soak_growth_mb"] and not soak.problems),
                f"RSS after the first event {soak.rss_after_warmup_mb:.0f} MB, "
                f"peak {soak.peak_rss_mb:.0f} MB; " + ("; ".join(soak.problems) or "state checked"),
            )
        )


# --- rows 4 and 5: HTTP with wrk ------------------------------------------------------------------

WEBHOOK_LUA = r"""
-- Distinct valid events: alternately an arrival and a 1-unit departure of a new movement on one
-- of the pre-stocked keys (so no departure can ever be refused). Ids: nonce-thread-counter.
counter, ok2xx, bad = 0, 0, 0
local keys, threads = {}, {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function init(args)
  for line in io.lines(args[1]) do
    local w, p = line:match("(%S+) (%S+)")
    keys[#keys + 1] = {w, p}
  end
  nonce = args[2]
  math.randomseed(tid * 7919 + os.time())
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local k = keys[math.random(#keys)]
  local id = string.format("%s-%04x-4000-8000-%012x", nonce, tid, counter)
  local kind, qty = "arrival", math.random(1, 100)
  if counter % 2 == 0 then kind, qty = "departure", 1 end
  local body = string.format(
    '{"id":"%s","source":"WH-0001","specversion":"1.0","type":"ru.retail.warehouses.movement",' ..
    '"datacontenttype":"application/json","time":1739865600000,"subject":"WH-0001:%s",' ..
    '"destination":"ru.retail.warehouses","data":{"movement_id":"%s","warehouse_id":"%s",' ..
    '"timestamp":"2025-02-18T08:00:00Z","event":"%s","product_id":"%s","quantity":%d}}',
    id, kind:upper(), id, k[1], kind, k[2], qty)
  return wrk.format(nil, nil, nil, body)
end
"""

STOCK_LUA = r"""
-- GET stock on the existing keys, picked at random.
counter, ok2xx, bad = 0, 0, 0
local paths, threads = {}, {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(tid * 7919 + os.time())
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[math.random(#paths)])
end
"""

COMMON_LUA = r"""
function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok2xx = ok2xx + 1
  else
    bad = bad + 1
    if bad <= 3 then io.stderr:write("non-2xx " .. status .. ": " .. (body or ""):sub(1, 300) .. "\n") end
  end
end

function done(summary, latency, requests)
  local generated, good, nbad = 0, 0, 0
  for _, t in ipairs(threads) do
    generated = generated + t:get("counter")
    good = good + t:get("ok2xx")
    nbad = nbad + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"generated":%d,"ok2xx":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    generated, good, nbad, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    generated: int
    ok2xx: int
    non2xx: int
    socket_errors: int
    server_cpu_ms: float = float("nan")  # the server's processes (all workers) CPU per request
    postgres_cpu_ms: float = float("nan")
    redis_cpu_ms: float = float("nan")
    events_per_transaction: float = float("nan")  # webhook runs: log rows per inserting transaction


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package when it is missing (we run as root)."""
    import shutil

    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: apt-get install -y wrk")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True, timeout=300)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update"], check=False, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True, timeout=300)
        found = shutil.which("wrk") or "wrk"
    return found


def run_wrk(
    url: str, script: str, args: list[str], *, connections: int, seconds: float, threads: int = 2
) -> WrkResult:
    """One wrk run; the Lua `done` hook prints the numbers as JSON on a BENCH_JSON line."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", dir=OUT_DIR, delete=False) as f:
        f.write(script + COMMON_LUA)
        lua = f.name
    try:
        cmd = [
            ensure_wrk(),
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            lua,
            url,
            "--",
            *args,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    finally:
        os.unlink(lua)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    if proc.stderr.strip():
        log("wrk: " + proc.stderr.strip()[:500])
    data = json.loads(line.split(" ", 1)[1])
    return WrkResult(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        generated=data["generated"],
        ok2xx=data["ok2xx"],
        non2xx=data["non2xx"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree_cpu(root: int) -> float:
    """User + system CPU seconds of `root` and all its descendants (supervisor, uvicorn, workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(cpu.get(pid, 0.0) for pid in tree)


def redis_server_cpu(redis_url: str) -> float:
    """CPU seconds of the redis-server listening on REDIS_URL's port (same host), 0 if not found."""
    port = f":{urlsplit(redis_url).port or 6379}"
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cmdline.startswith("redis-server") and port in cmdline:
            return _proc_cpu_seconds(pid)
    return 0.0


class Server:
    """One server on 127.0.0.1 for the HTTP rows, run the way `make run` runs the app.

    `serve=True`: `python -m functions.local_app.serve --app APP` (the make run supervisor: its
    worker count, ACCESS_LOG off, no pollers in webhook_only mode). `serve=False`: plain uvicorn
    with the same worker count and flags, for the ceilings that are not this app (FastAPI's own
    no-op, a bare ASGI callable).
    """

    def __init__(
        self,
        cfg: Config,
        *,
        workers: int,
        cache: bool = True,
        app: str = "tools.bench.bench_asgi:app",
        serve: bool = True,
        name: str | None = None,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database_url = cfg.database_url
        self.redis_url = cfg.redis_url
        env = child_env(
            cfg,
            APP_MODE="webhook_only",
            CACHE_ENABLED="true" if cache else "false",
            APP_HOST="127.0.0.1",
            APP_PORT=str(self.port),
            APP_WORKERS=str(workers),
            ACCESS_LOG="false",
        )
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        label = name or ("cache" if cache else "nocache")
        self.log_path = LOG_DIR / f"server-{label}.log"
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        if serve:
            cmd = [PY, "-m", "functions.local_app.serve", "--app", app]
        else:
            cmd = [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(workers), "--no-access-log", "--log-level", "warning"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{app} did not come up (log: {self.log.name})")
            time.sleep(0.25)
        # Every worker imports lazily on its first requests: warm them all before measuring.
        for _ in range(50 * workers):
            with contextlib.suppress(OSError), urllib.request.urlopen(self.base + NOOP_PATH, timeout=5):
                pass

    def cpu_seconds(self) -> float:
        """CPU used so far by the server's processes (supervisor, uvicorn and its workers)."""
        return process_tree_cpu(self.proc.pid)

    def wrk(self, path: str, script: str, args: list[str], **kwargs: Any) -> WrkResult:
        """run_wrk against this server, with its CPU, PostgreSQL's and Redis' per request."""
        cpu, pg, rd = self.cpu_seconds(), pg_backend_cpu(self.database_url), redis_server_cpu(self.redis_url)
        result = run_wrk(self.base + path, script, args, **kwargs)
        cpu = self.cpu_seconds() - cpu
        pg = pg_backend_cpu(self.database_url) - pg
        rd = redis_server_cpu(self.redis_url) - rd
        result.server_cpu_ms = 1000 * cpu / max(result.requests, 1)
        result.postgres_cpu_ms = 1000 * pg / max(result.requests, 1)
        result.redis_cpu_ms = 1000 * rd / max(result.requests, 1)
        return result

    def cache_fallbacks(self) -> int:
        """Redis calls that timed out (REDIS_TIMEOUT_SECONDS) and fell back to PostgreSQL, per the log.

        The cache logs at most one warning per 5 s, so this counts seconds with fallbacks."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().count(b"redis unavailable")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def seed_stock_keys(count: int, quantity: int) -> list[tuple[str, str]]:
    """`count` stock keys with `quantity` on hand each, applied through the ledger itself."""
    from common.domain.events import Origin, parse_event
    from common.ledger.use_cases import ingest

    work = generate(count, seed=7, duplicate_ratio=0.0, departure_ratio=0.0, warehouses=40, products=count)
    keys = sorted(work.stock)
    items = []
    for i, (w, p) in enumerate(keys):
        body = {
            "id": str(uuid.uuid4()),
            "source": "WH-SEED",
            "specversion": "1.0",
            "type": "ru.retail.warehouses.movement",
            "data": {
                "movement_id": str(uuid.uuid4()),
                "warehouse_id": w,
                "product_id": p,
                "event": "arrival",
                "quantity": quantity,
                "timestamp": f"2025-01-01T00:00:{i % 60:02d}Z",
            },
        }
        # A Kafka origin keeps the seed apart from the webhook's own events in the checks.
        items.append(parse_event(json.dumps(body), Origin.kafka("bench-seed", 0, i)))
    for start in range(0, len(items), 500):
        outcomes = ingest(items[start : start + 500])
        assert all(o.status == "applied" for o in outcomes), "seeding stock failed"
    return keys


def check_webhook(seeded: dict[tuple[str, str], int], result: WrkResult, nonce: str) -> tuple[int, list[str]]:
    """Exactly once: this run's 2xx events are each one log row, no more rows than requests were
    made, and every key's stock is its seed plus all the webhook events logged for it.

    The run's events are told apart by their movement ids, which start with its 8-hex-digit nonce.
    Returns the number of events this run applied, and the problems found. Also notes on `result`
    how many transactions applied them (distinct xmin of their log rows): group commit at work."""
    problems = []
    time.sleep(1.0)  # requests in flight when wrk stopped finish on the server
    with db() as conn:
        applied, distinct, transactions = conn.execute(
            "SELECT count(*), count(DISTINCT (movement_id, event)), count(DISTINCT xmin::text) "
            "FROM movement_events WHERE origin = 'webhook' AND movement_id::text LIKE %s",
            (f"{nonce}-%",),
        ).fetchone()
        result.events_per_transaction = applied / max(transactions, 1)
        rows = conn.execute(
            """
            SELECT s.warehouse_id::text, s.product_id::text, s.quantity,
                   coalesce(sum(CASE e.event WHEN 'arrival' THEN e.quantity ELSE -e.quantity END), 0)
            FROM stock s LEFT JOIN movement_events e
              ON e.warehouse_id = s.warehouse_id AND e.product_id = s.product_id AND e.origin = 'webhook'
            GROUP BY 1, 2, 3
            """
        ).fetchall()
        rejected = conn.execute("SELECT count(*) FROM rejected_events").fetchone()[0]
    if distinct != applied:
        problems.append(f"{applied - distinct} events logged more than once")
    if not result.ok2xx <= applied <= result.generated:
        problems.append(f"{applied} applied but {result.ok2xx} answered 2xx and {result.generated} generated")
    if result.non2xx or result.socket_errors:
        problems.append(f"{result.non2xx} non-2xx answers, {result.socket_errors} socket errors")
    if rejected:
        problems.append(f"{rejected} rejected events")
    wrong = sum(1 for w, p, q, delta in rows if q != seeded.get((w, p), 0) + delta)
    if wrong:
        problems.append(f"{wrong} stock rows differ from seed + logged events")
    return applied, problems


def warm_cache(base: str, keys: list[tuple[str, str]]) -> None:
    """Read every key once over one keep-alive connection, so the warm-cache run starts warm."""
    import http.client

    conn = http.client.HTTPConnection(urlsplit(base).hostname or "127.0.0.1", urlsplit(base).port, timeout=10)
    try:
        for w, p in keys:
            conn.request("GET", STOCK_PATH.format(w=w, p=p))
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"warming the cache: GET stock answered {answer.status}")
    finally:
        conn.close()


def single_connection(server: Server, path: str, script: str, args: list[str]) -> WrkResult:
    """One connection, keep-alive, 3 s: ~40 ms per request here would be Nagle's algorithm left on
    with several workers (uvicorn issue #3149)."""
    return server.wrk(path, script, args, connections=1, seconds=3, threads=1)


def _paths_file(name: str, paths: list[str]) -> str:
    path = OUT_DIR / f"paths-{name}.txt"
    path.write_text("\n".join(paths) + "\n")
    return str(path)


def _run_webhook(
    server: Server,
    cfg: Config,
    keys_file: Path,
    seeded: dict[tuple[str, str], int],
    nonce: str,
    **kwargs: Any,
) -> tuple[WrkResult, int]:
    """One webhook wrk run, then the exactly-once checks; (result, events this run applied)."""
    result = server.wrk(WEBHOOK_PATH, WEBHOOK_LUA, [str(keys_file), nonce], **kwargs)
    applied, problems = check_webhook(seeded, result, nonce)
    if problems:
        raise RuntimeError("webhook run left a wrong state: " + "; ".join(problems))
    return result, applied


def bench_http(cfg: Config, report: Report) -> None:
    """Rows 4 and 5, every server with the same worker count, its runs interleaved with the others'.

    Servers: this app as `make run` serves it (cache on, group commit), the same app with the
    webhook applying one transaction per event (the peer-like baseline), the app with the cache off,
    FastAPI's own no-op and a bare ASGI no-op (tools/bench/bench_asgi.py).
    """
    truncate()
    seed_quantity = 10_000_000
    keys = seed_stock_keys(1000, seed_quantity)
    seeded = dict.fromkeys(keys, seed_quantity)
    keys_file = OUT_DIR / "keys.txt"
    keys_file.write_text("".join(f"{w} {p}\n" for w, p in keys))
    stock_paths = _paths_file("stock", [STOCK_PATH.format(w=w, p=p) for w, p in keys])
    noop_paths = _paths_file("noop", [NOOP_PATH])
    secs, conns, workers = cfg.http_seconds, cfg.connections, cfg.http_workers
    runs: dict[str, list[WrkResult]] = {
        k: [] for k in ("webhook", "peer", "warm", "noop", "fastapi", "bare", "cold")
    }
    applied_total = 0
    nonces = iter(f"{cfg.nonce[:4]}{n:04x}" for n in range(1, 1 << 16))  # 8 hex digits: a run's ids
    with contextlib.ExitStack() as servers:
        app = servers.enter_context(Server(cfg, workers=workers, name="app"))
        peer = servers.enter_context(
            Server(cfg, workers=workers, app="tools.bench.peer_like:app", name="peer")
        )
        fastapi = servers.enter_context(
            Server(
                cfg, workers=workers, app="tools.bench.bench_asgi:fastapi_noop", serve=False, name="fastapi"
            )
        )
        bare = servers.enter_context(
            Server(cfg, workers=workers, app="tools.bench.bench_asgi:bare_noop", serve=False, name="bare")
        )
        warm_cache(app.base, keys)
        single = {
            "stock": single_connection(app, "/", STOCK_LUA, [stock_paths]),
            "noop": single_connection(app, "/", STOCK_LUA, [noop_paths]),
            "webhook": _run_webhook(
                app, cfg, keys_file, seeded, next(nonces), connections=1, seconds=3, threads=1
            )[0],  # fmt: skip
            "webhook_peer": _run_webhook(
                peer, cfg, keys_file, seeded, next(nonces), connections=1, seconds=3, threads=1
            )[0],  # fmt: skip
        }
        report.raw["single_connection"] = {k: asdict(v) for k, v in single.items()}
        log(
            "one connection, keep-alive, "
            + ", ".join(f"{k} p50 {v.p50_ms:.2f} ms" for k, v in single.items())
            + f" ({workers} worker(s))"
        )
        slow = {k: v.p50_ms for k, v in single.items() if k in ("stock", "noop") and v.p50_ms > 20}
        if slow:
            report.notes.append(
                f"one connection p50 above 20 ms {slow}: Nagle's algorithm left on (uvicorn #3149)?"
            )
        for run in range(cfg.runs):
            log(f"http run {run + 1}/{cfg.runs}")
            for name, server in (("webhook", app), ("peer", peer)):
                result, applied = _run_webhook(
                    server, cfg, keys_file, seeded, next(nonces), connections=conns, seconds=secs
                )
                runs[name].append(result)
                applied_total += applied
                log(f"  {name} {result.rps:,.0f}/s p99 {result.p99_ms:.1f} ms, {applied:,} applied, checked")
            # The webhook runs bumped the cache version of most keys: fill the cache again.
            warm_cache(app.base, keys)
            for name, server, paths in (
                ("warm", app, stock_paths),
                ("noop", app, noop_paths),
                ("fastapi", fastapi, noop_paths),
                ("bare", bare, noop_paths),
            ):
                runs[name].append(server.wrk("/", STOCK_LUA, [paths], connections=conns, seconds=secs))
                log(f"  {name} {runs[name][-1].rps:,.0f}/s p99 {runs[name][-1].p99_ms:.1f} ms")
        fallbacks = app.cache_fallbacks()
    with Server(cfg, workers=workers, cache=False) as server:
        for run in range(cfg.runs):
            runs["cold"].append(server.wrk("/", STOCK_LUA, [stock_paths], connections=conns, seconds=secs))
            last = runs["cold"][-1]
            log(f"  stock, cache off, run {run + 1}: {last.rps:,.0f}/s p99 {last.p99_ms:.1f} ms")
    for name, results in runs.items():
        report.raw[f"http_{name}"] = [asdict(r) for r in results]
        bad = [r for r in results if r.non2xx or r.socket_errors]
        if bad:
            raise RuntimeError(
                f"{name}: {bad[0].non2xx} non-2xx answers, {bad[0].socket_errors} socket errors"
            )
    _http_rows(cfg, report, runs, single, applied_total, fallbacks)


def _http_rows(
    cfg: Config,
    report: Report,
    runs: dict[str, list[WrkResult]],
    single: dict[str, WrkResult],
    applied_total: int,
    fallbacks: int,
) -> None:
    conns, workers = cfg.connections, cfg.http_workers

    def m(name: str, attr: str) -> float:
        return med([getattr(r, attr) for r in runs[name]])

    def latency(name: str) -> str:
        return f"{m(name, 'rps'):,.0f}/s; {m(name, 'p50_ms'):.1f} / {m(name, 'p99_ms'):.1f} ms"

    def cpu(name: str) -> str:
        return (
            f"CPU per request: server {1000 * m(name, 'server_cpu_ms'):.0f} us + PostgreSQL "
            f"{1000 * m(name, 'postgres_cpu_ms'):.0f} us + Redis {1000 * m(name, 'redis_cpu_ms'):.0f} us"
        )

    wh, peer = m("webhook", "rps"), m("peer", "rps")
    one, one_peer = single["webhook"].p50_ms, single["webhook_peer"].p50_ms
    report.add(
        Row(
            f"4. webhook, {conns} connections, {cfg.http_seconds:g} s, group commit: events/s, p50 / p99",
            latency("webhook") + f"; {wh / peer:.1f} x the one-transaction-per-event baseline",
            f">= {TARGETS['webhook_eps']:,}/s, p99 < {TARGETS['webhook_p99_ms']:g} ms, all 2xx, "
            "each logged once",
            verdict(wh >= TARGETS["webhook_eps"] and m("webhook", "p99_ms") < TARGETS["webhook_p99_ms"]),
            f"{spread([r.rps for r in runs['webhook']])}; all 2xx; DB: {applied_total:,} applied by rows "
            f"4 and 4b, each logged once, stock = seed + log for every key; "
            f"{m('webhook', 'events_per_transaction'):.1f} events per transaction; {cpu('webhook')}",
        )
    )
    report.add(
        Row(
            "4a. webhook, one connection: p50 / p99 (group commit vs one transaction per event)",
            f"{one:.2f} / {single['webhook'].p99_ms:.2f} ms vs "
            f"{one_peer:.2f} / {single['webhook_peer'].p99_ms:.2f} ms",
            "p50 <= baseline + 1 ms",
            verdict(one <= one_peer + 1.0),
            f"{single['webhook'].rps:,.0f} vs {single['webhook_peer'].rps:,.0f} requests/s on one connection",
        )
    )
    report.add(
        Row(
            "4b. baseline: webhook with one ledger transaction per event (the peer-like design)",
            latency("peer"),
            note=f"{spread([r.rps for r in runs['peer']])}; all 2xx, checked like row 4; {cpu('peer')}",
        )
    )
    warm, fastapi, bare, noop = m("warm", "rps"), m("fastapi", "rps"), m("bare", "rps"), m("noop", "rps")
    share = warm / fastapi
    report.add(
        Row(
            f"5a. GET stock, cache warm, 1,000 keys, {conns} connections, make run ({workers} workers)",
            latency("warm")
            + f"; {100 * share:.0f} % of FastAPI's no-op, {100 * warm / bare:.0f} % of bare ASGI",
            f">= {100 * TARGETS['stock_share']:.0f} % of FastAPI's no-op, "
            f"p99 < {TARGETS['stock_p99_ms']:g} ms",
            verdict(share >= TARGETS["stock_share"] and m("warm", "p99_ms") < TARGETS["stock_p99_ms"]),
            f"{spread([r.rps for r in runs['warm']])}; {cpu('warm')}; one connection p50 "
            f"{single['stock'].p50_ms:.2f} ms"
            + (f"; Redis timed out and PostgreSQL answered in {fallbacks} 5-s periods" if fallbacks else ""),
        )
    )
    report.add(
        Row(
            "5b. GET stock, cache off (CACHE_ENABLED=false)",
            latency("cold"),
            note=f"{spread([r.rps for r in runs['cold']])}; {cpu('cold')}",
        )
    )
    report.add(
        Row(
            "5c. same app and middleware, constant JSON from an async /bench/noop (through FastAPI)",
            latency("noop") + f"; row 5a is {100 * warm / noop:.0f} % of it",
            note=f"{spread([r.rps for r in runs['noop']])}; {cpu('noop')}; one connection p50 "
            f"{single['noop'].p50_ms:.2f} ms",
        )
    )
    report.add(
        Row(
            f"5d. ceiling: FastAPI's own async no-op route, {workers} uvicorn workers",
            latency("fastapi"),
            note=f"{spread([r.rps for r in runs['fastapi']])}; {cpu('fastapi')}",
        )
    )
    report.add(
        Row(
            f"5e. ceiling: a bare ASGI callable answering the constant, {workers} uvicorn workers",
            latency("bare") + f"; FastAPI's no-op is {100 * fastapi / bare:.0f} % of it",
            note=f"{spread([r.rps for r in runs['bare']])}; {cpu('bare')}",
        )
    )


# --- row 6: cold starts ---------------------------------------------------------------------------


def bench_cold(cfg: Config, report: Report) -> None:
    results = cold_start.measure_all(child_env(cfg, LOG_LEVEL="WARNING"), runs=cfg.runs)
    report.raw["cold_start"] = [[asdict(best), [asdict(s) for s in runs]] for best, runs in results]
    for best, _runs in results:
        name = best.module.removeprefix("functions.").removesuffix(".handler")
        if best.status.startswith(("failed", "no sample")):
            report.add(Row(f"6. cold start {name}", best.status))
            continue
        report.add(
            Row(
                f"6. cold start {name} ({best.event})",
                f"{best.total_ms:,.0f} ms",
                note=f"import {best.import_ms:,.0f} + first call {best.first_call_ms:,.0f} ms "
                f"(+ interpreter {best.interpreter_ms:,.0f} ms); answer {best.status}",
            )
        )


# --- the table ------------------------------------------------------------------------------------


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


ROWS: dict[str, Callable[[Config, Report], None]] = {
    "ingest": bench_ingest,
    "kafka": bench_kafka,
    "drain": bench_drain,
    "http": bench_http,
    "cold": bench_cold,
}


def parse_args(argv: list[str] | None) -> Config:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per row; the table shows their median (3)")
    p.add_argument("--only", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    p.add_argument("--events", type=int, default=100_000, help="rows 1-2: events per run (100,000)")
    p.add_argument("--batch", type=int, default=1000, help="rows 1-2: records per handler call (1,000)")
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
    p.add_argument("--producer", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.producer:
        sys.exit(producer_main(args.producer))
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(ROWS)
    if unknown:
        p.error(f"unknown rows: {', '.join(sorted(unknown))}")
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
    )
    for target in (cfg.database_url.replace("postgresql://", "//"), cfg.redis_url, *cfg.bootstrap.split(",")):
        _loopback(target if "//" in target else target.strip())
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    # In-process rows use the same configuration as the processes we start.
    os.environ.update(
        DATABASE_URL=cfg.database_url, REDIS_URL=cfg.redis_url, KAFKA_BOOTSTRAP_SERVERS=cfg.bootstrap
    )
    os.environ.pop("DB_SECRET_ARN", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    started = time.time()
    prepare_database(cfg.database_url)
    report = Report()
    report.raw["loadavg_start"] = os.getloadavg()
    failed = False
    for name, bench in ROWS.items():
        if name not in cfg.only:
            continue
        try:
            bench(cfg, report)
        except Exception as exc:  # one broken row must not hide the others
            failed = True
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            report.add(Row(f"{name}", f"FAILED: {type(exc).__name__}: {str(exc)[:200]}"))
    from common.adapters.db import close_pool

    close_pool()  # the seeding's pool, so its threads do not outlive the table
    table = render(report, cfg, started)
    out = OUT_DIR / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "config": {k: v for k, v in asdict(cfg).items() if k != "only"} | {"only": sorted(cfg.only)},
                "rows": [asdict(r) for r in report.rows],
                "raw": report.raw,
            },
            indent=1,
            default=str,
        )
    )
    print(table)
    print(f"\nraw results: {out.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
