"""A command's failure as the one line an operator reads: what failed and what to check."""

from __future__ import annotations

import psycopg
import psycopg_pool

from common.adapters.config import ConfigError


def first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def describe(exc: BaseException) -> str:
    """One line: the kind of failure in words, then the cause's first line."""
    if isinstance(exc, ConfigError):
        return f"bad setting: {' '.join(str(exc).split())} (see .env.example)"
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg.OperationalError):
        cause = (
            first_line(str(exc.__cause__ or exc))
            if isinstance(exc, psycopg_pool.PoolTimeout)
            else first_line(str(exc))
        )
        return f"cannot reach PostgreSQL (check DATABASE_URL or DB_SECRET_ARN): {cause}"
    if isinstance(exc, psycopg.Error):
        return f"PostgreSQL refused the command: {first_line(str(exc))}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename or first_line(str(exc))}"
    name = type(exc).__name__
    module = type(exc).__module__.split(".")[0]
    if module == "kafka":
        return f"Kafka: {name}: {first_line(str(exc))} (check KAFKA_BOOTSTRAP_SERVERS)"
    if module in ("botocore", "boto3"):
        return f"AWS: {first_line(str(exc))}"
    return f"{name}: {first_line(str(exc))}" if str(exc) else name
