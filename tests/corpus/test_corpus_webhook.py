"""The corpus through the webhook over real HTTP: the running app, as a client sees it.

One uvicorn process (APP_MODE=webhook_only, WEBHOOK_TOKEN set) serves the whole module; its stdout
and stderr are captured so the last test can check that no secret reached the log.
"""

from __future__ import annotations

import secrets
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tools import procs
from tools.corpus import Case, accepted_cases, rejected_cases, valid_arrival

WEBHOOK = "/api/v1/kafka/webhook"
# What must never reach a client: a Python traceback or our internals.
LEAK_MARKERS = ("Traceback", 'File "', "psycopg", "pydantic_core", "/work/", "site-packages", "Error(")


@dataclass
class App:
    base_url: str
    token: str
    database_url: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    def post(self, body: bytes, *, token: str | None = None, **headers: str) -> httpx.Response:
        sent = {"content-type": "application/json", **headers}
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        return httpx.post(f"{self.base_url}{WEBHOOK}", content=body, headers=sent, timeout=60)


@pytest.fixture(scope="module")
def app(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    port = procs.free_port()
    token = f"corpus-{secrets.token_hex(16)}"
    log_path = tmp_path_factory.mktemp("corpus-app") / "app.log"
    env = procs.base_env(
        APP_MODE="webhook_only",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        WEBHOOK_TOKEN=token,
        MAX_BODY_BYTES=str(1024 * 1024),
        LOG_LEVEL="DEBUG",  # the most talkative level: secrets must not leak even there
    )
    proc = procs.start_app(env, port, log_path)
    try:
        base_url = f"http://{procs.HOST}:{port}"
        procs.wait_healthy(base_url, proc, log_path)
        yield App(base_url, token, database_url, log_path, proc)
    finally:
        procs.stop(proc)


def ledger_counts(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM movement_events), (SELECT count(*) FROM rejected_events)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def assert_clean_error(response: httpx.Response, *, secrets_: tuple[str, ...] = ()) -> dict[str, object]:
    """A JSON object body, small, without tracebacks, internals or secrets."""
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    assert len(response.content) < 16 * 1024, f"{len(response.content)} bytes: the input was echoed back"
    body = response.json()
    assert isinstance(body, dict) and body.get("detail"), body
    for marker in (*LEAK_MARKERS, *secrets_):
        assert marker not in response.text, f"{marker!r} in {response.text[:300]}"
    return body


@pytest.mark.parametrize("case", rejected_cases(), ids=lambda c: c.name)
def test_bad_payload_is_refused_with_a_clean_json_4xx(app: App, case: Case) -> None:
    response = app.post(case.body, token=app.token)

    assert response.status_code == case.webhook_status, response.text[:500]
    body = assert_clean_error(response, secrets_=(app.token,))
    if response.status_code == 422:
        assert body["reason"] == "invalid" and body["errors"], body


def test_refused_payloads_left_no_trace_in_the_ledger(app: App) -> None:
    """Invalid webhook bodies are answered, not stored: the caller is told and can fix them."""
    before = ledger_counts(app.database_url)
    for case in rejected_cases()[:20]:
        assert app.post(case.body, token=app.token).status_code == case.webhook_status
    assert ledger_counts(app.database_url) == before


def test_odd_but_valid_payloads_are_applied_once(app: App) -> None:
    for case in accepted_cases():
        response = app.post(case.body, token=app.token)
        assert response.status_code == 200, (case.name, response.text[:300])
        assert response.json()["status"] == "applied", case.name
        if case.same_as is not None:  # the canonical spelling is the same movement
            twin = app.post(case.same_as, token=app.token)
            assert (twin.status_code, twin.json()["status"]) == (200, "duplicate"), case.name
        stock = httpx.get(
            f"{app.base_url}/api/v1/warehouse/{case.warehouse_id}/products/{case.product_id}", timeout=30
        )
        assert stock.status_code == 200 and stock.json()["quantity"] == case.quantity, case.name


def test_the_same_body_with_other_content_types_is_still_refused_cleanly(app: App) -> None:
    bad = rejected_cases()[0].body
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""):
        response = app.post(bad, token=app.token, **{"content-type": content_type})
        assert 400 <= response.status_code < 500, (content_type, response.status_code)
        assert_clean_error(response, secrets_=(app.token,))


