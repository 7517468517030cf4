"""End-to-end fixtures: the local app as a real uvicorn process on the test database.

Every test uses fresh random ids, so tests neither truncate tables nor depend on one another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import REDIS_URL, AppProcess, start_app


@pytest.fixture(scope="session")
def app_env(database_url: str) -> dict[str, str]:
    """What every app process of the suite runs with (tests add or override variables)."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CACHE_ENABLED": "true",
        "WEBHOOK_TOKEN": "",
        "MAX_BODY_BYTES": str(1024 * 1024),
    }


@pytest.fixture(scope="session")
def app(app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The main app instance (webhook_only, cache on, no token), shared by the suite."""
    log = Path(tmp_path_factory.mktemp("app")) / "uvicorn.log"
    process = start_app(app_env, log)
    yield process
    process.stop()


@pytest.fixture
def api(app: AppProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.url, timeout=30) as client:
        yield client
