"""Child processes for every tool (the fault suite, the benchmarks) and the tests that start them.

Free ports, starting the app or a poller in its own session, stopping processes. Every process
started with `start` is remembered and killed at interpreter exit (atexit), so a failed or
interrupted run never leaves an app or a poller behind on the machine. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

_children: list[subprocess.Popen[bytes]] = []


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on, below the kernel's ephemeral range.

    A port the kernel hands out for bind(0) is an ephemeral one: any client connection may take it
    before our server binds it, and polling it with connect() can even connect a socket to itself.
    So pick at random among the ports under that range, keeping those that can be bound now.
    """
    low, _ = _ephemeral_range()
    candidates = list(range(20_000, max(20_001, low)))
    random.SystemRandom().shuffle(candidates)
    chosen: list[int] = []
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"no {count} free ports between 20000 and {low}")


def free_port() -> int:
    return free_ports(1)[0]


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        socket.create_connection((host, port), timeout).close()
        return True
    except OSError:
        return False


def start(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Run `argv` from the repository root, stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its whole life
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a signal to our group (Ctrl-C) does not reach it twice
        )
    finally:
        log.close()
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes] | None, *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Signal `proc`, wait up to `timeout`, then SIGKILL it. Never raises."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
    if proc in _children:
        _children.remove(proc)


def stop_all(*processes: subprocess.Popen[Any]) -> None:
    """SIGTERM every process still running, then wait; kill what does not stop within 20 s.

    All are signalled before any is waited for, so they shut down side by side."""
    for proc in processes:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    for proc in processes:
        stop(proc, timeout=20)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL, no chance to commit or leave the consumer group: the crash the suite simulates."""
    stop(proc, sig=signal.SIGKILL, timeout=10)


@atexit.register
def _reap_children() -> None:
    for proc in list(_children):
        stop(proc, timeout=5)


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]


def start_app(env: Mapping[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """The local app under uvicorn on 127.0.0.1:`port` (its mode comes from APP_MODE in `env`)."""
    argv = python_argv("-m", "uvicorn", "functions.local_app.main:app", "--host", HOST, "--port", str(port))
    return start(argv, env, log_path)


def start_poller(env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """The standalone Kafka poller (`python -m functions.local_app.poller`)."""
    return start(python_argv("-m", "functions.local_app.poller"), env, log_path)


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0) -> None:
    """Until GET /health answers 200; fails early with the log tail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the app did not answer /health within {timeout:.0f}s:\n{tail(log_path)}")


def tail(log_path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def base_env(**overrides: str) -> dict[str, str]:
    """This process's environment without AWS/Powertools surprises, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DB_SECRET"))}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    env.update(overrides)
    return env
