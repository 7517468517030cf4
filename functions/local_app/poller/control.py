"""Paused partitions and the operator's answers: resume (after fixing the cause) or skip the batch.

A batch the client cannot decode (functions/local_app/poller/undecodable.py) pauses its partition
only: `consumer.pause(tp)`, so the other partitions keep flowing. The pause is logged, counted
(`warehouse_poller_paused_partitions`, `warehouse_poller_undecodable_batches_total`) and reported
with the lag (`consumer_lag.paused_*`: /ready, the console). Operators ask with
`warehouse-stock poller resume|skip` or `POST /api/v1/pollers/partitions/{topic}/{partition}/{action}`;
the request is a row of `poller_commands`, which the poller holding the pause reads about once
a second while it holds one, and every lag interval otherwise. A skip records the batch as a
dead letter (reason `invalid`, its coordinates and the decoding error, its raw bytes), commits
the offset after it, and reads on; it is never silent.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.adapters import consumer_lag, observability
from common.adapters.config import Settings
from functions.local_app.poller.undecodable import UndecodableBatch

logger = logging.getLogger("functions.local_app.poller")

# How often a poller holding a pause looks for the operator's answer.
COMMAND_CHECK_SECONDS = 1.0
# The supervisor's watchdog reads this file's age (functions/local_app/serve.py).
HEARTBEAT_ENV = "WAREHOUSE_POLLER_HEARTBEAT"
HEARTBEAT_EVERY_SECONDS = 1.0


@dataclass
class Pause:
    offset: int
    last_offset: int | None
    reason: str
    raw: bytes | None
    since: datetime


class ControlMixin:
    """The Poller's pauses, the operator's commands, and its heartbeat."""

    settings: Settings
    consumer_name: str
    cluster_id: str | None
    _consumer: Any
    _topic_ids: dict[str, str]
    paused: dict[Any, Pause]
    last_loop_at: datetime | None
    _commands_checked: float
    _heartbeat_at: float

    def _commit_offsets_at(self, tp: Any, offset: int) -> None:
        raise NotImplementedError  # the loop's

    def _record_cluster(self) -> str | None:
        raise NotImplementedError  # the loop's

    def _pause(self, exc: UndecodableBatch) -> None:
        tp = exc.tp
        self._consumer.pause(tp)
        self.paused[tp] = Pause(exc.offset, exc.last_offset, exc.reason, exc.raw, datetime.now(UTC))
        observability.set_poller_paused(tp.topic, tp.partition, True)
        last = exc.last_offset if exc.last_offset is not None else "?"
        logger.error(
            "kafka %s-%d paused at offset %d: a record batch (offsets %d..%s) cannot be decoded: %s; "
            "the other partitions go on. Fix the cause and `warehouse-stock poller resume %s %d`, "
            "or skip the batch (kept as a dead letter) with `warehouse-stock poller skip %s %d`",
            tp.topic, tp.partition, exc.offset, exc.offset, last, exc.reason,
            tp.topic, tp.partition, tp.topic, tp.partition,
        )  # fmt: skip
        self._commands_checked = 0.0  # an answer may be waiting already

    def _unpause(self, tp: Any) -> None:
        self.paused.pop(tp, None)
        observability.set_poller_paused(tp.topic, tp.partition, False)
        if self._consumer is not None:
            self._consumer.resume(tp)

    def _forget_pauses(self) -> None:
        """A closed consumer's pauses end with it; the next one pauses again if the batch is still there."""
        for tp in list(self.paused):
            observability.set_poller_paused(tp.topic, tp.partition, False)
        self.paused = {}

    def _loop_finished(self) -> None:
        """One iteration done: the watchdog's heartbeat and the stall metric."""
        now = time.time()
        self.last_loop_at = datetime.fromtimestamp(now, UTC)
        observability.set_poller_loop_finished(now)
        if now - self._heartbeat_at >= HEARTBEAT_EVERY_SECONDS:
            self._heartbeat_at = now
            path = os.environ.get(HEARTBEAT_ENV)
            if path:
                try:
                    with open(path, "a"):
                        os.utime(path)
                except OSError:
                    logger.debug("touching the heartbeat file failed", exc_info=True)

    def _maybe_obey(self, *, force: bool = False) -> None:
        """Carry out the operator's pending commands for partitions this poller holds."""
        now = time.monotonic()
        if not force and (not self.paused or now - self._commands_checked < COMMAND_CHECK_SECONDS):
            return
        self._commands_checked = now
        try:
            from common.adapters.db import get_pool

            with get_pool().connection(timeout=0.5) as conn:
                commands = consumer_lag.pending(conn, self.settings.kafka_group_id)
        except Exception as exc:  # the DB being down must not disturb the loop
            logger.debug("reading poller commands failed: %s", exc)
            return
        if not commands:
            return
        assigned = {(tp.topic, tp.partition): tp for tp in self._consumer.assignment()}
        for command in commands:
            tp = assigned.get((command.topic, command.partition))
            if tp is None:
                continue  # another poller's partition (or nobody's yet): left for its owner
            if tp not in self.paused:
                self._done(command.id, "not paused: nothing to do")
            elif command.action == "resume":
                self._resume(tp, command.id)
            else:
                self._skip(tp, command.id)

    def _done(self, command_id: int, outcome: str) -> None:
        from common.adapters.db import get_pool

        with get_pool().connection() as conn:
            consumer_lag.done(conn, command_id, self.consumer_name, outcome)

    def _resume(self, tp: Any, command_id: int) -> None:
        pause = self.paused[tp]
        self._unpause(tp)
        logger.warning(
            "kafka %s-%d resumed at offset %d by an operator", tp.topic, tp.partition, pause.offset
        )
        self._done(command_id, f"resumed at offset {pause.offset}")

    def _skip(self, tp: Any, command_id: int) -> None:
        from common.adapters.db import get_pool
        from common.dead_letters import store
        from common.domain.events import IncomingEvent, Origin
        from common.domain.outcomes import Outcome, Reason, Status

        pause = self.paused[tp]
        last = pause.last_offset if pause.last_offset is not None else pause.offset
        detail = (
            f"undecodable record batch skipped by an operator: {tp.topic}-{tp.partition} offsets "
            f"{pause.offset}..{last}: {pause.reason}"
        )
        origin = Origin.kafka(tp.topic, tp.partition, pause.offset, cluster=self._record_cluster())
        item = IncomingEvent(
            pause.raw or b"", origin, errors=[{"field": "value", "message": detail, "type": "undecodable"}]
        )
        with get_pool().connection() as conn, conn.transaction():
            (letter,) = store.park(
                conn, [(item, Outcome(Status.REJECTED, reason=Reason.INVALID, detail=detail))]
            )
            consumer_lag.done(
                conn, command_id, self.consumer_name, f"skipped {pause.offset}..{last}: dead letter {letter}"
            )
        self._consumer.seek(tp, last + 1)
        self._commit_offsets_at(tp, last + 1)
        self._unpause(tp)
        logger.warning("kafka %s; dead letter %d", detail, letter)
