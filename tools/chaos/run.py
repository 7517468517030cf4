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
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psycopg

from common.operations.reconcile import reconcile
from tools.chaos import procs
from tools.chaos.stack import ChaosStack, default_state_dir
from tools.chaos.workload import (
    Generator,
    Item,
    KafkaSender,
    Model,
    Reader,
    Sample,
    WebhookSender,
    wait_until,
)

GROUP = "chaos-stock"
GRACE = 2.0  # seconds a read may straddle the edge of an outage window


@dataclass(frozen=True)
class Profile:
    rate: float  # generator ticks per second (a tick sends one or two events)
    before: float  # streaming before the fault
    after: float  # streaming after recovery
    postgres_down: float
    redis_down: float
    kafka_down: float
    poller_down: float
    drain_timeout: float
    hard_limit: float  # the whole run, set-up included


SHORT = Profile(
    rate=20,
    before=3,
    after=4,
    postgres_down=3,
    redis_down=4,
    kafka_down=2,
    poller_down=1,
    drain_timeout=150,
    hard_limit=900,
)
FULL = Profile(
    rate=50,
    before=10,
    after=15,
    postgres_down=10,
    redis_down=10,
    kafka_down=10,
    poller_down=3,
    drain_timeout=300,
    hard_limit=2400,
)


@dataclass
class Window:
    kind: str  # postgres | redis | kafka | poller
    phase: str
    start: float
    end: float = float("inf")

    def overlaps(self, sample: Sample) -> bool:
        return sample.began <= self.end + GRACE and sample.ended >= self.start


@dataclass
class PhaseReport:
    name: str
    sent: int = 0
    kafka: int = 0
    webhook: int = 0
    applied: int = 0
    duplicates: int = 0
    parked: int = 0
    refused: int = 0
    reads: int = 0
    reads_503: int = 0
    stock_ok: bool = False
    books_ok: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.stock_ok and self.books_ok and not self.problems

    def line(self) -> str:
        return (
            f"{self.name:<33} sent {self.sent:>5} (kafka {self.kafka}, webhook {self.webhook})  "
            f"applied {self.applied:>5}  duplicates {self.duplicates:>4}  parked {self.parked:>4}  "
            f"refused {self.refused:>3}  reads {self.reads:>5} (503 {self.reads_503})  "
            f"stock {'OK' if self.stock_ok else 'FAIL'}  books {'OK' if self.books_ok else 'FAIL'}  "
            f"{self.seconds:5.1f}s  "
            f"{'PASS' if self.ok else 'FAIL'}"
        )


class HardLimit(Exception):
    """The run exceeded its time budget."""


