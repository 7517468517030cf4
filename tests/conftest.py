"""Fixtures shared by the whole test tree (subfolders add their own in their conftest.py).

The tests run against the local stack that `make test` brings up (or the services named by
DATABASE_URL / REDIS_URL / KAFKA_BOOTSTRAP_SERVERS):

- PostgreSQL: never the app's database itself but `<db>_test` beside it. DATABASE_URL is rewritten
  to it when this file is imported, before anything reads `get_settings()`, so code under test
  that opens its own connections lands there too. The database is created and migrated once per
  session, by the first test that asks for `database_url`.
- Redis: the database index of REDIS_URL; tests may flush it.
- Kafka: the broker of KAFKA_BOOTSTRAP_SERVERS; `unique_topic` gives a test its own topic.

Tests under tests/unit, tests/integration, tests/e2e and tests/lambda get the marker of their
folder, so `pytest -m unit` selects them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from common.adapters.config import DEFAULT_DATABASE_URL, PROJECT_ROOT, get_settings
from common.adapters.migrate import DATA_TABLES, migrate

TESTS_DIR = Path(__file__).resolve().parent
LEDGER_TABLES = DATA_TABLES
FOLDER_MARKERS = {"unit", "integration", "e2e", "lambda"}


def _test_database_url(url: str) -> str:
    """`url` with `_test` appended to its database name (unless it already ends so)."""
    name = str(psycopg.conninfo.conninfo_to_dict(url).get("dbname") or "warehouse")
    if not name.endswith("_test"):
        name += "_test"
    if "://" not in url:  # a key=value connection string
        return psycopg.conninfo.make_conninfo(url, dbname=name)
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name)))


def _point_settings_at_test_database() -> tuple[str, str]:
    """Rewrite DATABASE_URL (environment, then `.env`, then the default) to the test database."""
    if (PROJECT_ROOT / ".env").is_file():
        from dotenv import load_dotenv

        load_dotenv(PROJECT_ROOT / ".env", override=False)
    app_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    test_url = _test_database_url(app_url)
    os.environ["DATABASE_URL"] = test_url
    get_settings.cache_clear()
    return app_url, test_url


APP_DATABASE_URL, TEST_DATABASE_URL = _point_settings_at_test_database()


def _create_database(test_url: str) -> None:
    """CREATE DATABASE for `test_url` when missing, connected to the app's database (or `postgres`)."""
    name = str(psycopg.conninfo.conninfo_to_dict(test_url)["dbname"])
    last_error: Exception | None = None
    for admin_url in (APP_DATABASE_URL, psycopg.conninfo.make_conninfo(test_url, dbname="postgres")):
        try:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    return
                # Another test session may be creating it at the same moment.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                return
        except psycopg.OperationalError as exc:
            last_error = exc
    raise last_error or RuntimeError("unreachable")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = Path(str(item.path)).resolve().relative_to(TESTS_DIR).parts[0]
        except (ValueError, IndexError):
            continue
        if folder in FOLDER_MARKERS:
            item.add_marker(folder)


@pytest.fixture(scope="session")
def database_url() -> str:
    """The test database's URL (`<db>_test`), created and migrated once per session."""
    try:
        _create_database(TEST_DATABASE_URL)
        with psycopg.connect(TEST_DATABASE_URL, connect_timeout=5) as conn:
            migrate(conn)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable (run `make up`): {exc}", pytrace=False)
    return TEST_DATABASE_URL


@pytest.fixture
def db_conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the test database (autocommit off); rolled back and closed afterwards."""
    conn = psycopg.connect(database_url, autocommit=False, connect_timeout=5)
    try:
        yield conn
    finally:
        if not conn.closed:
            conn.rollback()
        conn.close()


@pytest.fixture
def clean_db(database_url: str) -> str:
    """Empty the ledger tables (identities restarted) before the test; returns the database URL."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("TRUNCATE " + ", ".join(LEDGER_TABLES) + " RESTART IDENTITY")
    return database_url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """REDIS_URL as configured (its database index included); tests may flush that database."""
    import redis

    url = get_settings().redis_url
    try:
        redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {url} (run `make up`): {exc}", pytrace=False)
    return url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """KAFKA_BOOTSTRAP_SERVERS as configured."""
    return get_settings().kafka_bootstrap_servers


@pytest.fixture
def unique_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A fresh topic with 3 partitions, deleted after the test."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"test-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="pytest-admin")
    try:
        admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
        admin.wait_for_topics([name], timeout_ms=30_000)
        yield name
    finally:
        with contextlib.suppress(Exception):
            admin.delete_topics([name])
        admin.close()
