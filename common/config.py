"""Configuration, read only from environment variables (and `.env` when present).

Every variable is listed with its default and meaning in `.env.example`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_DATABASE_URL = "postgresql://warehouse:warehouse@127.0.0.1:5432/warehouse"


def _load_dotenv() -> None:
    """Load `.env` from the project root without overriding the real environment."""
    env_file = PROJECT_ROOT / ".env"
    if env_file.is_file():
        from dotenv import load_dotenv

        load_dotenv(env_file, override=False)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    database_url: str
    db_secret_arn: str | None
    db_pool_max: int
    db_pool_timeout_seconds: float
    redis_url: str
    cache_enabled: bool
    cache_ttl_seconds: int
    redis_timeout_seconds: float
    kafka_bootstrap_servers: str
    kafka_topic: str
    kafka_group_id: str
    kafka_batch_size: int
    kafka_poll_timeout_ms: int
    dlq_topic: str | None
    app_mode: str
    app_host: str
    app_port: int
    webhook_token: str | None
    max_body_bytes: int
    log_level: str


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    _load_dotenv()
    env = os.environ
    return Settings(
        database_url=env.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        db_secret_arn=env.get("DB_SECRET_ARN") or None,
        db_pool_max=_int("DB_POOL_MAX", 10),
        db_pool_timeout_seconds=_float("DB_POOL_TIMEOUT_SECONDS", 3.0),
        redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        cache_enabled=env.get("CACHE_ENABLED", "true").lower() in ("1", "true", "yes", "on"),
        cache_ttl_seconds=_int("CACHE_TTL_SECONDS", 60),
        redis_timeout_seconds=_float("REDIS_TIMEOUT_SECONDS", 0.05),
        kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        kafka_topic=env.get("KAFKA_TOPIC", "warehouse-movements"),
        kafka_group_id=env.get("KAFKA_GROUP_ID", "warehouse-stock"),
        kafka_batch_size=_int("KAFKA_BATCH_SIZE", 1000),
        kafka_poll_timeout_ms=_int("KAFKA_POLL_TIMEOUT_MS", 500),
        dlq_topic=env.get("DLQ_TOPIC") or None,
        app_mode=env.get("APP_MODE", "kafka"),
        app_host=env.get("APP_HOST", "127.0.0.1"),
        app_port=_int("APP_PORT", 8000),
        webhook_token=env.get("WEBHOOK_TOKEN") or None,
        max_body_bytes=_int("MAX_BODY_BYTES", 1024 * 1024),
        log_level=env.get("LOG_LEVEL", "INFO"),
    )
