"""Local stand-in for the Lambda event source mapping: a Kafka consumer feeding the same handler.

Each poll becomes an event of the MSK shape (records grouped by "topic-partition", base64
values) and goes to `functions.ingest_kafka.handler.handler(event, None)`, exactly what Lambda
would call. Offsets are committed only after the handler returned, and exactly the next offset
per partition; when the handler raises (PostgreSQL down, lost races beyond the retries) nothing is
committed, the consumer seeks back to the first offset of the batch and the batch is retried
after a growing, bounded backoff, so no record is ever skipped. A commit lost after a successful
apply only means a redelivery, which the ledger makes a no-op.

Run standalone with `python -m functions.local_app.poller` (SIGTERM/SIGINT stop it gracefully:
the current batch finishes, its offsets are committed, the consumer leaves the group).

The poller takes its Kafka settings from the `Settings` it is given; the database and cache
come, as for every entry point, from the process-wide configuration.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from common import observability
from common.config import Settings, get_settings

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

# Fetch sizing so a poll of `kafka_batch_size` records is full: an envelope is ~0.5 KB, so 1 KiB
# per record of the batch per partition (at least kafka-python's 1 MiB default). Measured on 20,000
# events (a busy 2-CPU machine, so roughly): 256 KiB per partition was ~30% slower (polls wait for
# fetches); 4 MiB was no faster than 1 MiB and makes the first fetch bigger to decode.
FETCH_BYTES_PER_RECORD = 1024
MIN_PARTITION_FETCH_BYTES = 1024 * 1024
FETCH_MAX_BYTES = 50 * 1024 * 1024
# A killed poller's partitions are handed over after this long (the broker's minimum is 6 s);
# heartbeats come from a background thread, so a slow batch does not expire the session.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 2_000
# kafka-python checks record-batch CRCs in pure Python (~1 MB/s) unless the `crc32c` C module is
# installed: that alone would cost more than applying the batch. Without the module the check is
# skipped; the broker validated the CRC when the batch was produced and TCP checksums the wire.
CHECK_CRCS = importlib.util.find_spec("crc32c") is not None
METADATA_MAX_AGE_MS = 10_000
# How long a single broker request (commit, end offsets, close) may block the loop.
REQUEST_BUDGET_MS = 10_000


def _timestamp_type(code: int | None) -> str:
    return "LOG_APPEND_TIME" if code == 1 else "CREATE_TIME"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_event(polled: dict[Any, list[Any]], bootstrap_servers: str) -> dict[str, Any]:
    """One poll as the event Lambda's MSK event source mapping would deliver."""
    records: dict[str, list[dict[str, Any]]] = {}
    for tp, batch in polled.items():
        chunk = records.setdefault(f"{tp.topic}-{tp.partition}", [])
        for r in batch:
            item: dict[str, Any] = {
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp,
                "timestampType": _timestamp_type(r.timestamp_type),
                "headers": [{k: list(v or b"")} for k, v in (r.headers or [])],
            }
            if r.key is not None:
                item["key"] = _b64(r.key)
            if r.value is not None:  # a tombstone has no value, as in Lambda's events
                item["value"] = _b64(r.value)
            chunk.append(item)
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:local:000000000000:cluster/local-poller/0",
        "bootstrapServers": bootstrap_servers,
        "records": records,
    }


def _default_handler() -> Handler:
    # The local app exports metrics through Prometheus; Powertools' EMF lines on stdout after
    # every batch would only be noise there (a deployment can still set it to "false").
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from functions.ingest_kafka.handler import handler

    return handler


