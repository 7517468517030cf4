"""`make loadtest`: Kafka ingestion at a steady rate and HTTP reads at the same time, for a bounded time.

What runs (all on 127.0.0.1, the benchmark's own database, a fresh topic):

* the standalone poller (`python -m functions.local_app.poller`), as the local stand-in for the
  Kafka event source mapping;
* a producer subprocess sending a realistic stream (tools/bench/workload.py) at `--rate` events/s;
* the local app under uvicorn (webhook mode, no poller of its own) answering GET stock for the
  very keys the stream is changing, so every read races the cache invalidation of a write;
* wrk as the reader: back-to-back one-second runs at `--read-connections`, each giving that
  second's throughput and p50/p99 (wrk reports latency only per run, hence one run per second).

Sampled every second: events applied/s (count in the database), reads/s, read p50/p99, the
poller's RSS. At the end the producer's stream is drained (bounded) and the database is checked
against the stream's known end state. Output: a two-panel PNG and a CSV in .stack/loadtest/.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tools.bench import harness
from tools.bench.cpu import rss_kb
from tools.bench.producer import count_applied, exact_applied, kafka_admin, remove_stream
from tools.bench.producer import start as start_producer
from tools.bench.run import parse_args as bench_config
from tools.bench.servers import STOCK_PATH, Server
from tools.bench.workload import Workload, generate
from tools.bench.wrk import STOCK_LUA, WrkResult, paths_file, run_wrk
from tools.procs import stop_all

ROOT = harness.ROOT
OUT_DIR = ROOT / ".stack" / "loadtest"


@dataclass
class Sample:
    t: float  # seconds since the producer's first event
    produced: int
    applied: int
    applied_per_s: float
    reads_per_s: float
    read_p50_ms: float
    read_p99_ms: float
    read_errors: int
    poller_rss_mb: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60, help="seconds of load (60)")
    p.add_argument("--rate", type=int, default=1000, help="events/s the producer sends (1,000)")
    p.add_argument("--read-connections", type=int, default=16, help="wrk connections for reads (16)")
    p.add_argument("--http-workers", type=int, default=1, help="uvicorn workers (1)")
    p.add_argument("--drain", type=float, default=60, help="at most this long to apply the backlog (60)")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    return p.parse_args(argv)


def reader_loop(
    base: str,
    reads_file: str,
    connections: int,
    stop: threading.Event,
    out: list[tuple[float, float, WrkResult]],
) -> None:
    """Back-to-back one-second wrk runs until `stop`, each kept with its (start, end) wall time."""
    while not stop.is_set():
        started = time.time()
        try:
            result = run_wrk(base + "/", STOCK_LUA, [reads_file], connections=connections, seconds=1)
        except RuntimeError as exc:
            harness.log(f"reader: {exc}")
            time.sleep(0.5)
            continue
        out.append((started, time.time(), result))


def window_at(reads: list[tuple[float, float, WrkResult]], moment: float) -> WrkResult | None:
    """The read window covering `moment` (None in the few ms between two wrk runs)."""
    return next((r for start, end, r in reversed(reads) if start <= moment <= end), None)


def plot(
    samples: list[Sample], windows: list[tuple[float, WrkResult]], rate: float, path: Path, title: str
) -> None:
    """Top: events applied/s and reads/s; bottom: read p50/p99. Reads at each wrk window's midpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, constrained_layout=True)
    top.plot(
        t, [s.applied_per_s for s in samples], label="events applied/s (Kafka -> poller -> DB rows)", lw=1.6
    )
    wt = [m for m, _ in windows]
    top.plot(wt, [r.rps for _, r in windows], label="GET stock/s (wrk)", lw=1.6)
    top.axhline(rate, color="grey", lw=0.8, ls="--", label=f"producer rate less redeliveries ({rate:,.0f}/s)")
    top.set_ylabel("per second")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    top.legend(loc="lower right")
    top.set_title(title, fontsize=10)
    bottom.plot(wt, [r.p50_ms for _, r in windows], label="read p50", lw=1.6)
    bottom.plot(wt, [r.p99_ms for _, r in windows], label="read p99", lw=1.6)
    bottom.set_ylabel("GET stock latency (ms)")
    bottom.set_xlabel("seconds since the first event was produced")
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper right")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.OUT_DIR.mkdir(parents=True, exist_ok=True)
    harness.LOG_DIR.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = bench_config(["--runs", "1", "--http-workers", str(args.http_workers)])
    os.environ.update(
        DATABASE_URL=cfg.database_url, REDIS_URL=cfg.redis_url, KAFKA_BOOTSTRAP_SERVERS=cfg.bootstrap
    )
    os.environ.pop("DB_SECRET_ARN", None)
    harness.prepare_database(cfg.database_url)
    harness.truncate()

    from kafka.admin import NewTopic

    total = int(args.rate * args.duration)
    harness.log(
        f"loadtest: {args.duration:g} s, {args.rate:,} events/s through Kafka ({total:,} events), "
        f"GET stock with {args.read_connections} connections"
    )
    work = generate(total, seed=int(uuid.uuid4().hex[:8], 16))
    warm = generate(1, seed=1)
    topic = f"loadtest-{cfg.nonce}"
    admin = kafka_admin(cfg)
    admin.create_topics([NewTopic(topic, 3, 1)])
    spec = {
        "bootstrap": cfg.bootstrap,
        "topic": topic,
        "partitions": 3,
        "keys": work.keys,
        "values": work.values,
        "warmup": list(zip(warm.keys, warm.values, strict=True)),
        "rate": args.rate,
    }
    reads_file = paths_file("loadtest", [STOCK_PATH.format(w=w, p=p) for w, p in sorted(work.stock)])
    poller_log = open(harness.LOG_DIR / "poller-loadtest.log", "ab")  # noqa: SIM115 - closed below
    env = harness.child_env(cfg, KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"loadtest-{topic}", LOG_LEVEL="INFO")
    poller = subprocess.Popen(
        [harness.PY, "-m", "functions.local_app.poller"],
        cwd=ROOT,
        env=env,
        stdout=poller_log,
        stderr=poller_log,
    )
    producer, data = start_producer(cfg, spec, "loadtest-")
    server = Server(cfg, workers=args.http_workers, cache=True)
    stop_reads = threading.Event()
    reads: list[tuple[float, float, WrkResult]] = []
    samples: list[Sample] = []
    reader = threading.Thread(
        target=reader_loop,
        args=(server.base, reads_file, args.read_connections, stop_reads, reads),
        daemon=True,
    )
    problems: list[str] = []
    try:
        assert producer.stdout is not None and producer.stdin is not None
        if producer.stdout.readline().strip() != "ready":
            raise RuntimeError("the producer did not start")
        with harness.db() as conn:
            deadline = time.monotonic() + 60
            while count_applied(conn, topic) < 1:
                if poller.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the poller did not apply the warm-up event (log: {poller_log.name})")
                time.sleep(0.1)
            reader.start()
            time.sleep(1.0)  # the first read second is in flight when the producer starts
            producer.stdin.write("go\n")
            producer.stdin.flush()
            first = float(producer.stdout.readline().split()[1])
            expected = work.applied + warm.applied
            last_applied, last_t = count_applied(conn, topic), first
            end_load = first + args.duration
            end_drain = end_load + args.drain
            next_tick = first + 1
            while True:
                time.sleep(max(0.0, next_tick - time.time()))
                next_tick += 1
                now = time.time()
                applied = count_applied(conn, topic)
                if applied >= expected:
                    applied = exact_applied(conn, topic)
                samples.append(
                    Sample(
                        t=round(now - first, 2),
                        produced=min(total, int((now - first) * args.rate)),
                        applied=applied - warm.applied,
                        applied_per_s=(applied - last_applied) / (now - last_t),
                        reads_per_s=float("nan"),  # filled in below, once every wrk window is in
                        read_p50_ms=float("nan"),
                        read_p99_ms=float("nan"),
                        read_errors=0,
                        poller_rss_mb=rss_kb(poller.pid)[0] / 1024,
                    )
                )
                last_applied, last_t = applied, now
                if now >= end_load and not stop_reads.is_set():
                    stop_reads.set()
                    harness.log(
                        f"load phase over: {applied - warm.applied:,}/{work.applied:,} applied; draining"
                    )
                if applied >= expected and now >= end_load:
                    break
                if now >= end_drain:
                    problems.append(f"backlog not drained within {args.drain:g} s: {applied:,}/{expected:,}")
                    break
                if poller.poll() is not None:
                    raise RuntimeError(f"the poller exited (log: {poller_log.name})")
    finally:
        stop_reads.set()
        reader.join(10)
        server.stop()
        stop_all(producer, poller)
        poller_log.close()
        with contextlib.suppress(Exception):
            admin.delete_topics([topic])
        admin.close()
        remove_stream(data)

    # Each second's reads come from the wrk window covering its middle. Matched now, not while
    # sampling: the one-second wrk runs and the one-second ticks keep their phase, so the window
    # covering a tick's second was, run after run, still going when the tick came.
    for sample in samples:
        moment = first + sample.t - 0.5
        window = window_at(reads, moment) if moment < end_load else None
        if window is not None:
            sample.reads_per_s, sample.read_p50_ms = window.rps, window.p50_ms
            sample.read_p99_ms, sample.read_errors = window.p99_ms, window.non2xx + window.socket_errors

    if not problems:
        combined = Workload(
            values=work.values + warm.values,
            kinds=work.kinds + warm.kinds,
            stock={**work.stock, **warm.stock},
            movements=work.movements | warm.movements,
        )
        problems = harness.check_state(combined)
    load = [s for s in samples if s.t <= args.duration]
    read_errors = sum(r.non2xx + r.socket_errors for _, _, r in reads)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    png, csv_path = args.out / f"loadtest-{stamp}.png", args.out / f"loadtest-{stamp}.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(Sample.__dataclass_fields__)
        writer.writerows([list(vars(s).values()) for s in samples])

    def med(values: list[float]) -> float:
        clean = [v for v in values if v == v]  # drop NaN
        return harness.med(clean) if clean else float("nan")

    applied_rate = med([s.applied_per_s for s in load[2:]])
    reads_rate = med([s.reads_per_s for s in load if s.reads_per_s])
    p50 = med([s.read_p50_ms for s in load])
    p99 = med([s.read_p99_ms for s in load])
    worst_p99 = max((s.read_p99_ms for s in load if s.read_p99_ms == s.read_p99_ms), default=float("nan"))
    rss = [s.poller_rss_mb for s in samples if s.poller_rss_mb]
    drained_at = next((s.t for s in samples if s.applied >= work.applied), None)
    title = (
        f"make loadtest: {args.rate:,} events/s via Kafka for {args.duration:g} s + GET stock, "
        f"{args.read_connections} connections ({os.cpu_count()} cores, {time.strftime('%Y-%m-%d')})"
    )
    windows = [((start + end) / 2 - first, r) for start, end, r in reads]
    # A redelivered event is no new row: the line to compare with is the rate of events that are.
    plot(samples, windows, args.rate * work.applied / max(total, 1), png, title)
    summary = [
        f"loadtest {args.duration:g} s: producer {args.rate:,} events/s ({total:,} events), "
        f"reads at {args.read_connections} connections, {args.http_workers} uvicorn worker(s)",
        f"  applied:   median {applied_rate:,.0f} events/s during the load ({work.duplicates:,} of the "
        f"{total:,} are redeliveries, applied as duplicates: no row); all {work.applied:,} applied "
        + (f"{drained_at:.0f} s after the first was produced" if drained_at is not None else "NOT drained"),
        f"  reads:     median {reads_rate:,.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms (median of the seconds;"
        f" worst second p99 {worst_p99:.1f} ms), {read_errors} errors",
        f"  poller:    RSS {min(rss, default=0):.0f} -> {max(rss, default=0):.0f} MB",
        f"  state:     {'; '.join(problems) if problems else 'checked: event log, movements, stock per key'}",
        f"chart: {png}",
        f"data:  {csv_path}",
    ]
    print("\n".join(summary))
    return 1 if problems or read_errors else 0


if __name__ == "__main__":
    sys.exit(main())
