"""What the fault suite sends and reads: movement events with an exact in-memory model of stock.

The stream is built so that its end state does not depend on delivery order (Kafka orders only
within a partition, the webhook not at all, and faults cause redeliveries): every stocked pair is
seeded with far more than the stream can ever take away, so every valid departure is coverable
whichever order things arrive in, and the stock the ledger ends with must equal the model exactly.
Deliberate trouble rides along: duplicates, corpus payloads and departures from an empty pair.
"""

from __future__ import annotations

import contextlib
import json
import queue
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from tools.corpus import envelope, rejected_cases

SEED_QUANTITY = 1_000_000
WEBHOOK = "/api/v1/kafka/webhook"
Key = tuple[uuid.UUID, uuid.UUID]  # (warehouse_id, product_id)
Kind = Literal["valid", "duplicate", "bad", "insufficient"]
Path_ = Literal["kafka", "webhook"]


@dataclass
class Item:
    """One send: its bytes, what it is, where it goes, and (filled in later) what became of it."""

    body: bytes
    kind: Kind
    path: Path_
    phase: str
    event_key: tuple[uuid.UUID, str] | None = None  # (movement_id, event) for valid/duplicate
    # Kafka: where the record landed (every copy, when a send had to be repeated).
    offsets: list[tuple[int, int]] = field(default_factory=list)
    # Webhook: the final answer.
    status: int | None = None
    answer: dict[str, Any] | None = None
    error: str | None = None


class Model:
    """The stock every pair must end with, and the events that must be in the ledger."""

    def __init__(self, rng: random.Random, warehouses: int = 4, products: int = 5) -> None:
        self.rng = rng
        self.warehouses = [uuid.uuid4() for _ in range(warehouses)]
        self.products = [uuid.uuid4() for _ in range(products)]
        self.keys: list[Key] = [(w, p) for w in self.warehouses for p in self.products]
        self.empty: Key = (uuid.uuid4(), uuid.uuid4())  # never stocked: every departure is refused
        self.stock: dict[Key, int] = {k: 0 for k in self.keys}
        self.valid_events: set[tuple[uuid.UUID, str]] = set()
        self.sent_valid: list[Item] = []
        self._bad_bodies = [c.body for c in rejected_cases() if len(c.body) < 64 * 1024]
        self._lock = threading.Lock()

    def seed_items(self, phase: str) -> list[Item]:
        """One arrival of SEED_QUANTITY per stocked pair (sent through the webhook)."""
        return [
            self.valid_item(uuid.uuid4(), "arrival", w, p, SEED_QUANTITY, "webhook", phase)
            for w, p in self.keys
        ]

    def valid_item(
        self, mid: uuid.UUID, event: str, w: uuid.UUID, p: uuid.UUID, q: int, path: Path_, phase: str
    ) -> Item:
        body = json.dumps(
            envelope(movement_id=mid, warehouse_id=w, product_id=p, event=event, quantity=q)
        ).encode()
        with self._lock:
            self.stock[(w, p)] += q if event == "arrival" else -q
            self.valid_events.add((mid, event))
        item = Item(body, "valid", path, phase, (mid, event))
        self.sent_valid.append(item)
        return item

    def next_items(self, phase: str, kafka_share: float = 0.75) -> list[Item]:
        """The next few sends: a movement's two halves, or one piece of deliberate trouble."""

        def path() -> Path_:
            return "kafka" if self.rng.random() < kafka_share else "webhook"

        roll = self.rng.random()
        if roll < 0.08 and self.sent_valid:
            original = self.rng.choice(self.sent_valid)
            return [Item(original.body, "duplicate", path(), phase, original.event_key)]
        if roll < 0.14:
            return [Item(self.rng.choice(self._bad_bodies), "bad", path(), phase)]
        if roll < 0.19:
            w, p = self.empty
            doc = envelope(warehouse_id=w, product_id=p, event="departure", quantity=self.rng.randint(1, 9))
            return [Item(json.dumps(doc).encode(), "insufficient", path(), phase)]
        source, destination = self.rng.sample(self.warehouses, 2)
        product = self.rng.choice(self.products)
        quantity = self.rng.randint(1, 5)
        received = max(1, quantity - self.rng.choice((0, 0, 0, 1)))  # now and then one is lost on the way
        mid = uuid.uuid4()
        halves = [
            self.valid_item(mid, "departure", source, product, quantity, path(), phase),
            self.valid_item(mid, "arrival", destination, product, received, path(), phase),
        ]
        self.rng.shuffle(halves)
        return halves


# --- senders ---------------------------------------------------------------------------------------


