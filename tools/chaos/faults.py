"""The faults the suite injects, one method each: the poller killed, PostgreSQL, Redis or the broker
stopped and started (alone or together), Redis frozen. Each records its outage window, which the
read checks use to tell an expected 503 from a failure.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from tools import procs
from tools.chaos.phases import SuiteState, Window, both
from tools.chaos.workload import wait_until


class Faults(SuiteState):
    @contextlib.contextmanager
    def window(self, kind: str) -> Iterator[Window]:
        assert self.reader
        window = Window(kind, self.reader.phase, time.monotonic())
        self.windows.append(window)
        try:
            yield window
        finally:
            if window.end == float("inf"):
                window.end = time.monotonic()

    def fault_poller(self) -> None:
        with self.window("poller"):
            procs.kill9(self.poller)
            time.sleep(self.profile.poller_down)
            self.start_poller()

    def fault_postgres(self) -> None:
        with self.window("postgres") as window:
            self.stack.stop_service("postgres")
            time.sleep(self.profile.postgres_down)
            self.stack.start_service("postgres")
            self.wait_ready_after("PostgreSQL")
            window.end = time.monotonic()

    def fault_postgres_and_redis(self) -> None:
        """Both stopped at once, kept down, both started at once: reads fall back to nothing."""
        with self.window("postgres") as pg_window, self.window("redis"):
            both("stop", self.stack.stop_service, ["postgres", "redis"])
            time.sleep(self.profile.postgres_down)
            both("start", self.stack.start_service, ["postgres", "redis"])
            self.wait_ready_after("PostgreSQL and Redis")
            pg_window.end = time.monotonic()

    def fault_kafka_while_postgres_down(self) -> None:
        """PostgreSQL stopped, then the broker stopped and started while it is still down: the
        poller, failing its batch, also loses its broker and group; then PostgreSQL is started."""
        with self.window("postgres") as pg_window:
            self.stack.stop_service("postgres")
            time.sleep(self.profile.poller_down)
            with self.window("kafka"):
                self.stack.stop_service("kafka")
                time.sleep(self.profile.kafka_down)
                self.stack.start_service("kafka")
            time.sleep(self.profile.poller_down)
            self.stack.start_service("postgres")
            self.wait_ready_after("PostgreSQL")
            pg_window.end = time.monotonic()

    def wait_ready_after(self, what: str) -> None:
        if not wait_until(lambda: self.ready_status() == 200, 90, 0.2):
            raise RuntimeError(f"/ready did not come back to 200 within 90 s of restarting {what}")

    def fault_redis(self) -> None:
        with self.window("redis"):
            self.stack.stop_service("redis")
            time.sleep(self.profile.redis_down)
            self.stack.start_service("redis")

    def fault_kafka(self) -> None:
        with self.window("kafka"):
            self.stack.stop_service("kafka")
            time.sleep(self.profile.kafka_down)
            self.stack.start_service("kafka")

    def fault_redis_pause(self) -> list[str]:
        """Redis frozen (SIGSTOP), not restarted: it comes back with the entries it had.

        A write while it is frozen cannot bump the cache version, so a read after it thaws may
        serve the value from before the write. Probed in a quiet moment (stream paused): read every
        pair (cached), freeze Redis, write one arrival per pair, thaw, read every pair again.
        """
        assert self.generator
        phase = self.generator.phase
        self.generator.stop()
        problems: list[str] = []
        url = self.base_url + "/api/v1/warehouse/{}/products/{}"
        with httpx.Client(timeout=20, headers={"authorization": f"Bearer {self.token}"}) as client:
            for w, p in self.model.keys:
                client.get(url.format(w, p))
            with self.window("redis"):
                self.stack.pause_service("redis")
                try:
                    for w, p in self.model.keys:
                        item = self.model.valid_item(uuid.uuid4(), "arrival", w, p, 1, "webhook", phase)
                        self.generator.items.append(item)
                        response = client.post(f"{self.base_url}/api/v1/kafka/webhook", content=item.body)
                        item.status = response.status_code
                        item.answer = response.json()
                    time.sleep(max(0.0, self.profile.redis_down - 2))
                finally:
                    self.stack.resume_service("redis")
            time.sleep(0.5)

            def stale_pairs() -> list[tuple[Any, Any, int]]:
                out = []
                for (w, p), want in self.model.stock.items():
                    got = client.get(url.format(w, p)).json().get("quantity")
                    if got != want:
                        out.append(((w, p), got, want))
                return out

            thawed = time.monotonic()
            stale = stale_pairs()
            if stale:
                # How long a client would keep reading the old value with no further write.
                fresh = wait_until(lambda: not stale_pairs(), 120, 1.0)
                lasted = f"{time.monotonic() - thawed:.0f}s" if fresh else "more than 120s"
                problems.append(
                    f"{len(stale)}/{len(self.model.keys)} pair(s) read stale after Redis thawed "
                    f"(written while it was frozen) for {lasted}, e.g. {stale[0]}"
                )
        self.generator.start(phase)
        return problems

    def ready_status(self) -> int:
        return httpx.get(f"{self.base_url}/ready", timeout=10).status_code
