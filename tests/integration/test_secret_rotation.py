"""A Secrets Manager rotation while the service runs: moto holds the secret, PostgreSQL is real.

The service's pool logs in as a role of this test's own, whose password the test rotates the way
the RDS rotation function does: the new password goes into the secret (AWSCURRENT) and into
PostgreSQL (`ALTER ROLE ... PASSWORD`). Connections opened before keep working; new ones, forced
by draining the pool, are refused with the cached password, re-read the secret at once and log in
with the new one. A writer thread calls the service all along and never sees an error, and
nothing the service logs contains a password.

Creating a role needs a superuser: the local stack's cluster is reached on its unix socket as
`postgres` (trusted locally); elsewhere the app's role must have CREATEROLE, else the test skips.
"""

from __future__ import annotations

import glob
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import moto
import psycopg
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from common.adapters import db
from common.adapters.config import get_settings
from common.domain.events import Origin, parse_event
from common.domain.outcomes import Status
from common.ledger.use_cases import ingest
from tests.e2e.support import body, envelope

pytestmark = pytest.mark.integration

REGION = "eu-west-1"


def admin_connection(database_url: str) -> psycopg.Connection:
    """A connection that may create roles: `postgres` on the local cluster's socket, else the app's
    own role when it has CREATEROLE."""
    info = conninfo_to_dict(database_url)
    port = str(info.get("port") or 5432)
    candidates = [*glob.glob("/var/lib/postgresql/warehouse-stock/*/"), "/var/run/postgresql", "/tmp"]
    for directory in candidates:
        if glob.glob(f"{directory.rstrip('/')}/.s.PGSQL.{port}"):
            try:
                return psycopg.connect(
                    host=directory, port=port, user="postgres", dbname=str(info["dbname"]),
                    autocommit=True, connect_timeout=5,
                )  # fmt: skip
            except psycopg.OperationalError:
                continue
    conn = psycopg.connect(database_url, autocommit=True)
    row = conn.execute(
        "SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row and row[0]:
        return conn
    conn.close()
    pytest.skip("no superuser socket and the app's role cannot create roles")


@dataclass
class Role:
    name: str
    password: str
    admin: psycopg.Connection

    def rotate(self, password: str) -> None:
        self.admin.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(self.name), sql.Literal(password))
        )
        self.password = password


@pytest.fixture
def role(database_url: str) -> Iterator[Role]:
    """A login role of this test's own with the app role's privileges (membership)."""
    admin = admin_connection(database_url)
    app_role = str(conninfo_to_dict(database_url)["user"])
    name = f"rotation_{uuid.uuid4().hex[:10]}"
    created = Role(name, f"first-{uuid.uuid4().hex}", admin)
    admin.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(name), sql.Literal(created.password), sql.Identifier(app_role)
        )
    )
    try:
        yield created
    finally:
        db.close_pool()
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        admin.close()


