"""Local stand-in for the Lambda event source mapping: a Kafka consumer feeding the same core.

Each poll is one batch. By default each poll becomes an event of the MSK shape (records grouped by
"topic-partition", base64 values) and goes to `functions.ingest_kafka.handler.handler(event,
None)`, exactly what Lambda would call. With `KAFKA_APPLY_AHEAD=true` (and no `handler` given) the
poller instead decodes batch N+1 while batch N commits on a thread of its own
(`common.intake.apply_ahead.ApplyAhead`: one batch in flight, batches applied in poll order, each in
one transaction, the same record identities as the handler's). It is off by default: on the
2-core development machine an interleaved A/B showed no gain beyond the run-to-run noise
(docs/performance.md), and off, the local path runs the very handler Lambda runs.

Offsets are committed only after the batch was applied, and exactly the next offset per
partition; when applying raises (PostgreSQL down, lost races beyond the retries) nothing is
committed, the consumer seeks back to the first offset of the batch (and of the one polled after
it) and the batch is retried after a growing, bounded backoff, so no record is ever skipped. A
commit lost after a successful apply only means a redelivery, which the ledger makes a no-op.

Where it reads from is decided here, never silently by the client (`auto_offset_reset` is off):

- no committed offset (a new group; or the topic was deleted, which drops its committed
  offsets): from the beginning of the log;
- an offset outside the log (committed or held beyond the end of a topic created again, or
  before its start after retention): a warning naming topic, partition, position and the log's
  range, then from the beginning;
- a topic deleted and created again while this poller runs keeps the same partitions, so the
  consumer would go on from its old position and skip the new topic's first records. Before each
  batch is applied the topic's id (KIP-516) is compared with the one seen before; on a change
  the batch is dropped and every partition of the topic is read again from its beginning;
- every commit carries the topic id in its metadata, and a partition handed to this poller is
  checked once against it: an offset committed for an earlier topic of that name (a batch in
  flight during the recreation commits onto the new topic) is not resumed from.

Each of these is logged and counted in `warehouse_poller_offset_resets_total{topic,partition,
reason}`. The event carries the cluster's id (`eventSourceArn`), so two clusters with the same
topic names and offsets never look like one to the ledger.

The client connects as `common.adapters.kafka_settings` says (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL;
PLAIN, SCRAM, MSK IAM). Before building a consumer it checks TLS and SASL once itself: a wrong
password puts the poller in state `authentication_failed` with the broker's reason (shown by
/ready), logged once, retried with a growing backoff without building consumers.

Every lag interval the lag per partition is exported (`warehouse_poller_lag`) and upserted
into `consumer_lag` for the console (best effort).

Run standalone with `python -m functions.local_app.poller` (SIGTERM/SIGINT stop it gracefully:
the current batch finishes, its offsets are committed, the consumer leaves the group).

The poller takes its Kafka settings from the `Settings` it is given; the database and cache
come, as for every entry point, from the process-wide configuration.
"""

from __future__ import annotations

import contextlib
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

from common.adapters import kafka_access, observability
from common.adapters import kafka_settings as kafka_client
from common.adapters.config import Settings, get_settings
from common.intake import kafka_records as kafka_batch
from common.intake.apply_ahead import ApplyAhead, ApplyFailed, decode_polled

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
# The consumer_lag upsert waits at most this long for a pooled connection, and for a lock or
# the statement: it is best effort.
LAG_WRITE_POOL_TIMEOUT_SECONDS = 0.5
LAG_WRITE_LIMIT_MS = 500
# States in which the broker refused us; `status` adds the reason to them.
REFUSED_STATES = frozenset(
    {"authentication_failed", "tls_failed", "credentials_unavailable", "access_failed", "configuration_error"}
)
NIL_TOPIC_ID = "00000000-0000-0000-0000-000000000000"
# Commit metadata: the id of the topic the committed offset belongs to.
TOPIC_ID_PREFIX = "topic-id="


def build_event(
    polled: dict[Any, list[Any]], bootstrap_servers: str, cluster_id: str | None = None
) -> dict[str, Any]:
    """One poll as the event Lambda's MSK event source mapping would deliver."""
    return kafka_batch.lambda_event(polled, bootstrap_servers=bootstrap_servers, cluster_id=cluster_id)


