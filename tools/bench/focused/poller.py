"""The poller's own CPU per event on a pre-produced backlog, in this process: for profiling it.

    .venv/bin/python -m tools.bench.focused.poller [--events 60000] [--partitions 2] [--runs 1]
        [--cprofile OUT.prof]

Row 3d times the whole `make run`; this runs one `Poller` (what `python -m functions.local_app.poller`
runs, the same start-up, `gc.freeze()` included) in this process on a fresh topic, so a profiler
started with it sees nothing else: `uvx py-spy record -o out.svg -- .venv/bin/python -m
tools.bench.focused.poller`, or `--cprofile` (the loop's thread only). Prints per run the events/s,
this process's CPU per event (every thread: the client's I/O thread too) and PostgreSQL's; every
run is checked exactly against the stream. Uses the benchmark's database (`bench`, see
tools.bench.harness), which it empties. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import resource
import sys
import threading
import time
import uuid

from tools.bench import producer
from tools.bench.cpu import pg_backend_cpu
from tools.bench.harness import check_state, truncate
from tools.bench.run import parse_args, setup
from tools.bench.workload import generate


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_run(
    events: int, partitions: int, profile: cProfile.Profile | None, *, freeze: bool = True
) -> dict[str, float]:
    from kafka.admin import NewTopic

    from common.adapters.config import get_settings

    cfg = parse_args(["--runs", "1"])
    setup(cfg)
    topic = f"focused-poller-{uuid.uuid4().hex[:8]}"
    work = generate(events, seed=int(uuid.uuid4().hex[:8], 16))
    truncate()
    admin = producer.kafka_admin(cfg)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    spec = {"bootstrap": cfg.bootstrap, "topic": topic, "partitions": partitions, "keys": work.keys,
            "values": work.values}  # fmt: skip
    feeder, data = producer.start(cfg, spec, "focused-poller-")
    try:
        assert feeder.stdout is not None and feeder.stdin is not None
        if feeder.stdout.readline().strip() != "ready":
            raise RuntimeError("the producer did not start")
        feeder.stdin.write("go\n")
        feeder.stdin.flush()
        feeder.stdout.readline()
        if not feeder.stdout.readline().startswith("done"):
            raise RuntimeError("the producer did not finish")
        feeder.wait(30)
        os.environ.update(KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"focused-{topic}")
        get_settings.cache_clear()
        from functions.local_app.poller import __main__ as poller_main
        from functions.local_app.poller.loop import Poller

        # The code before `prepare` had none; --no-gc-freeze: the Poller alone (an A/B of the freeze).
        prepare = getattr(poller_main, "prepare", Poller) if freeze else Poller
        poller = prepare(get_settings())
        timing: dict[str, float] = {}

        def watch() -> None:
            while poller.records == 0 and not poller.stopped.is_set():
                time.sleep(0.02)
            timing["start"], timing["cpu0"] = time.perf_counter(), _cpu()
            timing["before"] = poller.records
            timing["pg0"] = pg_backend_cpu(cfg.database_url)
            while poller.records < events and not poller.stopped.is_set():
                time.sleep(0.02)
            timing["end"], timing["cpu1"] = time.perf_counter(), _cpu()
            timing["pg1"] = pg_backend_cpu(cfg.database_url)
            timing["done"] = poller.records
            poller.request_stop()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        if profile is not None:
            profile.enable()
        poller.run()
        if profile is not None:
            profile.disable()
        watcher.join(10)
    finally:
        producer.remove_stream(data)
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()
    problems = check_state(work)
    if problems:
        raise RuntimeError("; ".join(problems))
    # The window opens once the first batch is in (the group joined): the records after it.
    measured = max(timing["done"] - timing["before"], 1)
    return {
        "eps": measured / (timing["end"] - timing["start"]),
        "cpu_us": 1e6 * (timing["cpu1"] - timing["cpu0"]) / measured,
        "pg_us": 1e6 * (timing["pg1"] - timing["pg0"]) / measured,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--cprofile", help="write the loop thread's cProfile stats here")
    parser.add_argument("--no-gc-freeze", action="store_true", help="build the Poller without `prepare`")
    args = parser.parse_args(argv)
    missing = [v for v in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS") if not os.environ.get(v)]
    if missing:  # no silent default: the services on the default ports may be someone else's
        parser.error(f"set {' and '.join(missing)} (the stack to measure)")
    profile = cProfile.Profile() if args.cprofile else None
    for run in range(args.runs):
        result = one_run(args.events, args.partitions, profile, freeze=not args.no_gc_freeze)
        print(
            f"run {run + 1}: {result['eps']:,.0f} events/s; CPU per event: this process "
            f"{result['cpu_us']:.1f} us, PostgreSQL {result['pg_us']:.1f} us; state checked",
            flush=True,
        )
    if profile is not None:
        profile.dump_stats(args.cprofile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