class Suite:
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

    # --- faults -------------------------------------------------------------------------------------

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

    # --- drain and verify -----------------------------------------------------------------------------

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

    def verify(self, report: PhaseReport, items: list[Item]) -> None:
        report.sent = len(items)
        report.kafka = sum(i.path == "kafka" for i in items)
        report.webhook = report.sent - report.kafka
        report.duplicates = sum(i.kind == "duplicate" for i in items)
        try:
            with psycopg.connect(self.stack.database_url, connect_timeout=10) as conn:
                self.verify_ledger(report, items, conn)
                self.verify_stock(report, conn)
            with psycopg.connect(self.stack.database_url, autocommit=True, connect_timeout=10) as conn:
                self.verify_books(report, conn)
        except psycopg.Error as exc:
            report.problems.append(f"verification query failed: {exc}")

    def verify_books(self, report: PhaseReport, conn: psycopg.Connection) -> None:
        """`warehouse-stock reconcile` over the whole database: every discrepancy fails the phase."""
        books = reconcile(conn)
        report.books_ok = books.ok
        report.problems += [f"books: {d.line()}" for d in books.discrepancies]
        report.notes += [f"books note: {n.line()}" for n in books.notes]

    def verify_ledger(self, report: PhaseReport, items: list[Item], conn: psycopg.Connection) -> None:
        valid = {i.event_key for i in items if i.kind == "valid" and i.event_key}
        movement_ids = list({key[0] for key in valid})
        found = {
            (mid, event)
            for mid, event in conn.execute(
                "SELECT movement_id, event FROM movement_events WHERE movement_id = ANY(%s)", (movement_ids,)
            )
        }
        report.applied = len(valid & found)
        missing = valid - found
        if missing:
            report.problems.append(f"{len(missing)} valid event(s) never applied, e.g. {sorted(missing)[:2]}")
        total = conn.execute("SELECT count(*) FROM movement_events").fetchone()
        if total is None or total[0] != len(self.model.valid_events):
            report.problems.append(
                f"movement_events holds {total[0] if total else '?'} rows, "
                f"{len(self.model.valid_events)} distinct valid events were sent"
            )
        parked = {
            (partition, offset): reason
            for partition, offset, reason in conn.execute(
                "SELECT kafka_partition, kafka_offset, reason FROM rejected_events WHERE kafka_topic = %s",
                (self.stack.topic,),
            )
        }
        for item in items:
            if item.path == "kafka":
                self.verify_kafka_item(report, item, parked)
            else:
                self.verify_webhook_item(report, item, conn)

    def verify_kafka_item(self, report: PhaseReport, item: Item, parked: dict[tuple[int, int], str]) -> None:
        if not item.offsets:
            report.problems.append(f"kafka {item.kind} record has no acknowledged offset")
            return
        if item.kind in ("bad", "insufficient"):
            want = "invalid" if item.kind == "bad" else "insufficient_stock"
            for where in item.offsets:
                if parked.get(where) != want:
                    report.problems.append(
                        f"kafka {item.kind} record at {where} parked as {parked.get(where)}"
                    )
                    return
            report.parked += 1
        elif any(where in parked for where in item.offsets):
            report.problems.append(f"kafka {item.kind} record at {item.offsets} was parked")

    def verify_webhook_item(self, report: PhaseReport, item: Item, conn: psycopg.Connection) -> None:
        answer = item.answer or {}
        if item.status is None:
            report.problems.append(f"webhook {item.kind}: no answer ({item.error})")
        elif item.kind in ("valid", "duplicate"):
            if item.status != 200 or answer.get("status") not in ("applied", "duplicate"):
                report.problems.append(f"webhook {item.kind}: {item.status} {str(answer)[:200]}")
        elif item.kind == "bad":
            if item.status not in (413, 422):
                report.problems.append(f"webhook bad payload: {item.status} {str(answer)[:200]}")
            report.refused += 1
        else:  # insufficient
            rejected_id = answer.get("rejected_event_id")
            row = conn.execute("SELECT reason FROM rejected_events WHERE id = %s", (rejected_id,)).fetchone()
            if item.status != 409 or row is None or row[0] != "insufficient_stock":
                report.problems.append(f"webhook insufficient departure: {item.status} {answer}, row {row}")
            else:
                report.parked += 1

    def verify_stock(self, report: PhaseReport, conn: psycopg.Connection) -> None:
        rows = dict(
            ((w, p), q) for w, p, q in conn.execute("SELECT warehouse_id, product_id, quantity FROM stock")
        )
        wrong = [(k, rows.get(k), want) for k, want in self.model.stock.items() if rows.get(k) != want]
        if rows.get(self.model.empty, 0) != 0:
            wrong.append((self.model.empty, rows.get(self.model.empty), 0))
        http_wrong = []
        with httpx.Client(timeout=20) as client:
            for (w, p), want in self.model.stock.items():
                response = client.get(f"{self.base_url}/api/v1/warehouse/{w}/products/{p}")
                got = response.json().get("quantity") if response.status_code == 200 else response.status_code
                if got != want:
                    http_wrong.append(((w, p), got, want))
        report.stock_ok = not wrong and not http_wrong
        if wrong:
            report.problems.append(
                f"{len(wrong)} pair(s) with the wrong stock in PostgreSQL, e.g. {wrong[:2]}"
            )
        if http_wrong:
            report.problems.append(
                f"{len(http_wrong)} pair(s) read wrong over HTTP (stale cache?), e.g. {http_wrong[:2]}"
            )

    def check_reads(self, report: PhaseReport, name: str) -> None:
        assert self.reader
        samples = [s for s in list(self.reader.samples) if s.phase == name]
        report.reads = sum(s.what == "stock" for s in samples)
        pg_windows = [w for w in self.windows if w.kind == "postgres"]
        bad: list[str] = []
        for s in samples:
            in_pg = any(w.overlaps(s) for w in pg_windows)
            if s.status == 503 and s.retry_after and in_pg:
                report.reads_503 += s.what == "stock"
                continue
            if s.status != 200:
                bad.append(f"{s.what} {s.status or s.error} at +{s.began - self.t0:.1f}s")
        if bad:
            report.problems.append(
                f"{len(bad)} read(s) not 200 (nor 503 while PostgreSQL was down): {bad[:5]}"
            )
        ready = [s for s in samples if s.what == "ready"]
        for window in (w for w in self.windows if w.phase == name and w.kind in ("postgres", "redis")):
            inside = [s for s in ready if window.start <= s.began <= window.end]
            if not inside:
                report.problems.append(f"no /ready sample during the {window.kind} outage")
            elif window.kind == "postgres" and not any(s.status == 503 and s.retry_after for s in inside):
                report.problems.append("/ready never said 503 (with Retry-After) while PostgreSQL was down")
            elif window.kind == "redis" and not any(
                (s.body or {}).get("redis") == "unavailable" for s in inside
            ):
                report.problems.append("/ready never showed redis unavailable while Redis was stopped")

    def check_logs(self) -> list[str]:
        """No secret in anything the app or the pollers printed, faults included."""
        problems = []
        for log in sorted(self.stack.log_dir.glob("*.log")):
            if not (log.name.startswith(("app", "poller"))):
                continue
            text = log.read_text(errors="replace")
            for secret, what in (
                (self.stack.db_password, "database password"),
                (self.token, "webhook token"),
            ):
                if secret in text:
                    problems.append(f"{what} appears in {log.name}")
        return problems

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


def both(what: str, action: Callable[[str], None], services: list[str]) -> None:
    """`action` on each service at the same moment (a thread each); the first error is raised."""
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            action(name)
        except BaseException as exc:  # re-raised below, in the driver's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,), name=f"{what}-{n}") for n in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)


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
