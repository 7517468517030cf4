"""Helpers for the HTTP tests: event envelopes, app processes, private redis-servers, free ports.

REDIS_URL is captured when this module is first imported (by tests/e2e/conftest.py, before any
other suite's conftest may repoint the environment), so every HTTP test uses the same Redis.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tools.procs import free_port as free_port  # re-exported: the e2e tests take it from here

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
WEBHOOK = "/api/v1/kafka/webhook"
EVENT_TYPE = "ru.retail.warehouses.movement"


def new_id() -> str:
    return str(uuid.uuid4())


def envelope(
    event: str,
    *,
    movement_id: str,
    warehouse_id: str,
    product_id: str,
    quantity: int,
    timestamp: str = "2025-02-18T12:12:56Z",
    **extra: Any,
) -> dict[str, Any]:
    """A valid envelope around one half of a movement, shaped like the brief's example."""
    return {
        "id": new_id(),
        "source": "WH-3322",
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "datacontenttype": "application/json",
        "dataschema": "ru.retail.warehouses.movement.v1.0",
        "time": 1737439421623,
        "subject": f"WH-3322:{event.upper()}",
        "destination": "ru.retail.warehouses",
        "data": {
            "movement_id": movement_id,
            "warehouse_id": warehouse_id,
            "timestamp": timestamp,
            "event": event,
            "product_id": product_id,
            "quantity": quantity,
        },
        **extra,
    }


def body(env: dict[str, Any]) -> bytes:
    return json.dumps(env).encode()


def rejected_cursor_before(rejected_event_id: int) -> str:
    """A cursor that starts the dead-letter list at `rejected_event_id` (white-box: keeps checks on
    a test's own rows bounded however large the shared test database grows)."""
    from common.adapters.cursor import encode_cursor

    return encode_cursor("rejected", rejected_event_id - 1)


@dataclass
class AppProcess:
    """A uvicorn running functions.local_app.main:app, owned (and stopped) by the test."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_app(env: dict[str, str], log_path: Path, *, extra_args: tuple[str, ...] = ()) -> AppProcess:
    """Start the local app on a free port with `env` over os.environ; wait until /health answers."""
    port = free_port()
    full_env = {
        **os.environ,
        "APP_MODE": "webhook_only",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "functions.local_app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *extra_args,
        ],  # fmt: skip
        cwd=PROJECT_ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    app = AppProcess(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{app.log()}")
        try:
            if httpx.get(f"{app.url}/health", timeout=1).status_code == 200:
                return app
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    app.stop()
    raise RuntimeError(f"the app did not answer /health within 30 s:\n{app.log()}")


@dataclass
class RedisProcess:
    """A private redis-server (no persistence) that a test may stop to simulate an outage."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def start_redis() -> RedisProcess:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return RedisProcess(port, process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")