class Poller:
    """The consume-apply-commit loop, in a daemon thread (`start`) or the caller's (`run`).

    `state` is one of: created, connecting, running, disconnected (the broker is unreachable),
    retrying (the handler keeps failing: nothing is committed until it succeeds), stopping,
    stopped.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        handler: Handler | None = None,
        lag_interval: float = 5.0,
        lag_log_interval: float = 30.0,
        max_backoff: float = 30.0,
        consumer_config: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self._handler = handler or _default_handler()
        self._lag_interval = lag_interval
        self._lag_log_interval = lag_log_interval
        self._max_backoff = max_backoff
        self._consumer_config = consumer_config or {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self._lag_checked = 0.0
        self._lag_logged = 0.0
        self.state = "created"
        self.lag: int | None = None
        self.lag_by_partition: dict[str, int] = {}
        self.batches = 0
        self.records = 0
        self.failures = 0
        self.last_error: str | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop in a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="kafka-poller", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to stop after the current batch (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish the current batch, commit it, leave the group; False if still running after `timeout`."""
        self.request_stop()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """The loop; returns once a stop was requested and the consumer is closed."""
        logger.info(
            "kafka poller starting: topic=%s group=%s batch=%d poll_timeout_ms=%d",
            self.settings.kafka_topic,
            self.settings.kafka_group_id,
            self.settings.kafka_batch_size,
            self.settings.kafka_poll_timeout_ms,
        )
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    if self._consumer is None:
                        self._connect()
                    self._step()
                    failures = 0
                except _BatchFailed:
                    failures += 1
                    self._backoff(failures, "retrying")
                except Exception as exc:  # the loop must survive anything the broker throws
                    failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    logger.warning("kafka poller error (%d in a row): %s", failures, self.last_error)
                    if failures >= 5 and self._consumer is not None:
                        # kafka-python reconnects by itself; a consumer failing this often is
                        # rebuilt, restarting from the committed offsets.
                        self._close(leave=False)
                    self._backoff(failures, "disconnected")
        finally:
            self.state = "stopping"
            self._close(leave=True)
            self.state = "stopped"
            logger.info("kafka poller stopped: %d batches, %d records", self.batches, self.records)

    # --- one iteration --------------------------------------------------------------------------

    def _connect(self) -> None:
        from kafka import KafkaConsumer

        self.state = "connecting"
        s = self.settings
        _probe(s.kafka_bootstrap_servers)
        config: dict[str, Any] = {
            "bootstrap_servers": s.kafka_bootstrap_servers.split(","),
            "group_id": s.kafka_group_id,
            "client_id": f"warehouse-poller-{socket.gethostname()}-{os.getpid()}",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": s.kafka_batch_size,
            "fetch_max_bytes": FETCH_MAX_BYTES,
            "max_partition_fetch_bytes": max(
                MIN_PARTITION_FETCH_BYTES, s.kafka_batch_size * FETCH_BYTES_PER_RECORD
            ),
            "check_crcs": CHECK_CRCS,
            "session_timeout_ms": SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
            "reconnect_backoff_max_ms": 5_000,
            "bootstrap_timeout_ms": 5_000,
            # A consumer that joins before the topic's metadata is visible (a topic just created)
            # is assigned nothing until the next metadata refresh: 5 min by default, 10 s here.
            "metadata_max_age_ms": METADATA_MAX_AGE_MS,
        }
        config.update(self._consumer_config)
        consumer = KafkaConsumer(**config)
        consumer.subscribe([s.kafka_topic])
        self._consumer = consumer
        self._lag_checked = 0.0
        logger.info("kafka consumer connected to %s", s.kafka_bootstrap_servers)

    def _step(self) -> None:
        consumer = self._consumer
        polled = consumer.poll(
            timeout_ms=self.settings.kafka_poll_timeout_ms, max_records=self.settings.kafka_batch_size
        )
        if polled:
            self._apply(polled)
        self._maybe_report_lag()

    def _apply(self, polled: dict[Any, list[Any]]) -> None:
        consumer = self._consumer
        event = build_event(polled, self.settings.kafka_bootstrap_servers)
        try:
            self._handler(event, None)
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "kafka batch of %d records failed, will retry from the same offsets: %s",
                sum(len(b) for b in polled.values()),
                self.last_error,
            )
            self._rewind(polled)
            raise _BatchFailed from exc
        offsets = self._commit_offsets(polled)
        self.batches += 1
        self.records += sum(len(b) for b in polled.values())
        try:
            consumer.commit(offsets=offsets, timeout_ms=REQUEST_BUDGET_MS)
        except Exception as exc:
            # The batch is applied; losing the commit only means a harmless redelivery.
            logger.warning("offset commit failed after a successful batch (will be redelivered): %s", exc)
        self._set_running()

    def _set_running(self) -> None:
        if self.state != "running":
            logger.info("kafka poller running (was %s)", self.state)
            self.state = "running"

    @staticmethod
    def _commit_offsets(polled: dict[Any, list[Any]]) -> dict[Any, Any]:
        """Exactly the next offset to read per partition of the batch."""
        from kafka.structs import OffsetAndMetadata

        offsets = {}
        for tp, batch in polled.items():
            if batch:
                last = batch[-1]
                epoch = last.leader_epoch if last.leader_epoch is not None else -1
                offsets[tp] = OffsetAndMetadata(last.offset + 1, "", epoch)
        return offsets

    def _rewind(self, polled: dict[Any, list[Any]]) -> None:
        """Seek every partition of a failed batch back to its first record."""
        try:
            for tp, batch in polled.items():
                if batch:
                    self._consumer.seek(tp, batch[0].offset)
        except Exception:
            # Without the seek the next poll would skip the batch: rebuild the consumer so it
            # resumes from the committed offsets instead.
            logger.exception("seeking back failed; reconnecting from the committed offsets")
            self._close(leave=False)

    def _backoff(self, failures: int, state: str) -> None:
        self.state = state
        delay = min(0.25 * 2 ** min(failures - 1, 10), self._max_backoff)
        logger.info("kafka poller %s: attempt %d, next in %.2fs", state, failures, delay)
        self._stop.wait(delay)

    # --- lag --------------------------------------------------------------------------------------

    def _maybe_report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_checked < self._lag_interval:
            return
        self._lag_checked = now
        consumer = self._consumer
        partitions = list(consumer.assignment())
        by_partition: dict[str, int] = {}
        if partitions:
            ends = consumer.end_offsets(partitions, timeout_ms=REQUEST_BUDGET_MS)
            for tp in partitions:
                # The fetch position is the next offset to apply: poll() moves it past what it
                # returned, a commit follows each applied batch, a failed batch seeks it back.
                position = consumer.position(tp, timeout_ms=REQUEST_BUDGET_MS) or 0
                by_partition[f"{tp.topic}-{tp.partition}"] = max(0, ends.get(tp, position) - position)
        self.lag_by_partition = by_partition
        self.lag = sum(by_partition.values())
        if self.state in ("connecting", "disconnected"):  # the broker answered; "retrying" is the DB
            self._set_running()
        observability.set_poller_lag(self.lag)
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

    def _close(self, *, leave: bool) -> None:
        """Close the consumer; a graceful close leaves the group so partitions move at once."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            # close() sends LeaveGroup (dynamic membership), so the partitions move at once
            # instead of after the session timeout; offsets were committed batch by batch.
            consumer.close(autocommit=False, timeout_ms=REQUEST_BUDGET_MS if leave else 2_000)
        except Exception:
            logger.warning("closing the kafka consumer failed", exc_info=True)


def _probe(bootstrap_servers: str, timeout: float = 2.0) -> None:
    """Fail fast, without building a consumer, while no bootstrap server accepts connections.

    A KafkaConsumer whose bootstrap fails in its constructor leaves its IO thread behind, so a
    long outage retried by constructing consumers would pile threads up.
    """
    errors = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]") or "localhost", int(port or 9092)), timeout).close()
            return
        except OSError as exc:
            errors.append(f"{server}: {exc}")
    raise ConnectionError("no Kafka bootstrap server reachable: " + "; ".join(errors))


class _BatchFailed(Exception):
    """The handler raised: the batch was rewound and will be retried."""


def main() -> int:
    """Standalone poller: `python -m functions.local_app.poller`."""
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    poller = Poller(settings)

    def _on_signal(signum: int, _frame: object) -> None:
        logger.info("signal %s received, stopping after the current batch", signal.Signals(signum).name)
        poller.request_stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    poller.run()
    from common.db import close_pool
    from common.outbox import close_producer

    close_producer()
    close_pool()
    return 0


if __name__ == "__main__":
    sys.exit(main())
