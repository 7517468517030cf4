"""The load generator of the Kafka rows: a producer subprocess, and how the rows watch progress.

    python -m tools.bench.producer STREAM.pickle     (started by `start`, never by hand)

Line protocol on stdout: `ready` once connected (and the warm-up records sent), then, after `go`
on stdin, `first <epoch>` at the first send and `done <epoch> <count>` after the final flush.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.bench.harness import OUT_DIR, PY, ROOT, Config, child_env
from tools.bench.workload import partition_of


def kafka_admin(cfg: Config) -> Any:
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=cfg.bootstrap, client_id="bench-admin", request_timeout_ms=15000
    )


def producer_env(cfg: Config) -> dict[str, str]:
    """kafka-python computes CRC-32C in pure Python unless the `crc32c` package is importable;
    bench.sh puts one in .stack/bench/pylib so the load generator is not the bottleneck."""
    env = child_env(cfg)
    pylib = Path(os.environ.get("BENCH_PYLIB") or OUT_DIR / "pylib")
    if pylib.is_dir():
        env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{pylib}"
    return env


def start(cfg: Config, spec: dict[str, Any], prefix: str) -> tuple[subprocess.Popen[str], Path]:
    """The producer subprocess for `spec` (bootstrap, topic, partitions, keys, values, warmup,
    rate); returns it and the stream file, which the caller removes with `remove_stream`."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=OUT_DIR))
    data = tmp / "stream.pickle"
    data.write_bytes(pickle.dumps(spec))
    proc = subprocess.Popen(
        [PY, "-m", "tools.bench.producer", str(data)],
        cwd=ROOT,
        env=producer_env(cfg),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, data


def remove_stream(data: Path) -> None:
    data.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        data.parent.rmdir()


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


def last_warning(log_path: str) -> str:
    """The poller log's last WARNING line, to say why a run failed."""
    lines = [ln for ln in Path(log_path).read_text(errors="replace").splitlines() if " WARNING " in ln]
    return lines[-1].split(" WARNING ", 1)[1][:300] if lines else "no warning in its log"


def main(data_path: str) -> int:
    """Read the stream, say ready, wait for 'go', produce it all, report."""
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
