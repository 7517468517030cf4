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

import logging
import os
import ssl
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kafka.net.sasl.oauth import AbstractTokenProvider

from common.adapters.config import ConfigError, Settings

# kafka-python's protocol parser logs every frame at DEBUG, SASL frames (a PLAIN password in
# clear) included: keep it quiet whatever LOG_LEVEL says.
logging.getLogger("kafka.protocol.parser").setLevel(logging.INFO)

SECRET_MAX_AGE_SECONDS = 300
# A token is replaced this long before it expires (MSK tokens live 15 minutes).
TOKEN_REFRESH_MARGIN_MS = 60_000
USER_PASSWORD_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})


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
    parts: list[str] = [settings.kafka_security_protocol]
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


class MskIamTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # kafka-python is untyped
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
    """A KafkaConsumer's arguments: offsets are only ever committed explicitly, committed records only.

    `read_committed` (the one place every consumer of movements takes it from: the poller, the
    re-drive, the tools): records of an aborted transaction are never returned, and a partition's
    reads stop at its last stable offset while a transaction is open (that wait shows as lag).
    Metadata every 30 s (kafka-python's default is 5 min): a group that joined before its topic's
    partitions were known (a topic just created, partitions added) rebalances onto them within
    30 s instead of reading nothing for minutes.
    """
    config = {
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "metadata_max_age_ms": 30_000,
        **overrides,
    }
    return client_config(settings, client_id, **config)


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
