"""Rows 3d and 3e: the drain of a Kafka backlog by `make run`, against the bare-SQL ceiling (row 2b).

`--drain-events` records produced to a fresh topic with the app stopped, then `make run` (the
supervisor, functions/local_app/serve.py, kafka mode, its default pollers) started; timed from the
app answering /health to the last record applied, so the producer is not the bound. Every run is
checked exactly against the database. Row 3e: the CPU per event of each process that took part
(every poller, PostgreSQL's backends, the broker, redis-server, the HTTP workers and supervisor).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field

from tools.bench import producer
from tools.bench.cpu import (
    broker_cpu,
    children_running,
    pg_backend_cpu,
    proc_cpu_seconds,
    process_tree_cpu,
    redis_server_cpu,
)
from tools.bench.harness import (
    LOG_DIR,
    PY,
    ROOT,
    Config,
    Report,
    Row,
    check_state,
    child_env,
    db,
    log,
    med,
    spread,
    truncate,
    verdict,
)
from tools.bench.rows.ingest import columns_ceiling
from tools.bench.workload import generate
from tools.procs import free_port, stop_all

TARGETS = {"drain_eps": 15_000, "drain_share": 0.65, "poller_cpu_us": 45.0}


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
    each_poller_cpu_us: list[float] = field(default_factory=list)
    broker_cpu_us: float = float("nan")
    redis_cpu_us: float = float("nan")


class Counters:
    """CPU seconds of every process of the drain, read at the start and at the end."""

    def __init__(self, cfg: Config, serve_pid: int, pollers: list[int]) -> None:
        self.cfg, self.serve_pid, self.pollers = cfg, serve_pid, pollers

    def read(self) -> dict[str, float]:
        found = {f"poller {i}": proc_cpu_seconds(pid) for i, pid in enumerate(self.pollers)}
        found["postgres"] = pg_backend_cpu(self.cfg.database_url)
        found["broker"] = broker_cpu(self.cfg.bootstrap)
        found["redis"] = redis_server_cpu(self.cfg.redis_url)
        found["tree"] = process_tree_cpu(self.serve_pid)
        return found


def _wait_healthy(serve: subprocess.Popen[bytes], port: int, log_name: str, deadline: float) -> None:
    while True:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2),
        ):
            return
        if serve.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"make run did not come up (log: {log_name})")
        time.sleep(0.05)


def kafka_drain(cfg: Config, events: int, partitions: int, timeout: float) -> DrainRun:
    """One run: produce everything with the app stopped, start `make run`, time the drain."""
    from kafka.admin import NewTopic

    topic = f"bench-drain-{cfg.nonce}-{uuid.uuid4().hex[:6]}"
    work = generate(events, seed=int(uuid.uuid4().hex[:8], 16))
    truncate()
    admin = producer.kafka_admin(cfg)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    spec = {"bootstrap": cfg.bootstrap, "topic": topic, "partitions": partitions, "keys": work.keys,
            "values": work.values}  # fmt: skip
    feeder, data = producer.start(cfg, spec, "bench-drain-")
    serve: subprocess.Popen[bytes] | None = None
    problems: list[str] = []
    port = free_port()
    log_file = open(LOG_DIR / "serve-drain.log", "ab")  # noqa: SIM115 - closed below
    try:
        assert feeder.stdout is not None and feeder.stdin is not None
        if feeder.stdout.readline().strip() != "ready":
            raise RuntimeError("the producer did not start")
        feeder.stdin.write("go\n")
        feeder.stdin.flush()
        first = float(feeder.stdout.readline().split()[1])
        done = feeder.stdout.readline().split()
        if not done or done[0] != "done":
            raise RuntimeError("the producer did not finish")
        produce_seconds = float(done[1]) - first
        feeder.wait(30)
        env = child_env(cfg, APP_MODE="kafka", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"bench-{topic}",
                        APP_HOST="127.0.0.1", APP_PORT=str(port), APP_WORKERS=str(cfg.http_workers),
                        ACCESS_LOG="false", LOG_LEVEL="WARNING")  # fmt: skip
        env.pop("KAFKA_POLLERS", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if cfg.whatif_apply_ahead:
            env["KAFKA_APPLY_AHEAD"] = "true"
        launched = time.monotonic()
        command = [PY, "-m", "functions.local_app.serve"]
        serve = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=log_file)
        _wait_healthy(serve, port, log_file.name, launched + 90)
        up = time.monotonic()
        counters = Counters(cfg, serve.pid, children_running(serve.pid, b"functions.local_app.poller"))
        with db() as conn:
            applied_before = producer.count_applied(conn, topic)
            start = counters.read()
            deadline = up + timeout
            applied = applied_before
            while True:
                applied = producer.count_applied(conn, topic)
                if applied >= work.applied:
                    applied = producer.exact_applied(conn, topic)
                    if applied >= work.applied:
                        break
                if time.monotonic() > deadline:
                    problems.append(
                        f"timed out after {timeout:.0f} s with {applied:,}/{work.applied:,} applied"
                    )
                    break
                time.sleep(0.05)
            finished = time.monotonic()
            end = counters.read()
    finally:
        stop_all(*(p for p in (feeder, serve) if p is not None))
        log_file.close()
        with contextlib.suppress(Exception):
            admin.delete_topics([topic])
        admin.close()
        producer.remove_stream(data)
    if not problems:
        problems = check_state(work)  # exactness: every run, before its number is used
    n = max(work.applied - applied_before, 1)
    used = {k: 1e6 * (end[k] - start[k]) / n for k in start}
    each_poller = [used[k] for k in sorted(used) if k.startswith("poller ")]
    return DrainRun(
        events=events,
        partitions=partitions,
        pollers=len(each_poller),
        produce_seconds=produce_seconds,
        startup_seconds=up - launched,
        seconds=finished - up,
        eps=(applied - applied_before) / (finished - up),
        applied_before_up=applied_before,
        poller_cpu_us=sum(each_poller),
        postgres_cpu_us=used["postgres"],
        workers_cpu_us=used["tree"] - sum(each_poller),
        problems=problems,
        each_poller_cpu_us=each_poller,
        broker_cpu_us=used["broker"],
        redis_cpu_us=used["redis"],
    )


def run(cfg: Config, report: Report) -> None:
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
            f"PostgreSQL {result.postgres_cpu_us:.0f} us; state checked"
        )
        runs.append(result)
    report.raw["drain"] = [asdict(r) for r in runs]
    ceiling = med(columns_ceiling(cfg, report))
    eps = med([r.eps for r in runs])
    share = eps / ceiling
    report.add(
        Row(
            f"3d. Kafka drain, {cfg.drain_events:,} records pre-produced to {cfg.drain_partitions} "
            f"partitions, make run ({runs[0].pollers} pollers, {cfg.http_workers} workers); / row 2b"
            + (" (what-if: pollers applying ahead)" if cfg.whatif_apply_ahead else ""),
            f"{eps:,.0f} events/s; {100 * share:.0f} % of bare SQL ({ceiling:,.0f}/s)",
            f">= {TARGETS['drain_eps']:,} events/s, >= {100 * TARGETS['drain_share']:.0f} % of row 2b",
            verdict(eps >= TARGETS["drain_eps"] and share >= TARGETS["drain_share"]),
            f"{spread([r.eps for r in runs])}; from the app up (after "
            f"{med([r.startup_seconds for r in runs]):.1f} s) to the last applied; every run's "
            "event log, movements and stock checked exactly against the stream",
        )
    )
    poller = med([r.poller_cpu_us for r in runs])
    each = " + ".join(
        f"{med([r.each_poller_cpu_us[i] for r in runs if len(r.each_poller_cpu_us) > i]):.0f}"
        for i in range(runs[0].pollers)
    )
    report.add(
        Row(
            "3e. Kafka drain: CPU per event per process (us)",
            f"pollers {poller:.0f} ({each}); PostgreSQL {med([r.postgres_cpu_us for r in runs]):.0f}; "
            f"broker {med([r.broker_cpu_us for r in runs]):.0f}; "
            f"Redis {med([r.redis_cpu_us for r in runs]):.0f}",
            f"pollers <= {TARGETS['poller_cpu_us']:g} us",
            verdict(poller <= TARGETS["poller_cpu_us"]),
            f"pollers {spread([r.poller_cpu_us for r in runs])}; PostgreSQL "
            f"{spread([r.postgres_cpu_us for r in runs])}; app workers and supervisor (idle here) "
            f"{med([r.workers_cpu_us for r in runs]):.0f} us",
        )
    )
