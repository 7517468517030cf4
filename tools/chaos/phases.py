"""The fault suite's vocabulary: run profiles, outage windows, a phase's report, and the state
the suite's parts share (tools/chaos/run.py builds it; faults.py and checks.py act on it).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.chaos.stack import ChaosStack
from tools.chaos.workload import Generator, KafkaSender, Model, Reader, Sample, WebhookSender

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


class SuiteState:
    """What the fault injection (faults.py) and the checks (checks.py) read: set by Suite.__init__."""

    stack: ChaosStack
    profile: Profile
    rng: random.Random
    token: str
    port: int
    base_url: str
    model: Model
    app: Any
    poller: Any
    poller_starts: int
    windows: list[Window]
    reports: list[PhaseReport]
    kafka: KafkaSender | None
    webhook: WebhookSender | None
    generator: Generator | None
    reader: Reader | None
    t0: float

    def start_poller(self) -> None:
        raise NotImplementedError


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