def _default_handler() -> Handler:
    # The local app exports metrics through Prometheus; Powertools' EMF lines on stdout after
    # every batch would only be noise there (a deployment can still set it to "false").
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from functions.ingest_kafka.handler import handler

    return handler


class _Missing:
    """Marker: the topic is not in the cluster's metadata (deleted)."""


MISSING = _Missing()


class Poller:
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
        self._handler = handler or (None if self._ahead else _default_handler())
        self._lag_interval = lag_interval
        self._lag_log_interval = lag_log_interval
        self._max_backoff = max_backoff
        self._consumer_config = consumer_config or {}
        self._stop = threading.Event()
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
        finally:
            self.state = "stopping"
            self._close(leave=True)
            if self._ahead is not None:
                self._ahead.close()
            self.state = "stopped"
            logger.info("kafka poller stopped: %d batches, %d records", self.batches, self.records)

    def _describe_security(self) -> str:
        try:
            return kafka_client.describe(self.settings)
        except Exception:  # describing must never stop the start
            return self.settings.kafka_security_protocol

    def _refused(self, state: str, reason: str) -> None:
        """Log why the broker refused us once per distinct reason; later attempts log at DEBUG."""
        self.state_detail = reason
        self.last_error = reason
        if self._refusal_logged != (state, reason):
            self._refusal_logged = (state, reason)
            logger.error(
                "kafka poller cannot connect (%s): %s; retrying with backoff up to %.0fs",
                state,
                reason,
                self._max_backoff,
            )
        else:
            logger.debug("kafka poller still refused (%s): %s", state, reason)

    # --- one iteration --------------------------------------------------------------------------

    def _connect(self) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        if self.state not in REFUSED_STATES:  # a refusal stays visible until a connect succeeds
            self.state = "connecting"
        s = self.settings
        kafka_client.validate(s)  # settings that cannot work are not the broker's fault
        _probe(s.kafka_bootstrap_servers)
        kafka_access.check_access(s)
        tuning: dict[str, Any] = {"reconnect_backoff_max_ms": 5_000, "bootstrap_timeout_ms": 5_000}
        admin = KafkaAdminClient(**kafka_client.admin_config(s, f"{self.client_id}-admin", **tuning))
        try:
            self.cluster_id = _cluster_id(admin)
            config = kafka_client.consumer_config(
                s,
                self.client_id,
                group_id=s.kafka_group_id,
                # Never let the client pick a position silently: see the module docstring.
                auto_offset_reset="none",
                max_poll_records=s.kafka_batch_size,
                fetch_max_bytes=FETCH_MAX_BYTES,
                max_partition_fetch_bytes=max(
                    MIN_PARTITION_FETCH_BYTES, s.kafka_batch_size * FETCH_BYTES_PER_RECORD
                ),
                check_crcs=CHECK_CRCS,
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                # A consumer that joins before the topic's metadata is visible (a topic just
                # created) is assigned nothing until the next metadata refresh: 5 min by default.
                metadata_max_age_ms=METADATA_MAX_AGE_MS,
                # A consumer must not create the topic it reads (brokers default to
                # auto.create.topics.enable=true): a deleted topic would come back at once with
                # the broker's default partitions, before its owner could create it properly.
                allow_auto_create_topics=False,
                **tuning,
                **self._consumer_config,
            )
            consumer = KafkaConsumer(**config)
            kafka_client.disable_topic_auto_creation(consumer)
            consumer.subscribe([s.kafka_topic])
        except BaseException:
            _quietly_close(admin)
            raise
        self._admin = admin
        self._consumer = consumer
        self._lag_checked = 0.0
        if self._refusal_logged is not None:
            logger.info("kafka poller connected after %s", self._refusal_logged[0])
        self._refusal_logged = None
        self.state = "connecting"
        self.state_detail = None
        logger.info(
            "kafka consumer connected to %s (cluster %s, %s)",
            s.kafka_bootstrap_servers,
            self.cluster_id or "id unknown",
            self._describe_security(),
        )

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
        if polled:
            polled = self._verified(polled)
        if self._ahead is not None:
            self._apply_ahead(polled)
        elif polled:
            self._apply(polled)
        self._maybe_report_lag()

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
        """The batch through the Lambda handler, in turn (no apply ahead): commit once it returned."""
        assert self._handler is not None
        event = build_event(polled, self.settings.kafka_bootstrap_servers, self.cluster_id)
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

    # --- where to read from ---------------------------------------------------------------------

    def _reset(self, tp: Any, reason: str, message: str, *args: Any) -> None:
        self.resets.append((tp.topic, tp.partition, reason))
        observability.count_offset_reset(tp.topic, tp.partition, reason)
        logger.warning(message, *args)

    def _log_range(self, partitions: list[Any]) -> dict[Any, tuple[int | None, int | None]]:
        """(first, end) offset of each partition's log, (None, None) when the broker cannot say."""
        try:
            first = self._consumer.beginning_offsets(partitions, timeout_ms=REQUEST_BUDGET_MS)
            end = self._consumer.end_offsets(partitions, timeout_ms=REQUEST_BUDGET_MS)
        except Exception:
            logger.debug("reading the log range failed", exc_info=True)
            return {tp: (None, None) for tp in partitions}
        return {tp: (first.get(tp), end.get(tp)) for tp in partitions}

    def _from_beginning(self, partitions: list[Any], reason: str) -> None:
        """No committed offset: a new group, or a deleted topic's offsets were dropped."""
        if not partitions:
            return
        for tp, (first, end) in self._log_range(partitions).items():
            self.resets.append((tp.topic, tp.partition, reason))
            observability.count_offset_reset(tp.topic, tp.partition, reason)
            # Seen before by this process: the broker dropped the offsets with a deleted topic.
            seen = tp.topic in self._topic_ids
            logger.log(
                logging.WARNING if seen else logging.INFO,
                "kafka %s-%d has no committed offset for group %s%s: reading from the beginning (log %s..%s)",
                tp.topic,
                tp.partition,
                self.settings.kafka_group_id,
                " any more (the topic was deleted and created again?)" if seen else "",
                first,
                end,
            )
        self._consumer.seek_to_beginning(*partitions)

    def _out_of_range(self, positions: dict[Any, int]) -> None:
        """An offset outside the log: beyond its end (topic recreated) or before its start (retention)."""
        if not positions:
            self._consumer.seek_to_beginning(*self._consumer.assignment())
            return
        for tp, (first, end) in self._log_range(list(positions)).items():
            offset = positions[tp]
            if end is not None and offset > end:
                self._reset(
                    tp,
                    "beyond_log_end",
                    "kafka %s-%d: position %d is beyond the log (%s..%s), so the topic was deleted and "
                    "created again: reading the new topic from its beginning, skipping nothing",
                    tp.topic,
                    tp.partition,
                    offset,
                    first,
                    end,
                )
            else:
                self._reset(
                    tp,
                    "before_log_start",
                    "kafka %s-%d: position %d is before the log's start (%s..%s): records below %s were "
                    "deleted by retention before this group read them; reading from the first one left",
                    tp.topic,
                    tp.partition,
                    offset,
                    first,
                    end,
                    first,
                )
        self._consumer.seek_to_beginning(*positions)

    def _truncated(self, divergent: dict[Any, Any]) -> None:
        """The leader's log lost records we read (unclean election): back to the diverging point."""
        for tp, point in divergent.items():
            target = point.offset if point is not None else None
            self._reset(
                tp,
                "log_truncated",
                "kafka %s-%d: the log was truncated below our position; reading again from %s",
                tp.topic,
                tp.partition,
                target if target is not None else "the beginning",
            )
            if target is not None:
                self._consumer.seek(tp, target)
            else:
                self._consumer.seek_to_beginning(tp)

    def _verified(self, polled: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
        """The polled records whose topic is still the one seen before (by topic id).

        A topic deleted and created again keeps its name and partitions but gets a new id; its
        records fetched from a stale position are dropped and the topic read from its beginning.
        """
        if self._admin is None:
            return polled
        topics = {tp.topic for tp in polled}
        # Partitions handed to us since the last look resume from a committed offset: check it.
        self._checked &= set(self._consumer.assignment())
        try:
            current = _topic_ids(self._admin, topics)
            unchecked = [
                tp for tp in polled if tp not in self._checked and isinstance(current.get(tp.topic), str)
            ]
            committed_for = self._committed_topic_ids(unchecked) if unchecked else {}
        except Exception:
            self._rewind(polled)  # nothing of this batch may be skipped
            raise
        kept: dict[Any, list[Any]] = {}
        for topic in topics:
            mine = {tp: batch for tp, batch in polled.items() if tp.topic == topic}
            now = current.get(topic)
            if now is MISSING:
                logger.warning(
                    "kafka topic %s is not in the cluster's metadata (deleted?): holding its records", topic
                )
                self._rewind(mine)
                continue
            if now is None:  # a broker without topic ids (before Kafka 2.8): cannot tell
                kept.update(mine)
                continue
            known = self._topic_ids.get(topic)
            if known is not None and known != now:
                self._recreated(topic, known, str(now), mine)
                continue
            self._topic_ids[topic] = str(now)
            for tp in [tp for tp in mine if committed_for.get(tp) not in (None, now)]:
                self._stale_commit(tp, str(committed_for[tp]), str(now), mine.pop(tp))
            self._checked.update(mine)
            kept.update(mine)
        return kept

    def _committed_topic_ids(self, partitions: list[Any]) -> dict[Any, str | None]:
        """The topic id each partition's committed offset was committed for (None: not recorded)."""
        group = self.settings.kafka_group_id
        answer = self._admin.list_group_offsets({group: partitions}).get(group, {})
        found: dict[Any, str | None] = {}
        for tp in partitions:
            meta = answer.get(tp)
            text = getattr(meta, "metadata", None) or ""
            found[tp] = text[len(TOPIC_ID_PREFIX) :] if text.startswith(TOPIC_ID_PREFIX) else None
        return found

    def _stale_commit(self, tp: Any, committed_id: str, now: str, batch: list[Any]) -> None:
        at = batch[0].offset if batch else None
        first, end = self._log_range([tp]).get(tp, (None, None))
        self._reset(
            tp,
            "topic_recreated",
            "kafka %s-%d: the group's committed offset %s was committed for an earlier topic of that name "
            "(id %s, now %s: it was deleted and created again); dropping the %d record(s) fetched and "
            "reading the new topic from its beginning (log %s..%s), skipping nothing",
            tp.topic,
            tp.partition,
            at,
            committed_id,
            now,
            len(batch),
            first,
            end,
        )
        self._consumer.seek_to_beginning(tp)
        self._checked.add(tp)

    def _recreated(self, topic: str, old_id: str, new_id: str, polled: dict[Any, list[Any]]) -> None:
        assigned = [tp for tp in self._consumer.assignment() if tp.topic == topic]
        ranges = self._log_range(assigned)
        for tp in assigned:
            batch = polled.get(tp)
            at = batch[0].offset if batch else None
            first, end = ranges.get(tp, (None, None))
            self._reset(
                tp,
                "topic_recreated",
                "kafka topic %s was deleted and created again (id %s -> %s): partition %d was read from "
                "offset %s, the new log is %s..%s; dropping the %d record(s) fetched and reading the new "
                "topic from its beginning, skipping nothing",
                topic,
                old_id,
                new_id,
                tp.partition,
                at,
                first,
                end,
                len(batch or []),
            )
        self._topic_ids[topic] = new_id
        if assigned:
            self._consumer.seek_to_beginning(*assigned)
            self._checked.update(assigned)

    # --- lag --------------------------------------------------------------------------------------

    def _maybe_report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_checked < self._lag_interval:
            return
        self._lag_checked = now
        consumer = self._consumer
        partitions = list(consumer.assignment())
        by_partition: dict[str, int] = {}
        rows: list[tuple[str, int, int | None, int, int]] = []
        if partitions:
            ends = consumer.end_offsets(partitions, timeout_ms=REQUEST_BUDGET_MS)
            committed = self._committed(partitions)
            for tp in partitions:
                # The fetch position is the next offset to apply: poll() moves it past what it
                # returned, a commit follows each applied batch, a failed batch seeks it back.
                position = _position(consumer, tp)
                end = ends.get(tp, position if position is not None else 0)
                by_partition[f"{tp.topic}-{tp.partition}"] = max(
                    0, end - (position if position is not None else end)
                )
                done = committed.get(tp)
                behind = max(0, end - (done if done is not None else position if position is not None else 0))
                rows.append((tp.topic, tp.partition, done, end, behind))
        self.lag_by_partition = by_partition
        self.lag = sum(by_partition.values())
        if self.state in ("connecting", "disconnected"):  # the broker answered; "retrying" is the DB
            self._set_running()
        observability.set_poller_lag(self.lag)
        if rows:
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

    def _write_lag(self, rows: list[tuple[str, int, int | None, int, int]]) -> None:
        """Upsert this poller's view of its partitions into `consumer_lag`; never raises."""
        try:
            from common.adapters.db import get_pool

            with get_pool().connection(timeout=LAG_WRITE_POOL_TIMEOUT_SECONDS) as conn:
                # Bounded: a locked or slow table must not hold the loop (the pool sets no limits).
                conn.execute(
                    "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                    (f"{LAG_WRITE_LIMIT_MS}ms", f"{LAG_WRITE_LIMIT_MS}ms"),
                )
                conn.execute(
                    """
                    INSERT INTO consumer_lag (group_id, topic, partition, committed_offset, end_offset,
                                              lag, consumer, reported_at)
                    SELECT %s, t, p, c, e, l, %s, now()
                    FROM unnest(%s::text[], %s::int4[], %s::int8[], %s::int8[], %s::int8[])
                         AS v(t, p, c, e, l)
                    ON CONFLICT (group_id, topic, partition) DO UPDATE SET
                        committed_offset = EXCLUDED.committed_offset, end_offset = EXCLUDED.end_offset,
                        lag = EXCLUDED.lag, consumer = EXCLUDED.consumer, reported_at = EXCLUDED.reported_at
                    """,
                    (
                        self.settings.kafka_group_id,
                        self.consumer_name,
                        [r[0] for r in rows],
                        [r[1] for r in rows],
                        [r[2] for r in rows],
                        [r[3] for r in rows],
                        [r[4] for r in rows],
                    ),
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
        if consumer is not None:
            try:
                # close() sends LeaveGroup (dynamic membership), so the partitions move at once
                # instead of after the session timeout; offsets were committed batch by batch.
                consumer.close(autocommit=False, timeout_ms=REQUEST_BUDGET_MS if leave else 2_000)
            except Exception:
                logger.warning("closing the kafka consumer failed", exc_info=True)
        if admin is not None:
            _quietly_close(admin)


def _partitions_of(exc: Exception) -> list[Any]:
    arg = exc.args[0] if exc.args else ()
    return list(arg) if isinstance(arg, set | frozenset | list | tuple | dict) else []


def _position(consumer: Any, tp: Any) -> int | None:
    try:
        position = consumer.position(tp, timeout_ms=REQUEST_BUDGET_MS)
        return int(position) if position is not None else None
    except Exception:  # no position yet (awaiting a reset): no lag to report for it
        return None


def _cluster_id(admin: Any) -> str | None:
    try:
        cluster_id = admin.describe_cluster().get("cluster_id")
    except Exception:
        logger.warning("the cluster id is unknown; records are identified by the bootstrap servers")
        return None
    return str(cluster_id) if cluster_id else None


def _topic_ids(admin: Any, topics: set[str]) -> dict[str, str | _Missing | None]:
    """Each topic's id (KIP-516); MISSING when the broker does not know the topic, None without ids."""
    import kafka.errors as errors

    found: dict[str, str | _Missing | None] = {}
    for meta in admin.describe_topics(sorted(topics)):
        name = meta.get("name")
        error = errors.for_code(meta.get("error_code") or 0)
        if error is errors.UnknownTopicOrPartitionError:
            found[name] = MISSING
        elif error is not errors.NoError:
            raise error(f"describing topic {name} failed")
        else:
            topic_id = meta.get("topic_id")
            text = str(topic_id) if topic_id is not None else None
            found[name] = None if text in (None, NIL_TOPIC_ID) else text
    return found


def _quietly_close(client: Any) -> None:
    try:
        client.close()
    except Exception:
        logger.debug("closing a kafka client failed", exc_info=True)


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
    try:
        kafka_client.validate(settings)
    except kafka_client.KafkaClientConfigError as exc:
        logger.error("%s", exc)
        return 2
    poller = Poller(settings)

    def _on_signal(signum: int, _frame: object) -> None:
        logger.info("signal %s received, stopping after the current batch", signal.Signals(signum).name)
        poller.request_stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    poller.run()
    from common.adapters.db import close_pool
    from common.dead_letters.outbox import close_producer

    close_producer()
    close_pool()
    return 0


__all__ = ["Poller", "build_event", "main"]


if __name__ == "__main__":
    sys.exit(main())
