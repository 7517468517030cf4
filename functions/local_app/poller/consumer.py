"""Connecting: the kafka-python consumer and admin client a poller reads with, and closing them."""

from __future__ import annotations

import importlib.util
import logging
import socket
from typing import Any

from common.adapters import kafka_access
from common.adapters import kafka_settings as kafka_client
from common.adapters.config import Settings
from functions.local_app.poller import undecodable

logger = logging.getLogger("functions.local_app.poller")  # one logger for the package

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
# States in which the broker refused us; `status` adds the reason to them.
REFUSED_STATES = frozenset(
    {"authentication_failed", "tls_failed", "credentials_unavailable", "access_failed", "configuration_error"}
)
NIL_TOPIC_ID = "00000000-0000-0000-0000-000000000000"
# Commit metadata: the id of the topic the committed offset belongs to.
TOPIC_ID_PREFIX = "topic-id="


class _Missing:
    """Marker: the topic is not in the cluster's metadata (deleted)."""


MISSING = _Missing()


class ConsumerMixin:
    """The Poller's connecting half: builds the consumer and admin client, reports refusals."""

    settings: Settings
    client_id: str
    cluster_id: str | None
    state: str
    state_detail: str | None
    last_error: str | None
    _consumer: Any
    _admin: Any
    _consumer_config: dict[str, Any]
    _lag_checked: float
    _refusal_logged: tuple[str, str] | None
    _max_backoff: float

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
            undecodable.guard(consumer)  # a batch it cannot decode pauses its partition, no spin
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