@pytest.fixture
def secret(role: Role, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """The role's credentials in a mocked Secrets Manager; the service configured by DB_SECRET_ARN."""
    info = conninfo_to_dict(database_url)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "DB_PROXY_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("CACHE_ENABLED", "false")
    monkeypatch.setenv("DB_POOL_MAX", "3")
    parameters.clear_caches()
    DEFAULT_PROVIDERS.clear()
    with moto.mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        document = {
            "engine": "postgres",
            "host": info.get("host") or "127.0.0.1",
            "port": int(info.get("port") or 5432),
            "username": role.name,
            "password": role.password,
            "dbname": info["dbname"],
        }
        arn = client.create_secret(Name=f"ws/{role.name}", SecretString=json.dumps(document))["ARN"]
        monkeypatch.setenv("DB_SECRET_ARN", arn)
        get_settings.cache_clear()
        db.close_pool()
        yield client, arn
        db.close_pool()
    parameters.clear_caches()
    DEFAULT_PROVIDERS.clear()
    get_settings.cache_clear()


@dataclass
class Writer:
    """Calls the service (one arrival each time) until stopped; every failure is kept."""

    applied: int = 0
    failures: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            raw = body(envelope("arrival", movement_id=str(uuid.uuid4()), warehouse_id=str(uuid.uuid4()),
                                product_id=str(uuid.uuid4()), quantity=1))  # fmt: skip
            try:
                [outcome] = ingest([parse_event(raw, Origin.webhook())])
                assert outcome.status is Status.APPLIED
                self.applied += 1
            except BaseException as exc:  # noqa: BLE001 - the test reports any failure
                self.failures.append(exc)
            time.sleep(0.02)


def current_user(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_user").fetchone()
    assert row is not None
    return str(row[0])


def test_a_rotated_password_is_used_at_once_and_the_service_keeps_answering(
    role: Role, secret: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, arn = secret
    for name in ("common", "psycopg", "aws_lambda_powertools", "functions"):
        caplog.set_level(logging.DEBUG, logger=name)
    first_password = role.password
    writer = Writer()
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)
        pool = db.get_pool()
        held = pool.getconn()  # a session from before the rotation
        assert current_user(held) == role.name

        new_password = f"second-{uuid.uuid4().hex}"
        document = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
        client.put_secret_value(SecretId=arn, SecretString=json.dumps({**document, "password": new_password}))
        role.rotate(new_password)

        assert current_user(held) == role.name  # an open session is not affected
        held.rollback()
        pool.putconn(held)
        pool.drain()  # every new connection from here on must log in with the new password
        before = writer.applied
        deadline = time.monotonic() + 10
        while writer.applied < before + 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        with pool.connection() as fresh:
            assert current_user(fresh) == role.name
    finally:
        writer.stop.set()
        thread.join(timeout=10)

    assert writer.failures == []
    assert writer.applied >= before + 10, "the service stopped answering after the rotation"
    refusals = [r for r in caplog.records if "refused the login" in r.getMessage()]
    assert refusals, "new connections should have met the old password first (the cache holds it)"
    for password in (first_password, new_password):
        assert password not in caplog.text
    assert "postgresql://" not in caplog.text


def test_after_a_rotation_get_stock_with_the_cache_off_answers_200_from_both_pools(
    role: Role, secret: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """GET stock's cache miss (the async pool) and the stock list (the synchronous pool) log in
    with the rotated password: both pools come from one connection factory."""
    from starlette.testclient import TestClient

    from common.adapters.db_async import forget_async_pools
    from functions.get_stock.routes import router as stock_router
    from functions.http.app import make_app
    from functions.list_resources.routes import router as list_router

    client, arn = secret
    monkeypatch.setattr(db, "_last_refresh", float("-inf"))  # an earlier test's refresh is not ours
    caplog.set_level(logging.WARNING, logger="common.adapters.db")
    warehouse, product = uuid.uuid4(), uuid.uuid4()
    raw = body(envelope("arrival", movement_id=str(uuid.uuid4()), warehouse_id=str(warehouse),
                        product_id=str(product), quantity=3))  # fmt: skip
    [outcome] = ingest([parse_event(raw, Origin.webhook())])
    assert outcome.status is Status.APPLIED
    listing = f"/api/v1/warehouse/{warehouse}/products"
    stock = f"{listing}/{product}"

    forget_async_pools()
    service = make_app([stock_router, list_router], lambda_mode=True)
    with TestClient(service, raise_server_exceptions=False) as app:
        assert app.get(stock).status_code == 200  # the async pool opens with the first password
        assert app.get(listing).status_code == 200

        new_password = f"second-{uuid.uuid4().hex}"
        document = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
        client.put_secret_value(SecretId=arn, SecretString=json.dumps({**document, "password": new_password}))
        role.rotate(new_password)
        # Every session from before is gone (max_lifetime, a restart, a failover): new logins only.
        role.admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                           (role.name,))  # fmt: skip
        forget_async_pools()
        db.get_pool().drain()

        answer = app.get(stock)
        assert answer.status_code == 200, answer.text  # the async pool: a cache miss (cache off)
        assert answer.json()["quantity"] == 3
        assert app.get(listing).status_code == 200  # the synchronous pool
        assert app.get(stock).status_code == 200
    forget_async_pools()
    assert [r for r in caplog.records if "refused the login" in r.getMessage()]
    assert new_password not in caplog.text