class KafkaSender:
    """Produces items asynchronously; `drain` waits for every record and repeats failed sends."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=5,
            retries=1_000_000,
            retry_backoff_ms=200,
            reconnect_backoff_max_ms=2_000,
            request_timeout_ms=10_000,
            delivery_timeout_ms=240_000,
            max_block_ms=120_000,
            client_id="chaos-producer",
        )
        self.pending: list[tuple[Item, Any]] = []
        self.failed_sends = 0
        self._lock = threading.Lock()

    def send(self, item: Item) -> None:
        key = str(item.event_key[0]).encode() if item.event_key else None
        future = self.producer.send(self.topic, value=item.body, key=key)
        with self._lock:
            self.pending.append((item, future))

    def drain(self, deadline: float) -> list[str]:
        """Every pending record acknowledged (failed ones sent again); problems, if any."""
        problems: list[str] = []
        while True:
            with self._lock:
                batch, self.pending = self.pending, []
            if not batch:
                return problems
            self.producer.flush(timeout=max(1.0, deadline - time.monotonic()))
            for item, future in batch:
                try:
                    meta = future.get(timeout=max(0.1, deadline - time.monotonic()))
                    item.offsets.append((meta.partition, meta.offset))
                except Exception as exc:  # delivery timed out or failed: send the same bytes again
                    self.failed_sends += 1
                    if time.monotonic() > deadline:
                        problems.append(f"kafka send never acknowledged: {type(exc).__name__}: {exc}")
                        continue
                    self.send(item)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.producer.close(timeout=10)


class WebhookSender:
    """Worker threads posting items like a well-behaved client: 503 and connection errors are retried."""

    def __init__(self, base_url: str, token: str, workers: int = 3, give_up_after: float = 180.0) -> None:
        self.base_url = base_url
        self.token = token
        self.give_up_after = give_up_after
        self.queue: queue.Queue[Item | None] = queue.Queue()
        self.retries = 0
        self._threads = [
            threading.Thread(target=self._work, daemon=True, name=f"webhook-{i}") for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def send(self, item: Item) -> None:
        self.queue.put(item)

    def _work(self) -> None:
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {self.token}"}) as client:
            while True:
                item = self.queue.get()
                try:
                    if item is None:
                        return
                    self._post(client, item)
                finally:
                    self.queue.task_done()

    def _post(self, client: httpx.Client, item: Item) -> None:
        give_up = time.monotonic() + self.give_up_after
        while True:
            try:
                response = client.post(
                    f"{self.base_url}{WEBHOOK}",
                    content=item.body,
                    headers={"content-type": "application/json"},
                )
            except httpx.HTTPError as exc:
                item.error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code != 503:
                    item.status = response.status_code
                    item.error = None
                    with contextlib.suppress(ValueError):
                        item.answer = response.json()
                    return
                item.error = "503"
            if time.monotonic() > give_up:
                return
            self.retries += 1
            time.sleep(0.5)

    def drain(self, deadline: float) -> list[str]:
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.1)
        return [] if not self.queue.unfinished_tasks else ["webhook queue not drained in time"]

    def close(self) -> None:
        for _ in self._threads:
            self.queue.put(None)


class Generator:
    """Feeds items at `rate` sends per second to the two senders until stopped."""

    def __init__(self, model: Model, kafka: KafkaSender, webhook: WebhookSender, rate: float) -> None:
        self.model = model
        self.kafka = kafka
        self.webhook = webhook
        self.rate = rate
        self.phase = ""
        self.items: list[Item] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self, phase: str) -> None:
        self.phase = phase
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="generator")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(150)

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                for item in self.model.next_items(self.phase):
                    self.items.append(item)
                    (self.kafka.send if item.path == "kafka" else self.webhook.send)(item)
                next_at += interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        except Exception as exc:  # reported by the driver as a failure of the phase
            self.error = f"{type(exc).__name__}: {exc}"


# --- readers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    phase: str
    what: Literal["stock", "ready"]
    began: float
    ended: float
    status: int  # 0: no answer at all (connection error, timeout)
    retry_after: bool
    body: dict[str, Any] | None
    error: str | None = None


class Reader:
    """Polls GET stock (random stocked pairs) and GET /ready throughout, tagging samples by phase."""

    def __init__(self, base_url: str, keys: list[Key], rng: random.Random, interval: float = 0.05) -> None:
        self.base_url = base_url
        self.keys = keys
        self.rng = rng
        self.interval = interval
        self.phase = "setup"
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=("stock", interval), daemon=True, name="reader-stock"),
            threading.Thread(target=self._loop, args=("ready", 0.25), daemon=True, name="reader-ready"),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _loop(self, what: Literal["stock", "ready"], interval: float) -> None:
        with httpx.Client(timeout=20) as client:
            while not self._stop.is_set():
                if what == "stock":
                    w, p = self.rng.choice(self.keys)
                    url = f"{self.base_url}/api/v1/warehouse/{w}/products/{p}"
                else:
                    url = f"{self.base_url}/ready"
                self.samples.append(self._get(client, what, url))
                self._stop.wait(interval)

    def _get(self, client: httpx.Client, what: Literal["stock", "ready"], url: str) -> Sample:
        phase = self.phase
        began = time.monotonic()
        try:
            response = client.get(url)
        except httpx.HTTPError as exc:
            return Sample(
                phase, what, began, time.monotonic(), 0, False, None, f"{type(exc).__name__}: {exc}"
            )
        body = None
        with contextlib.suppress(ValueError):
            body = response.json()
        retry_after = response.headers.get("retry-after", "").isdigit()
        return Sample(phase, what, began, time.monotonic(), response.status_code, retry_after, body)


def outcome_counts(items: list[Item]) -> Counter[str]:
    return Counter(f"{i.path}:{i.kind}" for i in items)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return True
        time.sleep(interval)
    return False
