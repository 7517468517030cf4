"""Configuration: typed, read from environment variables and `.env`, checked once at start.

Every variable is listed with its default and meaning in `.env.example`. A wrong value
(`CACHE_ENABLED=ture`, `APP_MODE=kafak`, `DB_POOL_MAX=0`) stops the process at start with an error
naming the variable, instead of silently changing behaviour. The real environment wins over
`.env`; an empty variable counts as unset (SAM declares some variables empty on purpose).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_DATABASE_URL = "postgresql://warehouse:warehouse@127.0.0.1:5432/warehouse"


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


KafkaSecurityProtocol = Annotated[
    Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)
]
KafkaSaslMechanism = Annotated[
    Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"], BeforeValidator(_upper)
]
AppMode = Literal["kafka", "webhook_only"]
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)]

# Fields whose values must never appear in an error message or a repr.
SECRET_FIELDS = frozenset(
    {"database_url", "kafka_sasl_password", "webhook_token", "operator_token", "redis_url"}
)


class ConfigError(ValueError):
    """A configuration variable has a value the service cannot use; the message names it."""


class Settings(BaseSettings):
    """One process's configuration; field `x_y` is read from the variable `X_Y`."""

    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        case_sensitive=False,
    )

    # --- PostgreSQL
    database_url: str = Field(DEFAULT_DATABASE_URL, repr=False)
    db_secret_arn: str | None = None
    # Connect here instead of the secret's host (an RDS Proxy endpoint); port and TLS unchanged.
    db_proxy_endpoint: str | None = None
    db_pool_max: int = Field(10, ge=1, le=1000)
    db_pool_timeout_seconds: float = Field(3.0, gt=0, le=600)
    # A pooled connection is replaced after this long, so it picks up rotated credentials.
    db_pool_max_lifetime_seconds: float = Field(900.0, ge=60)
    # Per-session guards; 0 turns one off (PostgreSQL's own meaning of 0).
    db_statement_timeout_ms: int = Field(15_000, ge=0)
    db_lock_timeout_ms: int = Field(2_000, ge=0)
    db_idle_in_transaction_timeout_ms: int = Field(30_000, ge=0)

    # --- Redis (read cache)
    redis_url: str = Field("redis://127.0.0.1:6379/0", repr=False)
    cache_enabled: bool = True
    cache_ttl_seconds: int = Field(60, ge=1)
    redis_timeout_seconds: float = Field(0.05, gt=0, le=60)

    # --- Kafka
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1)
    kafka_topic: str = Field("warehouse-movements", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    kafka_group_id: str = Field("warehouse-stock", min_length=1)
    kafka_batch_size: int = Field(1000, ge=1, le=100_000)
    kafka_poll_timeout_ms: int = Field(500, ge=0)
    # true: the local poller decodes batch N+1 while batch N commits (common.intake.apply_ahead).
    # Off by default: on the 2-core development machine an interleaved A/B showed no gain beyond
    # the run-to-run noise (docs/performance.md), and off, the poller runs the Lambda handler itself.
    kafka_apply_ahead: bool = False
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(None, repr=False)
    # Secrets Manager secret {"username", "password"}; replaces the two variables above.
    kafka_sasl_secret_arn: str | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
    # Region for MSK IAM (OAUTHBEARER); defaults to AWS_REGION.
    kafka_aws_region: str | None = None
    dlq_topic: str | None = None
    # A Kafka departure refused for insufficient stock is retried when arrivals for its stock are
    # applied within this many seconds of its receipt; 0 turns the automatic retry off.
    auto_replay_window_seconds: int = Field(3600, ge=0)
    # Clean batches decided and written by one SQL function (common/ledger/apply.py): less CPU in
    # the pollers and in all, ~5 us an event more in PostgreSQL. Off where the database is the bound.
    ledger_clean_lane: bool = True
    # In Lambda, a batch that finds PostgreSQL unreachable waits for it this long (never past the
    # invocation's remaining time) before failing, so each of the mapping's retries covers minutes.
    ingest_db_wait_seconds: float = Field(60.0, ge=0, le=900)

    # --- The HTTP app and its guards
    app_mode: AppMode = "kafka"
    app_host: str = "127.0.0.1"
    app_port: int = Field(8000, ge=1, le=65535)
    # Worker processes of the local app; unset means one per CPU core.
    app_workers: int | None = Field(None, ge=1, le=64)
    # Kafka poller processes `make run` starts beside the workers in kafka mode; unset: one per
    # partition of KAFKA_TOPIC, at most one per core; 0: none. The app started on its own
    # (`uvicorn functions.local_app.main:app`) runs one poller thread instead, unless this is 0.
    kafka_pollers: int | None = Field(None, ge=0, le=64)
    # A poller whose loop finished no iteration for this long is stalled: /ready says so and
    # `make run`'s supervisor restarts it (longer than the poller's 30 s maximum backoff).
    poller_stall_seconds: float = Field(60.0, ge=1.0, le=3600.0)
    access_log: bool = False
    webhook_token: str | None = Field(None, repr=False)
    webhook_token_secret_arn: str | None = None
    operator_token: str | None = Field(None, repr=False)
    operator_token_secret_arn: str | None = None
    # `token`: the app checks OPERATOR_TOKEN; `gateway`: API Gateway authorizes the operator routes
    # (IAM or JWT in template.yaml) and the app trusts it.
    operator_auth: Literal["token", "gateway"] = "token"
    max_body_bytes: int = Field(1024 * 1024, ge=1)
    # Origins (scheme://host[:port], comma-separated; `*` any) whose web pages may call the
    # state-changing routes; a browser's request from any other site is refused (403).
    trusted_origins: str | None = None
    log_level: LogLevel = "INFO"

    # --- Retention (see `warehouse-stock retention`)
    dead_letter_retention_days: int = Field(90, ge=1)
    event_log_retention_days: int | None = Field(None, ge=1)


def describe_errors(exc: ValidationError) -> str:
    """One line per wrong variable, by its environment name; secret values are never echoed."""
    lines = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "?"
        got = "" if name in SECRET_FIELDS else f" (got {error.get('input')!r})"
        lines.append(f"{name.upper()}: {error['msg']}{got}")
    return "invalid configuration: " + "; ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; `get_settings.cache_clear()` re-reads them."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None
