"""Lag reporting: the gauge `warehouse_poller_lag`, a log line, and the rows of `consumer_lag`."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from common.adapters import consumer_lag, observability
from common.adapters.config import Settings
from functions.local_app.poller.consumer import REQUEST_BUDGET_MS, _position

logger = logging.getLogger("functions.local_app.poller")  # one logger for the package
# The consumer_lag upsert waits at most this long for a pooled connection (and the statement
# at most consumer_lag.WRITE_LIMIT_MS): it is best effort.
LAG_WRITE_POOL_TIMEOUT_SECONDS = 0.5


class LagMixin:
    """Every lag interval: the lag per partition, exported, logged now and then, and upserted."""

    settings: Settings
    state: str
    batches: int
    records: int
    lag: int | None
    lag_by_partition: dict[str, int]
    consumer_name: str
    _consumer: Any
    _admin: Any
    _lag_interval: float
    _lag_log_interval: float
    _lag_checked: float
    _lag_logged: float
    _lag_write_failing: bool
    paused: dict[Any, Any]
    last_loop_at: datetime | None

    def _set_running(self) -> None:
        raise NotImplementedError  # the loop's

    def _maybe_report_lag(self) -> bool:
        """Report when the interval is up; whether it did."""
        now = time.monotonic()
        if now - self._lag_checked < self._lag_interval:
            return False
        self._lag_checked = now
        consumer = self._consumer
        partitions = list(consumer.assignment())
        by_partition: dict[str, int] = {}
        rows: list[consumer_lag.PartitionReport] = []
        if partitions:
            ends = consumer.end_offsets(partitions, timeout_ms=REQUEST_BUDGET_MS)
            committed = self._committed(partitions)
            for tp in partitions:
                # The fetch position is the next offset to apply: poll() moves it past what it
                # returned, a commit follows each applied batch, a failed batch seeks it back.
                position = _position(consumer, tp)
                # read_committed: end_offsets is the last stable offset; the high watermark of the
                # last fetch also counts the records an open transaction holds back (that wait is lag).
                end = max(ends.get(tp, position if position is not None else 0), _highwater(consumer, tp))
                by_partition[f"{tp.topic}-{tp.partition}"] = max(
                    0, end - (position if position is not None else end)
                )
                done = committed.get(tp)
                behind = max(0, end - (done if done is not None else position if position is not None else 0))
                pause = self.paused.get(tp)
                rows.append(
                    consumer_lag.PartitionReport(
                        tp.topic,
                        tp.partition,
                        done,
                        end,
                        behind,
                        pause.offset if pause else None,
                        pause.reason[:500] if pause else None,
                        pause.since if pause else None,
                    )  # fmt: skip
                )
        self.lag_by_partition = by_partition
        self.lag = sum(by_partition.values())
        if self.state in ("connecting", "disconnected"):  # the broker answered; "retrying" is the DB
            self._set_running()
        observability.set_poller_lag(self.lag)
        self._write_lag(rows)
        if now - self._lag_logged >= self._lag_log_interval:
            self._lag_logged = now
            logger.info(
                "kafka lag %d %s state=%s batches=%d records=%d",
                self.lag,
                by_partition or "(no partitions assigned yet)",
                self.state,
                self.batches,
                self.records,
            )
        return True

    def _committed(self, partitions: list[Any]) -> dict[Any, int]:
        """The group's committed offsets (None when the admin client cannot tell)."""
        if self._admin is None:
            return {}
        group = self.settings.kafka_group_id
        try:
            answer = self._admin.list_group_offsets({group: partitions}).get(group, {})
        except Exception:
            logger.debug("reading committed offsets failed", exc_info=True)
            return {}
        return {tp: meta.offset for tp, meta in answer.items() if meta is not None and meta.offset >= 0}

    def _write_lag(self, rows: list[consumer_lag.PartitionReport]) -> None:
        """Upsert this poller's view of its partitions into `consumer_lag`; never raises."""
        try:
            from common.adapters.db import get_pool

            with get_pool().connection(timeout=LAG_WRITE_POOL_TIMEOUT_SECONDS) as conn:
                # Bounded: a locked or slow table must not hold the loop (the pool sets no limits).
                if rows:
                    consumer_lag.upsert(conn, self.settings.kafka_group_id, self.consumer_name, rows)
                consumer_lag.report_poller(
                    conn,
                    self.consumer_name,
                    self.settings.kafka_group_id,
                    self.state,
                    self.last_loop_at or datetime.now(UTC),
                )
        except Exception as exc:  # monitoring must never disturb ingestion
            level = logging.DEBUG if self._lag_write_failing else logging.WARNING
            self._lag_write_failing = True
            logger.log(
                level,
                "writing consumer_lag failed (the console's lag is stale): %s: %s",
                type(exc).__name__,
                exc,
            )
            return
        if self._lag_write_failing:
            self._lag_write_failing = False
            logger.info("writing consumer_lag works again")


def _highwater(consumer: Any, tp: Any) -> int:
    try:
        return int(consumer.highwater(tp) or 0)
    except Exception:  # not fetched yet
        return 0
