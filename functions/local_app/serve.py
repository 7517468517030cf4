"""`make run`: the local app on every core, the Kafka pollers as processes of their own, once.

    python -m functions.local_app.serve             this supervisor: starts, watches, stops the rest
    ├── uvicorn functions.local_app.main:app        APP_WORKERS worker processes (default: one per core)
    └── python -m functions.local_app.poller  x N   APP_MODE=kafka only: N = KAFKA_POLLERS, default one
                                                    per partition of KAFKA_TOPIC, at most one per core

One Python process is one core at most (the GIL), so the HTTP workers and the pollers are
processes. The workers run with KAFKA_POLLERS=0 (no poller thread each: the pollers run once, here,
not once per worker); the pollers share the consumer group, so Kafka spreads the partitions over
them. All of them write their metrics to one PROMETHEUS_MULTIPROC_DIR (a fresh directory per run
unless set), so any worker's /metrics shows every process's counters.

A poller that exits is started again (after 1 s, doubling up to 30 s while it keeps failing); if
uvicorn exits, everything stops. A watchdog: each poller touches a heartbeat file of its own after
every loop iteration; one whose file is older than POLLER_STALL_SECONDS (a `poll()` that never
returns, a client bug spinning) is logged, killed and started again, and the new one counts it in
`warehouse_poller_stall_restarts_total` (nothing is lost: offsets are committed after each batch).
SIGTERM or SIGINT (Ctrl-C) stops the workers and the pollers gracefully (a poller finishes and
commits its batch first, and ends itself after a few seconds whatever it is doing), then this process.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.adapters import observability
from common.adapters.config import Settings, get_settings
from functions.local_app.poller.__main__ import RESTARTED_STALLED_ENV
from functions.local_app.poller.control import HEARTBEAT_ENV

logger = logging.getLogger("functions.local_app.serve")

STOP_TIMEOUT_SECONDS = 30.0
MAX_RESTART_DELAY_SECONDS = 30.0
PARTITIONS_TIMEOUT_SECONDS = 5.0
APP = "functions.local_app.main:app"
POLLER = "functions.local_app.poller"


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def topic_partitions(settings: Settings) -> int | None:
    """KAFKA_TOPIC's partition count, or None when the broker cannot say (down, no such topic yet,
    or a secured cluster: the pollers' own client configuration knows its credentials)."""
    if settings.kafka_security_protocol != "PLAINTEXT":
        return None
    try:
        from kafka import KafkaConsumer

        from common.adapters import kafka_settings as kafka_client

        timeout_ms = int(PARTITIONS_TIMEOUT_SECONDS * 1000)
        consumer = KafkaConsumer(
            **kafka_client.consumer_config(settings, "warehouse-serve-layout", request_timeout_ms=timeout_ms)
        )
        kafka_client.disable_topic_auto_creation(consumer)  # asking must not create the topic
        try:
            partitions = consumer.partitions_for_topic(settings.kafka_topic)
        finally:
            consumer.close()
    except Exception as exc:  # any failure only means "unknown": the default takes over
        logger.warning("could not read the partitions of %s: %s", settings.kafka_topic, exc)
        return None
    return len(partitions) if partitions else None


def layout(
    settings: Settings, *, partitions: int | None = None, available: int | None = None
) -> tuple[int, int]:
    """(HTTP workers, poller processes) for these settings on `available` cores."""
    available = available or cores()
    workers = settings.app_workers or available
    if settings.app_mode != "kafka":
        return workers, 0
    if settings.kafka_pollers is not None:
        return workers, settings.kafka_pollers
    return workers, min(partitions or available, available)


@dataclass
class _Poller:
    index: int
    process: subprocess.Popen[bytes] | None = None
    failures: int = 0
    restart_at: float = 0.0
    started: list[float] = field(default_factory=list)
    stalled: bool = False  # the last one was killed by the watchdog
    stalls: int = 0


