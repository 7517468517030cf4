"""The consume-apply-commit loop: the Poller, in a thread of its own or the caller's."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from common.adapters import consumer_lag, observability
from common.adapters import kafka_settings as kafka_client
from common.adapters.config import Settings
from common.intake import kafka_records as kafka_batch
from common.intake.apply_ahead import ApplyAhead, ApplyFailed, decode_polled
from functions.local_app.poller.consumer import (
    REFUSED_STATES,
    REQUEST_BUDGET_MS,
    TOPIC_ID_PREFIX,
    ConsumerMixin,
    _partitions_of,
    _quietly_close,
)
from functions.local_app.poller.control import ControlMixin, Pause
from functions.local_app.poller.garbage import BetweenBatches
from functions.local_app.poller.lag import LagMixin
from functions.local_app.poller.positions import PositionsMixin
from functions.local_app.poller.undecodable import UndecodableBatch

logger = logging.getLogger("functions.local_app.poller")  # one logger for the package

Handler = Callable[[dict[str, Any], Any], Any]


def build_event(
    polled: dict[Any, list[Any]], bootstrap_servers: str, cluster_id: str | None = None
) -> dict[str, Any]:
    """One poll as the event Lambda's MSK event source mapping would deliver."""
    return kafka_batch.lambda_event(polled, bootstrap_servers=bootstrap_servers, cluster_id=cluster_id)


