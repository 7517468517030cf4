"""The fault suite: `python -m tools.chaos.run [--short]` (what `make chaos` runs).

It stands up its own PostgreSQL, Redis and Kafka on spare ports (tools/chaos/stack.py), starts the
app (uvicorn, webhook only) and a standalone poller, and streams movement events through Kafka and
the webhook while it injects one fault per phase: kill -9 of the poller, a PostgreSQL restart,
Redis stopped, a Kafka broker restart, then two combined ones: PostgreSQL and Redis down together,
and the broker restarted while PostgreSQL is down. A reader polls GET stock and /ready all along.

After each fault, with the stream drained, it checks what a user would notice:
  - the stock of every pair equals the in-memory model exactly (in PostgreSQL and over HTTP);
  - every event sent is applied (once), a duplicate, or parked in rejected_events at its offset;
  - no read answered anything but 200, except 503 with Retry-After while PostgreSQL was down;
  - /ready said 503 while PostgreSQL was down, and showed Redis down while it was stopped;
  - the books balance: `common.operations.reconcile` finds no discrepancy (stock against the event log,
    movements against their events, dead letters against both).
Exit status 0 only if every check of every phase passed. Bounded in time; cleans up after itself.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from tools import procs
from tools.chaos.checks import Checks
from tools.chaos.faults import Faults
from tools.chaos.phases import FULL, GROUP, SHORT, HardLimit, PhaseReport, Profile, Window, say
from tools.chaos.stack import ChaosStack, default_state_dir
from tools.chaos.workload import Generator, KafkaSender, Model, Reader, WebhookSender, wait_until


class Suite(Faults, Checks):
    """The run: set-up, the phases in order (each a fault between streaming), drain, teardown."""

    def __init__(self, stack: ChaosStack, profile: Profile, seed: int, redis_pause: bool = False) -> None:
        self.stack = stack
        self.redis_pause = redis_pause
        self.profile = profile
        self.rng = random.Random(seed)
        self.token = f"chaos-token-{secrets.token_hex(12)}"
        self.port = procs.free_port()
        self.base_url = f"http://{procs.HOST}:{self.port}"
        self.model = Model(random.Random(seed + 1))
        self.app: Any = None
        self.poller: Any = None
        self.poller_starts = 0
        self.windows: list[Window] = []
        self.reports: list[PhaseReport] = []
        self.kafka: KafkaSender | None = None
        self.webhook: WebhookSender | None = None
        self.generator: Generator | None = None
        self.reader: Reader | None = None
        self.t0 = time.monotonic()

    # --- processes --------------------------------------------------------------------------------

    def app_env(self) -> dict[str, str]:
        return procs.base_env(
            DATABASE_URL=self.stack.database_url,
            REDIS_URL=self.stack.redis_url,
            KAFKA_BOOTSTRAP_SERVERS=self.stack.kafka_bootstrap,
            KAFKA_TOPIC=self.stack.topic,
            KAFKA_GROUP_ID=GROUP,
            KAFKA_POLL_TIMEOUT_MS="200",
            KAFKA_BATCH_SIZE="500",
            WEBHOOK_TOKEN=self.token,
            CACHE_ENABLED="true",
            DLQ_TOPIC="",
            LOG_LEVEL="INFO",
        )

    def start_app(self) -> None:
        log = self.stack.log_dir / "app.log"
        self.app = procs.start_app({**self.app_env(), "APP_MODE": "webhook_only"}, self.port, log)
        procs.wait_healthy(self.base_url, self.app, log, timeout=120)

    def start_poller(self) -> None:
        self.poller_starts += 1
        log = self.stack.log_dir / f"poller-{self.poller_starts}.log"
        self.poller = procs.start_poller(self.app_env(), log)

    # --- the run ------------------------------------------------------------------------------------

    def run(self) -> bool:
        began = self.t0 = time.monotonic()
        say(f"stack: {self.stack.describe()}")
        say(f"stack up in {self.stack.up():.0f}s")
        self.start_app()
        self.start_poller()
        self.kafka = KafkaSender(self.stack.kafka_bootstrap, self.stack.topic)
        self.webhook = WebhookSender(self.base_url, self.token)
        self.generator = Generator(self.model, self.kafka, self.webhook, self.profile.rate)
        self.reader = Reader(self.base_url, self.model.keys, random.Random(self.rng.random()))
        self.seed()
        self.reader.start()
        say(f"{'phase':<33} events sent, what became of them, reads during the phase, stock and books checks")
        self.phase("baseline", None)
        self.phase("poller kill -9", self.fault_poller)
        self.phase("postgres restart", self.fault_postgres)
        self.phase(f"redis stop {self.profile.redis_down:.0f}s", self.fault_redis)
        self.phase("kafka restart", self.fault_kafka)
        self.phase("postgres+redis down", self.fault_postgres_and_redis)
        self.phase("kafka restart while postgres down", self.fault_kafka_while_postgres_down)
        if self.redis_pause:
            self.phase("redis pause", self.fault_redis_pause)
        self.reader.stop()
        problems = self.check_logs()
        for problem in problems:
            say(f"FAIL logs: {problem}")
        ok = all(r.ok for r in self.reports) and not problems
        total = sum(r.sent for r in self.reports)
        say(
            f"{'PASS' if ok else 'FAIL'}: {len(self.reports)} phases, {total} events, "
            f"{sum(r.reads for r in self.reports)} reads, {time.monotonic() - began:.0f}s in all"
        )
        return ok

    def seed(self) -> None:
        """Stock every pair through the webhook, synchronously: the stream's departures draw on it."""
        items = self.model.seed_items("seed")
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {self.token}"}) as client:
            for item in items:
                response = client.post(f"{self.base_url}/api/v1/kafka/webhook", content=item.body)
                if response.status_code != 200:
                    raise RuntimeError(f"seeding failed: {response.status_code} {response.text[:300]}")

    def phase(self, name: str, fault: Callable[[], list[str] | None] | None) -> None:
        assert self.generator and self.reader and self.kafka and self.webhook
        began = time.monotonic()
        first_item = len(self.generator.items)
        self.reader.phase = name
        self.generator.start(name)
        report = PhaseReport(name)
        try:
            time.sleep(self.profile.before)
            if fault is not None:
                report.problems += fault() or []
            time.sleep(self.profile.after)
        except Exception as exc:
            report.problems.append(f"injecting the fault failed: {type(exc).__name__}: {exc}")
        finally:
            self.generator.stop()
        if self.generator.error:
            report.problems.append(f"generator: {self.generator.error}")
        report.problems += self.drain()
        self.reader.phase = f"{name} (verifying)"
        items = self.generator.items[first_item:]
        self.verify(report, items)
        self.check_reads(report, name)
        report.seconds = time.monotonic() - began
        self.reports.append(report)
        say(report.line())
        for problem in report.problems[:12]:
            say(f"    FAIL {problem}")
        if len(report.problems) > 12:
            say(f"    ... and {len(report.problems) - 12} more")
        for note in report.notes[:3]:
            say(f"    {note}")

    # --- drain ---------------------------------------------------------------------------------------

    def drain(self) -> list[str]:
        assert self.kafka and self.webhook
        deadline = time.monotonic() + self.profile.drain_timeout
        problems = self.kafka.drain(deadline) + self.webhook.drain(deadline)
        if self.poller is None or self.poller.poll() is not None:
            problems.append("the poller process is not running")
        if not wait_until(self.consumed_to_end, max(1.0, deadline - time.monotonic()), 0.5):
            problems.append(
                f"the poller did not commit to the end of {self.stack.topic} in time: {self.lag()}"
            )
        return problems

    def offsets(self) -> tuple[dict[int, int], dict[int, int]]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.stack.kafka_bootstrap,
            group_id=GROUP,
            enable_auto_commit=False,
            request_timeout_ms=10_000,
        )
        try:
            parts = [
                TopicPartition(self.stack.topic, p)
                for p in sorted(consumer.partitions_for_topic(self.stack.topic) or ())
            ]
            ends = consumer.end_offsets(parts, timeout_ms=10_000)
            committed = {tp.partition: consumer.committed(tp, timeout_ms=10_000) or 0 for tp in parts}
            return committed, {tp.partition: int(ends[tp]) for tp in parts}
        finally:
            consumer.close(autocommit=False)

    def consumed_to_end(self) -> bool:
        committed, ends = self.offsets()
        return bool(ends) and committed == ends

    def lag(self) -> str:
        try:
            committed, ends = self.offsets()
        except Exception as exc:
            return f"offsets unavailable: {exc}"
        return f"committed {committed}, end {ends}"

    # --- teardown ---------------------------------------------------------------------------------------

    def close(self) -> None:
        stops: list[Callable[[], None]] = [
            *([self.generator.stop] if self.generator else []),
            *([self.reader.stop] if self.reader else []),
            *([self.webhook.close] if self.webhook else []),
            *([self.kafka.close] if self.kafka else []),
            lambda: procs.stop(self.poller),
            lambda: procs.stop(self.app),
        ]
        for stop in stops:
            with contextlib.suppress(Exception):
                stop()


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise HardLimit("the fault suite ran out of its time budget")


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="fewer events, shorter outages (make test)")
    parser.add_argument("--state-dir", type=Path, help="stack state and logs (default: a new temp dir)")
    parser.add_argument("--keep-state", action="store_true", help="keep the state dir (logs) afterwards")
    parser.add_argument("--seed", type=int, default=20250218)
    parser.add_argument(
        "--redis-pause",
        action="store_true",
        help="also freeze Redis (SIGSTOP) while writing: probes stale cache entries after it thaws",
    )
    args = parser.parse_args(argv)
    profile = SHORT if args.short else FULL
    own_dir = args.state_dir is None
    state_dir = args.state_dir or default_state_dir()
    stack = ChaosStack(state_dir)
    suite = Suite(stack, profile, args.seed, redis_pause=args.redis_pause)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(profile.hard_limit))
    ok = False
    try:
        ok = suite.run()
    except Exception as exc:  # HardLimit included: reported, then everything is cleaned up
        say(f"FAIL: {type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
        suite.close()
        stack.down()
        if own_dir and ok and not args.keep_state:
            import shutil

            shutil.rmtree(state_dir, ignore_errors=True)
        elif not ok:
            say(f"logs kept in {stack.log_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