class Supervisor:
    """Starts uvicorn and the pollers, restarts pollers that exit, stops everything on a signal."""

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int,
        pollers: int,
        metrics_dir: Path,
        app: str = APP,
        poller: str = POLLER,
    ) -> None:
        self.settings = settings
        self.app = app
        self.poller_module = poller
        self.workers = workers
        self.metrics_dir = metrics_dir
        self.env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        self.pollers = [_Poller(i) for i in range(pollers)]
        self.uvicorn: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def uvicorn_command(self) -> list[str]:
        s = self.settings
        return [
            sys.executable, "-m", "uvicorn", self.app,
            "--host", s.app_host, "--port", str(s.app_port), "--workers", str(self.workers),
            "--log-level", s.log_level.lower(), "--access-log" if s.access_log else "--no-access-log",
        ]  # fmt: skip

    def start(self) -> None:
        logger.info(
            "serving on http://%s:%d: %d uvicorn worker(s), %d kafka poller(s) (%d cores); metrics in %s",
            self.settings.app_host, self.settings.app_port, self.workers, len(self.pollers), cores(),
            self.metrics_dir,
        )  # fmt: skip
        for poller in self.pollers:
            self._start_poller(poller)
        # The workers run no poller thread of their own: the pollers above are the only ones.
        self.uvicorn = subprocess.Popen(self.uvicorn_command(), env={**self.env, "KAFKA_POLLERS": "0"})

    def heartbeat(self, poller: _Poller) -> Path:
        return self.metrics_dir / f"poller-{poller.index}.heartbeat"

    def _start_poller(self, poller: _Poller) -> None:
        beat = self.heartbeat(poller)
        beat.touch()  # the watchdog counts from the start
        env = {**self.env, HEARTBEAT_ENV: str(beat)}
        if poller.stalled:
            env[RESTARTED_STALLED_ENV] = "1"
            poller.stalled = False
        poller.process = subprocess.Popen([sys.executable, "-m", self.poller_module], env=env)
        poller.started.append(time.monotonic())
        logger.info("kafka poller %d started (pid %d)", poller.index, poller.process.pid)

    def watch(self) -> int:
        """Until uvicorn exits or a stop is requested; uvicorn's exit status (0 after a stop)."""
        assert self.uvicorn is not None
        while not self.stopping:
            code = self.uvicorn.poll()
            if code is not None:
                logger.warning("uvicorn exited with %s: stopping the pollers", code)
                return code
            now = time.monotonic()
            for poller in self.pollers:
                self._check_poller(poller, now)
            time.sleep(0.5)
        return 0

    def _check_poller(self, poller: _Poller, now: float) -> None:
        process = poller.process
        if process is not None:
            code = process.poll()
            if code is None:
                if self._stalled(poller):
                    return  # killed: its exit is seen on the next look
                if poller.failures and now - poller.started[-1] > MAX_RESTART_DELAY_SECONDS:
                    poller.failures = 0  # it has kept running: the next exit starts the backoff anew
                return
            observability.mark_process_dead(process.pid)
            delay = 0.0 if poller.stalled else min(2.0**poller.failures, MAX_RESTART_DELAY_SECONDS)
            poller.failures += 0 if poller.stalled else 1
            logger.warning(
                "kafka poller %d exited with %s: starting it again in %.0f s", poller.index, code, delay
            )
            poller.process = None
            poller.restart_at = now + delay
        elif now >= poller.restart_at:
            self._start_poller(poller)

    def _stalled(self, poller: _Poller) -> bool:
        """The watchdog: kill a poller whose loop finished no iteration within the bound."""
        assert poller.process is not None
        try:
            age = time.time() - self.heartbeat(poller).stat().st_mtime
        except OSError:
            return False
        bound = self.settings.poller_stall_seconds
        if age <= bound:
            return False
        poller.stalls += 1
        poller.stalled = True
        logger.error(
            "kafka poller %d (pid %d) finished no loop iteration for %.0f s (bound %.0f s): stalled; "
            "killing it and starting it again (stall %d)",
            poller.index, poller.process.pid, age, bound, poller.stalls,
        )  # fmt: skip
        poller.process.kill()  # it is stuck: nothing to finish; offsets follow applied batches only
        poller.failures = 0  # a stall is not a crash loop: start the new one at once
        return True

    def stop(self) -> None:
        """SIGTERM to every child, then wait; SIGKILL what is still running after the timeout."""
        self.stopping = True
        children = [p for p in [self.uvicorn, *(q.process for q in self.pollers)] if p is not None]
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("pid %d did not stop in %.0f s: killing it", child.pid, STOP_TIMEOUT_SECONDS)
                child.kill()
                child.wait(5)


def _metrics_dir() -> tuple[Path, bool]:
    """The shared metrics directory, emptied; and whether it is ours to delete afterwards."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not given:
        return Path(tempfile.mkdtemp(prefix="warehouse-metrics-")), True
    path = Path(given)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # a previous run's values must not be summed into this one's
        stale.unlink()
    return path, False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The local app on every core (make run).")
    # The benchmark serves its variants of the app (tools/bench/bench_asgi.py) the same way.
    parser.add_argument("--app", default=APP, help=argparse.SUPPRESS)
    parser.add_argument("--poller", default=POLLER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    partitions = (
        topic_partitions(settings)
        if settings.app_mode == "kafka" and settings.kafka_pollers is None
        else None
    )
    workers, pollers = layout(settings, partitions=partitions)
    metrics_dir, ours = _metrics_dir()
    supervisor = Supervisor(
        settings, workers=workers, pollers=pollers, metrics_dir=metrics_dir, app=args.app, poller=args.poller
    )

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        supervisor.start()
        code = supervisor.watch()
    finally:
        supervisor.stop()
        if ours:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