class Poller(ConsumerMixin, PositionsMixin, LagMixin, ControlMixin):
    """The consume-apply-commit loop, in a daemon thread (`start`) or the caller's (`run`).

    `state` is one of: created, connecting, running, disconnected (the broker is unreachable),
    retrying (the handler keeps failing: nothing is committed until it succeeds),
    authentication_failed / tls_failed / credentials_unavailable / configuration_error (the
    broker refused us or the settings cannot work: `state_detail` says why), stopping, stopped.
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
        observability.enable_prometheus()  # the poller's counters, whichever process runs it
        self.settings = settings
        # Apply ahead when asked for, unless a handler is given (tests give one to script it).
        self._ahead = ApplyAhead() if handler is None and settings.kafka_apply_ahead else None
        # None: the batch goes to the ledger straight from the client's records (no MSK event).
        self._handler = handler
        self._lag_interval = lag_interval
        self._lag_log_interval = lag_log_interval
        self._max_backoff = max_backoff
        self._consumer_config = consumer_config or {}
        self._stop = threading.Event()
        self.stopped = threading.Event()  # set once `run` has closed everything
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self._admin: Any = None
        self._lag_checked = 0.0
        self._lag_logged = 0.0
        self._refusal_logged: tuple[str, str] | None = None
        # Topic ids seen so far, kept across reconnects: a change means the topic was recreated.
        self._topic_ids: dict[str, str] = {}
        # Assigned partitions whose committed offset was checked against the topic id.
        self._checked: set[Any] = set()
        self._lag_write_failing = False
        self.client_id = f"warehouse-poller-{socket.gethostname()}-{os.getpid()}"
        self.consumer_name = f"{socket.gethostname()}:{os.getpid()}"
        self.state = "created"
        self.state_detail: str | None = None
        self.cluster_id: str | None = None
        self.lag: int | None = None
        self.lag_by_partition: dict[str, int] = {}
        self.batches = 0
        self.records = 0
        self.failures = 0
        self.last_error: str | None = None
        # (topic, partition, reason) of every re-positioning, oldest first (also a metric).
        self.resets: list[tuple[str, int, str]] = []
        # Partitions paused on a batch this poller cannot decode, until an operator answers.
        self.paused: dict[Any, Pause] = {}
        self.last_loop_at: datetime | None = None
        self._commands_checked = 0.0
        self._heartbeat_at = 0.0
        # Set by the standalone poller's start-up only (`__main__.prepare`): garbage collected
        # between batches instead of during them (process-wide, so never inside another app).
        self.garbage: BetweenBatches | None = None

    @property
    def status(self) -> str:
        """The state, with the reason when the broker refused us: what /ready shows."""
        if self.state in REFUSED_STATES and self.state_detail:
            return f"{self.state}: {self.state_detail}"
        return self.state

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
            "kafka poller starting: topic=%s group=%s batch=%d poll_timeout_ms=%d security=%s",
            self.settings.kafka_topic,
            self.settings.kafka_group_id,
            self.settings.kafka_batch_size,
            self.settings.kafka_poll_timeout_ms,
            self._describe_security(),
        )
        failures = 0
        if self.garbage is not None:
            self.garbage.start()
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
                except kafka_client.KafkaClientConfigError as exc:
                    failures += 1
                    self._refused("configuration_error", str(exc))
                    self._backoff(failures, "configuration_error", quiet=True)
                except kafka_client.KafkaAccessError as exc:
                    failures += 1
                    self._close(leave=False)
                    self._refused(exc.state, str(exc))
                    self._backoff(failures, exc.state, quiet=True)
                except Exception as exc:  # the loop must survive anything the broker throws
                    failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    logger.warning("kafka poller error (%d in a row): %s", failures, self.last_error)
                    if failures >= 5 and self._consumer is not None:
                        # kafka-python reconnects by itself; a consumer failing this often is
                        # rebuilt, restarting from the committed offsets.
                        self._close(leave=False)
                    self._backoff(failures, "disconnected")
                self._loop_finished()  # the watchdog's heartbeat, failed iterations included
                if self.garbage is not None:
                    self.garbage.after_iteration()
        finally:
            if self.garbage is not None:
                self.garbage.stop()
            self.state = "stopping"
            self._close(leave=True)
            self._forget_poller()
            if self._ahead is not None:
                self._ahead.close()
            self.state = "stopped"
            self.stopped.set()
            logger.info("kafka poller stopped: %d batches, %d records", self.batches, self.records)

    def _step(self) -> None:
        import kafka.errors as errors

        consumer = self._consumer
        try:
            polled = consumer.poll(
                timeout_ms=self.settings.kafka_poll_timeout_ms, max_records=self.settings.kafka_batch_size
            )
        except errors.NoOffsetForPartitionError as exc:
            self._finish_in_flight()  # re-positioning happens with nothing in flight, as in turn
            self._from_beginning(_partitions_of(exc), "no_committed_offset")
            return
        except errors.OffsetOutOfRangeError as exc:
            self._finish_in_flight()
            self._out_of_range(exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {})
            return
        except errors.LogTruncationError as exc:
            self._finish_in_flight()
            self._truncated(exc.divergent_offsets)
            return
        except UndecodableBatch as exc:  # that partition stops; the others go on
            self._pause(exc)
            self._maybe_report_lag()
            return
        if polled:
            polled = self._verified(polled)
        if self._ahead is not None:
            self._apply_ahead(polled)
        elif polled:
            self._apply(polled)
        # Every lag interval the commands for partitions held but not paused are answered too.
        self._maybe_obey(force=self._maybe_report_lag())

    def _apply_ahead(self, polled: dict[Any, list[Any]]) -> None:
        """Decode this poll while the batch in flight commits; then commit that one, submit this one."""
        assert self._ahead is not None
        decoded = decode_polled(polled, self._record_cluster()) if polled else None
        # The offsets (with the topic ids) as of now: a recreation seen later must not relabel them.
        offsets = self._commit_offsets(polled) if polled else {}
        self._finish_in_flight(polled_since=polled)
        if decoded is not None:
            self._ahead.submit(decoded, token=(polled, offsets))

    def _record_cluster(self) -> str | None:
        """The cluster name record identities carry: the one the handler derives from our events."""
        return kafka_batch.cluster_of(build_event({}, self.settings.kafka_bootstrap_servers, self.cluster_id))

    def _finish_in_flight(self, polled_since: dict[Any, list[Any]] | None = None) -> None:
        """Wait for the batch in flight and commit its offsets.

        If it failed, nothing of it was applied: its partitions, and those of `polled_since` (polled
        after it, never applied), are read again from their first records; `_BatchFailed`.
        """
        if self._ahead is None:
            return
        try:
            finished = self._ahead.wait()
        except ApplyFailed as failed:
            polled, _ = failed.token
            self.failures += 1
            self.last_error = str(failed)
            logger.warning(
                "kafka batch of %d records failed, will retry from the same offsets: %s",
                sum(len(b) for b in polled.values()),
                self.last_error,
            )
            if polled_since:
                self._rewind(polled_since)
            self._rewind(polled)  # last: where a partition is in both, its earlier offset wins
            raise _BatchFailed from failed.cause
        if finished is None:
            return
        polled, offsets = finished.token
        self.batches += 1
        self.records += sum(len(b) for b in polled.values())
        self._commit(offsets)

    def _apply(self, polled: dict[Any, list[Any]]) -> None:
        """The batch applied in turn (no apply ahead): commit once it was.

        Straight from the client's records (`kafka_records.ingest_consumer_records`: the same
        record-level step as the Lambda handler's, without building an MSK event and decoding
        its base64 again); through `handler` with the MSK-shaped event when one was given.
        """
        try:
            if self._handler is not None:
                self._handler(
                    build_event(polled, self.settings.kafka_bootstrap_servers, self.cluster_id), None
                )
            else:
                result = kafka_batch.ingest_consumer_records(polled, self._record_cluster())
                if logger.isEnabledFor(logging.DEBUG):  # the summary walks the batch: only when logged
                    logger.debug("kafka batch applied: %s", result.summary())
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
        self._commit(offsets)

    def _commit(self, offsets: dict[Any, Any]) -> None:
        try:
            self._consumer.commit(offsets=offsets, timeout_ms=REQUEST_BUDGET_MS)
        except Exception as exc:
            # The batch is applied; losing the commit only means a harmless redelivery.
            logger.warning("offset commit failed after a successful batch (will be redelivered): %s", exc)
        self._set_running()

    def _set_running(self) -> None:
        if self.state != "running":
            logger.info("kafka poller running (was %s)", self.state)
            self.state = "running"
            self.state_detail = None

    def _commit_offsets(self, polled: dict[Any, list[Any]]) -> dict[Any, Any]:
        """Exactly the next offset to read per partition of the batch, with the topic's id.

        The id in the commit's metadata lets whoever resumes from it (this poller restarted,
        another member after a rebalance) tell whether it was committed for the topic that now
        has this name: a commit can land on a recreated topic while its batch was in flight.
        """
        from kafka.structs import OffsetAndMetadata

        offsets = {}
        for tp, batch in polled.items():
            if batch:
                last = batch[-1]
                epoch = last.leader_epoch if last.leader_epoch is not None else -1
                topic_id = self._topic_ids.get(tp.topic)
                metadata = f"{TOPIC_ID_PREFIX}{topic_id}" if topic_id else ""
                offsets[tp] = OffsetAndMetadata(last.offset + 1, metadata, epoch)
        return offsets

    def _commit_offsets_at(self, tp: Any, offset: int) -> None:
        """Commit `offset` for one partition (a skipped batch), with the topic's id."""
        from kafka.structs import OffsetAndMetadata

        topic_id = self._topic_ids.get(tp.topic)
        metadata = f"{TOPIC_ID_PREFIX}{topic_id}" if topic_id else ""
        self._commit({tp: OffsetAndMetadata(offset, metadata, -1)})

    def _forget_poller(self) -> None:
        """A clean stop: this poller is no longer reported by /ready (best effort)."""
        try:
            from common.adapters.db import get_pool

            with get_pool().connection(timeout=0.5) as conn:
                consumer_lag.forget_poller(conn, self.consumer_name)
        except Exception:
            logger.debug("forgetting the poller's status row failed", exc_info=True)

    def _rewind(self, polled: dict[Any, list[Any]]) -> None:
        """Seek every partition of a failed batch back to its first record."""
        if self._consumer is None:  # closed meanwhile: a new consumer resumes from the commits
            return
        try:
            for tp, batch in polled.items():
                if batch:
                    self._consumer.seek(tp, batch[0].offset)
        except Exception:
            # Without the seek the next poll would skip the batch: rebuild the consumer so it
            # resumes from the committed offsets instead.
            logger.exception("seeking back failed; reconnecting from the committed offsets")
            self._close(leave=False)

    def _backoff(self, failures: int, state: str, *, quiet: bool = False) -> None:
        self.state = state
        delay = min(0.25 * 2 ** min(failures - 1, 10), self._max_backoff)
        logger.log(
            logging.DEBUG if quiet else logging.INFO,
            "kafka poller %s: attempt %d, next in %.2fs",
            state,
            failures,
            delay,
        )
        self._stop.wait(delay)

    def _close(self, *, leave: bool) -> None:
        """Close the consumer; a graceful close leaves the group so partitions move at once."""
        if self._ahead is not None and self._ahead.busy and self._consumer is not None:
            # The batch in flight is committed first; a failed one is not: it comes again to
            # whoever owns its partitions next.
            with contextlib.suppress(_BatchFailed):
                self._finish_in_flight()
        consumer, self._consumer = self._consumer, None
        admin, self._admin = self._admin, None
        self._checked = set()  # a new consumer resumes from committed offsets: check them again
        self._forget_pauses()
        if consumer is not None:
            try:
                # close() sends LeaveGroup (dynamic membership), so the partitions move at once
                # instead of after the session timeout; offsets were committed batch by batch.
                consumer.close(autocommit=False, timeout_ms=REQUEST_BUDGET_MS if leave else 2_000)
            except Exception:
                logger.warning("closing the kafka consumer failed", exc_info=True)
        if admin is not None:
            _quietly_close(admin)


class _BatchFailed(Exception):
    """The handler raised: the batch was rewound and will be retried."""
