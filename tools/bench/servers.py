"""The HTTP rows' servers: the app as `make run` serves it, and the same-run ceilings beside it.

Every server runs on 127.0.0.1 with the same worker count, its CPU read from /proc around each wrk
run, and is stopped at the end of its `with` block.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlsplit

from tools.bench.cpu import pg_backend_cpu, process_tree_cpu, redis_server_cpu
from tools.bench.harness import LOG_DIR, PY, ROOT, Config, child_env
from tools.bench.workload import generate
from tools.bench.wrk import WrkResult, run_wrk
from tools.procs import free_port

STOCK_PATH = "/api/v1/warehouse/{w}/products/{p}"
WEBHOOK_PATH = "/api/v1/kafka/webhook"
NOOP_PATH = "/bench/noop"


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
