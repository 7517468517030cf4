"""Kafka client settings for every client the service builds itself, from one place.

The local poller's consumer and admin client, the dead-letter producer and the re-drive's
consumer all connect with the keyword arguments built here from `Settings`
(`KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*`, `KAFKA_SSL_*`, `KAFKA_AWS_REGION`), so they cannot
disagree on how to reach the cluster. The event source mapping in AWS has its own settings in
template.yaml and does not use this module.

- PLAIN and SCRAM credentials come from `KAFKA_SASL_USERNAME`/`KAFKA_SASL_PASSWORD` or from the
  Secrets Manager secret `KAFKA_SASL_SECRET_ARN` (`{"username", "password"}`, the format the
  event source mapping reads too), through Powertools Parameters with the same 300 s cache as the
  database secret: a rotated password reaches the next connection within five minutes.
- OAUTHBEARER is Amazon MSK IAM: tokens are signed with the process's AWS credentials by
  aws-msk-iam-sasl-signer-python and reused until a minute before they expire.
- TLS uses one `ssl.SSLContext` built here (CA bundle, optional client certificate, host name
  check), so a missing or unreadable file stops the start naming its variable, instead of every
  connection failing later.

Credentials are never logged and never part of an exception message; `describe` gives a line
that is safe to log.

`check_access` connects to a bootstrap server the way the clients will and authenticates once.
It exists because kafka-python 3.0 mostly loses the broker's answer to a failed authentication:
the broker sends the error together with closing the connection (after
`connection.failed.authentication.delay.ms`), and the client reads the close first, so a wrong
password looks like "socket disconnected" / "Unable to bootstrap". Asked directly, the broker's
message ("Authentication failed during authentication due to invalid credentials with SASL
mechanism SCRAM-SHA-512") reaches the log and /ready.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kafka.net.sasl.oauth import AbstractTokenProvider

from common.config import ConfigError, Settings

# kafka-python's protocol parser logs every frame at DEBUG, SASL frames (a PLAIN password in
# clear) included: keep it quiet whatever LOG_LEVEL says.
logging.getLogger("kafka.protocol.parser").setLevel(logging.INFO)

SECRET_MAX_AGE_SECONDS = 300
# A token is replaced this long before it expires (MSK tokens live 15 minutes).
TOKEN_REFRESH_MARGIN_MS = 60_000
USER_PASSWORD_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})
LOCAL_CLUSTER_ARN = "arn:aws:kafka:local:000000000000:cluster/local-poller/{cluster_id}"


class KafkaClientConfigError(ConfigError):
    """The KAFKA_* settings cannot work together; the message names the variables."""


class KafkaAccessError(Exception):
    """The broker was reachable but refused this client; `state` names the kind for /ready."""

    state = "access_failed"


class KafkaAuthenticationError(KafkaAccessError):
    state = "authentication_failed"


class KafkaTlsError(KafkaAccessError):
    state = "tls_failed"


class KafkaCredentialsError(KafkaAccessError):
    """The SASL secret could not be read (Secrets Manager unreachable, access denied, bad JSON)."""

    state = "credentials_unavailable"


# --- validation -----------------------------------------------------------------------------------


def aws_region(settings: Settings) -> str | None:
    return settings.kafka_aws_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def problems(settings: Settings) -> list[str]:
    """Every combination of KAFKA_* settings that cannot work, one sentence each."""
    found: list[str] = []
    protocol = settings.kafka_security_protocol
    mechanism = settings.kafka_sasl_mechanism
    sasl = protocol.startswith("SASL_")
    tls = protocol in ("SSL", "SASL_SSL")
    if sasl and mechanism is None:
        found.append(
            f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM "
            "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)"
        )
    if not sasl and mechanism is not None:
        found.append(
            f"KAFKA_SASL_MECHANISM={mechanism} needs KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT "
            f"(it is {protocol})"
        )
    has_user = bool(settings.kafka_sasl_username) and bool(settings.kafka_sasl_password)
    if sasl and mechanism in USER_PASSWORD_MECHANISMS and not (has_user or settings.kafka_sasl_secret_arn):
        found.append(
            f"KAFKA_SASL_MECHANISM={mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, "
            "or KAFKA_SASL_SECRET_ARN"
        )
    if mechanism == "OAUTHBEARER":
        if protocol != "SASL_SSL":
            found.append(
                "KAFKA_SASL_MECHANISM=OAUTHBEARER (MSK IAM) needs KAFKA_SECURITY_PROTOCOL=SASL_SSL "
                f"(it is {protocol})"
            )
        if not aws_region(settings):
            found.append("KAFKA_SASL_MECHANISM=OAUTHBEARER (MSK IAM) needs KAFKA_AWS_REGION or AWS_REGION")
        if settings.kafka_sasl_username or settings.kafka_sasl_password or settings.kafka_sasl_secret_arn:
            found.append(
                "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_SECRET_ARN are not used with "
                "OAUTHBEARER (MSK IAM signs with the AWS credentials): unset them"
            )
    files = {
        "KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
        "KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
    }
    for name, path in files.items():
        if path is None:
            continue
        if not tls:
            found.append(f"{name} is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS")
        elif not Path(path).is_file() or not os.access(path, os.R_OK):
            found.append(f"{name}={path} is not a readable file")
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        found.append("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE")
    return found


def validate(settings: Settings) -> None:
    """Raise `KafkaClientConfigError` listing every problem; call it at start, before connecting."""
    found = problems(settings)
    if found:
        raise KafkaClientConfigError("invalid Kafka client configuration: " + "; ".join(found))


def describe(settings: Settings) -> str:
    """How the clients connect, safe to log: protocol, mechanism, where credentials come from."""
    parts = [settings.kafka_security_protocol]
    mechanism = settings.kafka_sasl_mechanism
    if settings.kafka_security_protocol.startswith("SASL_") and mechanism:
        parts.append(mechanism)
        if mechanism == "OAUTHBEARER":
            parts.append(f"(MSK IAM, region {aws_region(settings)})")
        elif settings.kafka_sasl_secret_arn:
            parts.append(f"(credentials from secret {settings.kafka_sasl_secret_arn})")
        else:
            parts.append("(credentials from KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD)")
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        parts.append(f"CA {settings.kafka_ssl_cafile or 'system'}")
        if settings.kafka_ssl_certfile:
            parts.append("client certificate")
        if not settings.kafka_ssl_check_hostname:
            parts.append("host name check off")
    return " ".join(parts)


# --- credentials ----------------------------------------------------------------------------------


def sasl_credentials(settings: Settings) -> tuple[str, str]:
    """(username, password) for PLAIN/SCRAM: the secret when KAFKA_SASL_SECRET_ARN is set."""
    arn = settings.kafka_sasl_secret_arn
    if not arn:
        return settings.kafka_sasl_username or "", settings.kafka_sasl_password or ""
    from aws_lambda_powertools.utilities import parameters

    try:
        secret = parameters.get_secret(arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.exceptions.TransformParameterError:
        raise KafkaCredentialsError(f"secret {arn} is not JSON") from None
    except Exception as exc:
        # Powertools wraps botocore's error; its text names the error code, never the value.
        raise KafkaCredentialsError(f"reading secret {arn} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(secret, Mapping):
        raise KafkaCredentialsError(f"secret {arn} is not a JSON object")
    missing = [key for key in ("username", "password") if not secret.get(key)]
    if missing:
        raise KafkaCredentialsError(f"secret {arn} has no {' and no '.join(missing)}")
    return str(secret["username"]), str(secret["password"])


class MskIamTokenProvider(AbstractTokenProvider):
    """OAUTHBEARER tokens for Amazon MSK IAM, signed locally and reused until near expiry.

    kafka-python asks for a token on every new connection; signing is cheap but not free, and
    several connections open at once at start.
    """

    def __init__(self, region: str) -> None:
        super().__init__()
        self.region = region
        self._token: str | None = None
        self._expires_ms = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() * 1000 >= self._expires_ms - TOKEN_REFRESH_MARGIN_MS:
                from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

                self._token, expires_ms = MSKAuthTokenProvider.generate_auth_token(self.region)
                self._expires_ms = float(expires_ms)
            return self._token

    def extensions(self) -> dict[str, str]:
        return {}


# --- keyword arguments ----------------------------------------------------------------------------


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2+, the CA bundle (or the system's), the client certificate, the host name check."""
    cafile = settings.kafka_ssl_cafile
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaClientConfigError(f"KAFKA_SSL_CAFILE={cafile} cannot be loaded: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile:
        keyfile = str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None
        try:
            context.load_cert_chain(str(settings.kafka_ssl_certfile), keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise KafkaClientConfigError(
                f"KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE cannot be loaded: {exc}"
            ) from None
    return context


def security_options(settings: Settings) -> dict[str, Any]:
    """The kafka-python security keyword arguments (validated first); they hold credentials."""
    validate(settings)
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL_"):
        mechanism = settings.kafka_sasl_mechanism
        options["sasl_mechanism"] = mechanism
        if mechanism == "OAUTHBEARER":
            options["sasl_oauth_token_provider"] = MskIamTokenProvider(aws_region(settings) or "")
        else:
            username, password = sasl_credentials(settings)
            options["sasl_plain_username"] = username
            options["sasl_plain_password"] = password
    return options


def bootstrap_servers(settings: Settings) -> list[str]:
    return [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]


def client_config(settings: Settings, client_id: str, **overrides: Any) -> dict[str, Any]:
    """Bootstrap servers, client id and security options, then the caller's tuning."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "client_id": client_id,
        **security_options(settings),
    }
    config.update(overrides)
    return config


def consumer_config(settings: Settings, client_id: str, **overrides: Any) -> dict[str, Any]:
    """A KafkaConsumer's arguments: offsets are only ever committed explicitly."""
    return client_config(settings, client_id, **{"enable_auto_commit": False, **overrides})


def producer_config(settings: Settings, client_id: str, **overrides: Any) -> dict[str, Any]:
    """A KafkaProducer's arguments: acknowledged by all in-sync replicas unless told otherwise."""
    return client_config(settings, client_id, **{"acks": "all", **overrides})


def admin_config(settings: Settings, client_id: str, **overrides: Any) -> dict[str, Any]:
    return client_config(settings, client_id, **{"request_timeout_ms": 10_000, **overrides})


def disable_topic_auto_creation(consumer: Any) -> None:
    """Make a KafkaConsumer's metadata requests stop asking the broker to create topics.

    kafka-python 3.0.12 does not hand `allow_auto_create_topics` on: its connection manager
    builds the cluster metadata without it, so every metadata request asks the broker (whose
    default is auto.create.topics.enable=true) to create a missing topic, whatever the
    consumer was told, and a deleted topic comes straight back with the broker's default
    partitions. Set it where the requests read it; another version without that attribute
    has nothing to correct.
    """
    cluster = getattr(consumer, "_cluster", None)
    config = getattr(cluster, "config", None)
    if isinstance(config, dict) and "allow_auto_create_topics" in config:
        config["allow_auto_create_topics"] = False


# --- the access check -----------------------------------------------------------------------------


def _split(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    return host.strip("[]") or "localhost", int(port or 9092)


def check_access(settings: Settings, *, timeout: float = 5.0) -> None:
    """Connect to the first reachable bootstrap server with TLS and SASL as configured.

    Raises `KafkaTlsError` / `KafkaAuthenticationError` with the handshake's or the broker's
    own words, `KafkaCredentialsError` when the secret cannot be read, `ConnectionError` when no
    server accepts a TCP connection. PLAINTEXT has nothing to check beyond TCP.
    """
    options = security_options(settings)
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return
    errors: list[str] = []
    for server in bootstrap_servers(settings):
        host, port = _split(server)
        try:
            sock: socket.socket = socket.create_connection((host, port), timeout)
        except OSError as exc:
            errors.append(f"{server}: {exc}")
            continue
        try:
            sock.settimeout(timeout)
            if "ssl_context" in options:
                try:
                    sock = options["ssl_context"].wrap_socket(sock, server_hostname=host)
                except (ssl.SSLError, ssl.CertificateError) as exc:
                    raise KafkaTlsError(f"TLS handshake with {server} failed: {_tls_reason(exc)}") from None
            if protocol.startswith("SASL_"):
                _authenticate(sock, host, options, server)
            return
        except OSError as exc:
            if isinstance(exc, ssl.SSLError):
                raise KafkaTlsError(f"TLS with {server} failed: {_tls_reason(exc)}") from None
            errors.append(f"{server}: {exc}")
        finally:
            sock.close()
    raise ConnectionError("no Kafka bootstrap server reachable: " + "; ".join(errors))


def _tls_reason(exc: Exception) -> str:
    """`CERTIFICATE_VERIFY_FAILED (unable to get local issuer certificate)` rather than a repr."""
    reason = getattr(exc, "reason", None) or str(exc)
    detail = getattr(exc, "verify_message", None)
    return f"{reason} ({detail})" if detail else str(reason)


def _authenticate(sock: socket.socket, host: str, options: dict[str, Any], server: str) -> None:
    """SaslHandshake v1, then SaslAuthenticate v1 rounds driven by kafka-python's own mechanism."""
    import kafka.errors as errors
    from kafka.net.sasl import get_sasl_mechanism
    from kafka.protocol.parser import KafkaProtocol
    from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

    parser = KafkaProtocol(client_id="warehouse-access-check")

    def call(request: Any) -> Any:
        parser.send_request(request)
        sock.sendall(parser.send_bytes())
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"{server} closed the connection during SASL authentication")
            responses = parser.receive_bytes(data)
            if responses:
                return responses[0][1]

    name = options["sasl_mechanism"]
    handshake = SaslHandshakeRequest(mechanism=name)
    handshake.API_VERSION = 1
    answer = call(handshake)
    if answer.error_code:
        offered = ", ".join(answer.mechanisms or []) or "none"
        raise KafkaAuthenticationError(
            f"{server} does not accept SASL mechanism {name} (it offers {offered})"
        )
    mechanism = get_sasl_mechanism(name)(host=host, **options)
    while not mechanism.is_done():
        request = SaslAuthenticateRequest(auth_bytes=mechanism.auth_bytes())
        request.API_VERSION = 1
        answer = call(request)
        if answer.error_code:
            kind = errors.for_code(answer.error_code).__name__
            raise KafkaAuthenticationError(f"{server}: {answer.error_message or kind}")
        mechanism.receive(answer.auth_bytes)
    if not mechanism.is_authenticated():
        raise KafkaAuthenticationError(f"{server}: the SASL {name} exchange did not authenticate")


# --- the Lambda event shape -----------------------------------------------------------------------


def cluster_arn(cluster_id: str | None) -> str | None:
    """The MSK-shaped `eventSourceArn` for a cluster known by its KRaft/ZooKeeper cluster id."""
    return LOCAL_CLUSTER_ARN.format(cluster_id=cluster_id) if cluster_id else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def lambda_event(
    polled: Mapping[Any, list[Any]], *, bootstrap_servers: str, cluster_id: str | None = None
) -> dict[str, Any]:
    """kafka-python records as the event an MSK event source mapping would deliver.

    Records grouped by "topic-partition", key and value base64, headers as byte lists. The
    cluster goes into `eventSourceArn` when its id is known (the ledger keeps it with every
    record, so two clusters with the same topic and offsets stay apart); without it the event
    carries only `bootstrapServers`, which `common.kafka_batch.cluster_of` falls back to.
    """
    records: dict[str, list[dict[str, Any]]] = {}
    for tp, batch in polled.items():
        chunk = records.setdefault(f"{tp.topic}-{tp.partition}", [])
        for r in batch:
            item: dict[str, Any] = {
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp,
                "timestampType": "LOG_APPEND_TIME" if r.timestamp_type == 1 else "CREATE_TIME",
                "headers": [{k: list(v or b"")} for k, v in (r.headers or [])],
            }
            if r.key is not None:
                item["key"] = _b64(r.key)
            if r.value is not None:  # a tombstone has no value, as in Lambda's events
                item["value"] = _b64(r.value)
            chunk.append(item)
    event: dict[str, Any] = {
        "eventSource": "aws:kafka",
        "bootstrapServers": bootstrap_servers,
        "records": records,
    }
    arn = cluster_arn(cluster_id)
    if arn:
        event["eventSourceArn"] = arn
    return event


__all__ = [
    "KafkaAccessError",
    "KafkaAuthenticationError",
    "KafkaClientConfigError",
    "KafkaCredentialsError",
    "KafkaTlsError",
    "MskIamTokenProvider",
    "admin_config",
    "check_access",
    "client_config",
    "consumer_config",
    "describe",
    "disable_topic_auto_creation",
    "lambda_event",
    "problems",
    "producer_config",
    "sasl_credentials",
    "security_options",
    "ssl_context",
    "validate",
]
