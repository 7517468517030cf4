"""Row 3 (and 3s with --soak): Kafka end to end through one standalone poller.

`--kafka-events` events produced to a fresh 3-partition topic while `python -m
functions.local_app.poller` runs as a subprocess; from the first event produced to the last one
in the database (progress polled every 0.1 s, the end confirmed by an exact count), the poller's
peak RSS from /proc. `--soak`: `--soak-events`, and the RSS growth from the first tenth on.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from tools.bench import producer
from tools.bench.cpu import pg_backend_cpu, proc_cpu_seconds, rss_kb
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
from tools.bench.workload import Workload, generate
from tools.procs import stop_all

TARGETS = {"kafka_eps": 15_000, "soak_growth_mb": 50}


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
    admin = producer.kafka_admin(cfg)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    spec = {"bootstrap": cfg.bootstrap, "topic": topic, "partitions": partitions, "keys": work.keys,
            "values": work.values, "warmup": list(zip(warm.keys, warm.values, strict=True))}  # fmt: skip
    env = child_env(cfg, KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"bench-{topic}", LOG_LEVEL="INFO")
    if cfg.poller_crc32c:  # what-if: the poller with the crc32c wheel importable (see --poller-crc32c)
        env["PYTHONPATH"] = producer.producer_env(cfg)["PYTHONPATH"]
    if cfg.whatif_apply_ahead:  # what-if: batch N+1 decoded while batch N commits
        env["KAFKA_APPLY_AHEAD"] = "true"
    poller_log = open(LOG_DIR / f"poller-{label}.log", "ab")  # noqa: SIM115 - closed below
    poller = subprocess.Popen(
        [PY, "-m", "functions.local_app.poller"], cwd=ROOT, env=env, stdout=poller_log, stderr=poller_log
    )
    feeder, data = producer.start(cfg, spec, "bench-kafka-")
    samples: list[tuple[float, int, float]] = []
    problems: list[str] = []
    expected = work.applied + warm.applied
    try:
        assert feeder.stdout is not None and feeder.stdin is not None
        if feeder.stdout.readline().strip() != "ready":
            raise RuntimeError("the producer did not start (see above)")
        deadline = time.monotonic() + 60
        with db() as conn:
            while producer.count_applied(conn, topic) < warm.applied:
                if poller.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the poller did not apply the warm-up event: "
                        f"{producer.last_warning(poller_log.name)} (log: {poller_log.name})"
                    )
                time.sleep(0.1)
            rss_warm = rss_kb(poller.pid)[0] / 1024
            cpu_start = proc_cpu_seconds(poller.pid), pg_backend_cpu(cfg.database_url)
            feeder.stdin.write("go\n")
            feeder.stdin.flush()
            first = float(feeder.stdout.readline().split()[1])
            produced_at: list[float] = []

            def wait_producer() -> None:
                line = feeder.stdout.readline() if feeder.stdout else ""
                if line.startswith("done"):
                    produced_at.append(float(line.split()[1]))

            waiter = threading.Thread(target=wait_producer, daemon=True)
            waiter.start()
            deadline = time.monotonic() + timeout
            applied = 0
            last_sample = 0.0
            while True:
                applied = producer.count_applied(conn, topic)
                if applied >= expected:
                    applied = producer.exact_applied(conn, topic)
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
                proc_cpu_seconds(poller.pid) - cpu_start[0],
                pg_backend_cpu(cfg.database_url) - cpu_start[1],
            )
        waiter.join(10)
    finally:
        stop_all(feeder, poller)
        poller_log.close()
        with contextlib.suppress(Exception):
            admin.delete_topics([topic])
        admin.close()
        producer.remove_stream(data)
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
    n = max(applied - warm.applied, 1)
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
        poller_cpu_us=1e6 * cpu_used[0] / n,
        postgres_cpu_us=1e6 * cpu_used[1] / n,
    )


def run(cfg: Config, report: Report) -> None:
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
            f"{med([r.postgres_cpu_us for r in runs]):.0f} us; state checked",
        )
    )
    if cfg.soak:
        soak(cfg, report)


def soak(cfg: Config, report: Report) -> None:
    log(f"kafka soak: {cfg.soak_events:,} events")
    result = kafka_e2e(cfg, cfg.soak_events, label="soak", timeout=max(600.0, cfg.soak_events / 300))
    report.raw["soak"] = asdict(result)
    # Growth is taken from the first tenth of the stream on: by then pools, caches and the
    # consumer's buffers have reached their working size; the warm-up figure is shown too.
    steady = next((rss for _, applied, rss in result.rss_samples if applied >= result.events // 10), None)
    base = steady if steady is not None else result.rss_after_warmup_mb
    growth = result.rss_end_mb - base
    report.add(
        Row(
            f"3s. soak, {cfg.soak_events:,} events: poller RSS at 10 % -> end",
            f"{base:.0f} -> {result.rss_end_mb:.0f} MB ({growth:+.0f}); {result.eps:,.0f} events/s",
            f"growth < {TARGETS['soak_growth_mb']} MB",
            verdict(growth < TARGETS["soak_growth_mb"] and not result.problems),
            f"RSS after the first event {result.rss_after_warmup_mb:.0f} MB, "
            f"peak {result.peak_rss_mb:.0f} MB; " + ("; ".join(result.problems) or "state checked"),
        )
    )
