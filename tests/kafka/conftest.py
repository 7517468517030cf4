"""Kafka suite fixtures on top of tests/conftest.py (which points DATABASE_URL at `<db>_test`,
creates and migrates it, and gives `unique_topic`).

Run with DATABASE_URL=postgresql://warehouse:warehouse@127.0.0.1:5432/kafka_dev to land in
`kafka_dev_test`. Subprocess pollers inherit os.environ, so they use the same test database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from common.adapters import cache, db
from common.adapters.config import get_settings
from tests.kafka.broker import BrokerError, PrivateBroker, remove, start_private_broker
from tools.kafka_helpers import delete_group, unique

# In-process handler calls would print an EMF metrics line per batch; the tests read the ledger.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.pop("DLQ_TOPIC", None)


@pytest.fixture(scope="session", autouse=True)
def _process_follows_test_database(database_url: str) -> Iterator[None]:
    """Settings, pool and cache client of this process follow the (rewritten) environment."""
    get_settings.cache_clear()
    db.close_pool()
    cache.reset()
    yield
    db.close_pool()
    cache.reset()


@pytest.fixture
def topic(unique_topic: str) -> str:
    return unique_topic


@pytest.fixture
def group() -> Iterator[str]:
    """A fresh consumer group id, deleted afterwards (once its members have left)."""
    name = unique("kafka-test-group")
    yield name
    delete_group(name)


@pytest.fixture(scope="session")
def private_broker() -> Iterator[PrivateBroker]:
    """A second Kafka cluster of this session's own: PLAINTEXT and SASL_SSL (SCRAM-SHA-512, TLS)."""
    try:
        broker = start_private_broker()
    except BrokerError as exc:
        pytest.fail(f"the private Kafka broker did not start: {exc}", pytrace=False)
    yield broker
    remove(broker)