def test_oversized_body_without_content_length_is_refused_while_streaming(app: App) -> None:
    """A chunked upload declares no length: the limit must still hold, as a 413."""
    big = next(c for c in rejected_cases() if c.webhook_status == 413).body

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    response = httpx.post(
        f"{app.base_url}{WEBHOOK}",
        content=chunks(),
        headers={"authorization": f"Bearer {app.token}", "content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413
    assert_clean_error(response, secrets_=(app.token,))


# --- authentication -------------------------------------------------------------------------------


def test_without_the_token_nothing_is_applied(app: App) -> None:
    body, warehouse, product = valid_arrival(quantity=3)
    wrong = [
        app.post(body),
        app.post(body, authorization="Bearer"),
        app.post(body, token=app.token + "x"),
        app.post(body, token=app.token[:-1]),
        app.post(body, token=app.token.upper()),
        app.post(body, authorization=f"Basic {app.token}"),
        app.post(body, authorization=app.token),
    ]
    for response in wrong:
        assert response.status_code == 401, response.text
        assert response.headers.get("www-authenticate") == "Bearer"
        assert_clean_error(response, secrets_=(app.token,))
    stock_url = f"{app.base_url}/api/v1/warehouse/{warehouse}/products/{product}"
    assert httpx.get(stock_url, timeout=30).json()["quantity"] == 0

    right = app.post(body, token=app.token)
    assert right.status_code == 200 and right.json()["status"] == "applied"
    assert httpx.get(stock_url, timeout=30).json()["quantity"] == 3


def test_the_token_is_checked_before_the_body_is_read(app: App) -> None:
    """An unauthenticated client cannot make the app parse (or even buffer) its payload."""
    for case in (rejected_cases()[0], next(c for c in rejected_cases() if c.webhook_status == 413)):
        response = app.post(case.body, token="nope")
        assert response.status_code == 401, case.name


def test_get_routes_answer_bad_ids_with_clean_4xx(app: App) -> None:
    paths = [
        "/api/v1/warehouse/%27%3B%20DROP%20TABLE%20stock%3B--/products/" + str(uuid.uuid4()),
        f"/api/v1/warehouse/{uuid.uuid4()}/products/{'9' * 5000}",
        "/api/v1/movements/%00",
        "/api/v1/movements/{c6290746-790e-43fa-8270-014dc90e02e0",
        "/api/v1/rejected-events/1/replay",  # POST only: 405, still JSON
    ]
    for path in paths:
        response = httpx.get(f"{app.base_url}{path}", timeout=30)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert response.headers.get("content-type", "").startswith("application/json"), path
        for marker in LEAK_MARKERS:
            assert marker not in response.text, (path, marker)


# --- last: the log of everything above ---------------------------------------------------------


def test_the_app_log_holds_no_secret(app: App) -> None:
    """Stop the app and read all it printed during the module: no token, no database password."""
    procs.stop(app.proc)
    log = app.log_path.read_text(errors="replace")
    assert "Application startup complete" in log or "Uvicorn running" in log, log[:2000]
    password = psycopg.conninfo.conninfo_to_dict(app.database_url).get("password")
    assert app.token not in log
    assert app.database_url not in log
    if password:
        user = psycopg.conninfo.conninfo_to_dict(app.database_url).get("user")
        assert f"{user}:{password}@" not in log
        assert f"password={password}" not in log
    # Refusals are the client's business: no stack trace per bad request either.
    assert "Traceback" not in log, log[log.find("Traceback") - 500 : log.find("Traceback") + 2000]
