"""`warehouse-stock retention` on the real test database: every rule of the policy, and its limits.

The ledger tables are emptied first (`clean_db`): the rules act on "everything older than N days",
so exact counts need a table holding only this test's rows. "Old" rows are made by moving their
timestamps back, the way time would.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from common.adapters import db
from common.adapters.config import get_settings
from common.domain.events import Origin, parse_event
from common.domain.outcomes import Status
from common.ledger.use_cases import ingest
from common.operations import retention
from tests.e2e.support import body, envelope

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def conn(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """Empty ledger tables; the service pointed at them (no cache); an autocommit connection."""
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("CACHE_ENABLED", "false")
    for name in ("DB_SECRET_ARN", "DB_PROXY_ENDPOINT", "EVENT_LOG_RETENTION_DAYS", "DLQ_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEAD_LETTER_RETENTION_DAYS", "90")
    get_settings.cache_clear()
    db.close_pool()
    with psycopg.connect(clean_db, autocommit=True) as connection:
        yield connection
    db.close_pool()
    get_settings.cache_clear()


def run(conn: psycopg.Connection, **kwargs: Any) -> retention.RetentionReport:
    """One run with the settings of the environment as the test left it."""
    get_settings.cache_clear()
    return retention.run(conn, get_settings(), **kwargs)


def event(kind: str, warehouse: uuid.UUID, product: uuid.UUID, quantity: int) -> bytes:
    return body(envelope(kind, movement_id=str(uuid.uuid4()), warehouse_id=str(warehouse),
                         product_id=str(product), quantity=quantity))  # fmt: skip


def apply(raw: bytes) -> Status:
    [outcome] = ingest([parse_event(raw, Origin.webhook())])
    return outcome.status


def stock(conn: psycopg.Connection, w: uuid.UUID, p: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT quantity FROM stock WHERE warehouse_id = %s AND product_id = %s", (w, p)
    ).fetchone()
    return int(row[0]) if row else 0


def opening_plus_kept(conn: psycopg.Connection, w: uuid.UUID, p: uuid.UUID) -> int:
    """The reconciliation rule of migration 0004, in one statement (one snapshot)."""
    row = conn.execute(
        """
        SELECT coalesce((SELECT quantity FROM stock_opening
                         WHERE warehouse_id = %(w)s AND product_id = %(p)s), 0)
             + coalesce((SELECT sum(CASE WHEN event = 'arrival' THEN quantity ELSE -quantity END)
                         FROM movement_events WHERE warehouse_id = %(w)s AND product_id = %(p)s), 0)
        """,
        {"w": w, "p": p},
    ).fetchone()
    assert row is not None
    return int(row[0])


def age_events(conn: psycopg.Connection, days: int, *, first: int) -> None:
    """Move the `first` events of the log (lowest ids: the oldest) `days` back in time."""
    conn.execute(
        "UPDATE movement_events SET received_at = received_at - make_interval(days => %s) "
        "WHERE id IN (SELECT id FROM movement_events ORDER BY id LIMIT %s)",
        (days, first),
    )


# --- the event log -------------------------------------------------------------------------------


def test_old_events_fold_into_the_opening_balance_and_the_stock_still_adds_up(conn, monkeypatch) -> None:
    a, b = (uuid.uuid4(), uuid.uuid4()), (uuid.uuid4(), uuid.uuid4())
    old = [event("arrival", *a, 10), event("departure", *a, 3), event("arrival", *b, 7)]
    recent = [event("arrival", *a, 5), event("departure", *b, 2)]
    for raw in old + recent:
        assert apply(raw) is Status.APPLIED
    age_events(conn, 400, first=len(old))
    assert [stock(conn, *a), stock(conn, *b)] == [12, 5]

    monkeypatch.setenv("EVENT_LOG_RETENTION_DAYS", "30")
    report = run(conn)

    assert report.event_log.enabled and report.event_log.folded_events == 3
    assert conn.execute("SELECT count(*) FROM movement_events").fetchone() == (2,)
    openings = dict(
        ((w, p), (q, n)) for w, p, q, n in conn.execute(
            "SELECT warehouse_id, product_id, quantity, folded_events FROM stock_opening"
        )
    )  # fmt: skip
    assert openings == {a: (7, 2), b: (7, 1)}
    for key, expected in ((a, 12), (b, 5)):
        assert stock(conn, *key) == opening_plus_kept(conn, *key) == expected

    again = run(conn)  # idempotent: nothing left to fold
    assert again.event_log.folded_events == 0
    assert opening_plus_kept(conn, *a) == 12


def test_an_old_event_delivered_again_after_its_fold_is_still_a_duplicate(conn, monkeypatch) -> None:
    key = (uuid.uuid4(), uuid.uuid4())
    arrival = event("arrival", *key, 9)
    assert apply(arrival) is Status.APPLIED
    age_events(conn, 400, first=1)
    monkeypatch.setenv("EVENT_LOG_RETENTION_DAYS", "30")
    assert run(conn).event_log.folded_events == 1
    assert conn.execute("SELECT count(*) FROM movement_events").fetchone() == (0,)

    assert apply(arrival) is Status.DUPLICATE  # `movements` remembers it
    assert stock(conn, *key) == opening_plus_kept(conn, *key) == 9
    assert conn.execute("SELECT count(*) FROM movement_events").fetchone() == (0,)


def test_without_event_log_retention_nothing_is_folded(conn, monkeypatch) -> None:
    apply(event("arrival", uuid.uuid4(), uuid.uuid4(), 1))
    age_events(conn, 4000, first=1)
    report = run(conn)
    assert report.event_log.enabled is False
    assert conn.execute("SELECT count(*) FROM movement_events").fetchone() == (1,)


# --- dead letters --------------------------------------------------------------------------------


def dead_letter(
    conn: psycopg.Connection,
    *,
    days_old: int,
    status: str | None = None,
    replayed_days_ago: int | None = None,
    raw: bytes = b'{"not": "an event"}',
) -> int:
    row = conn.execute(
        """
        INSERT INTO rejected_events
            (reason, detail, raw_payload, origin, received_at, replayed_at, replay_status)
        VALUES ('insufficient_stock', 'test', %s, 'webhook', now() - make_interval(days => %s),
                CASE WHEN %s::int IS NULL THEN NULL ELSE now() - make_interval(days => %s::int) END, %s)
        RETURNING id
        """,
        (raw, days_old, replayed_days_ago, replayed_days_ago, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


def remaining(conn: psycopg.Connection) -> set[int]:
    return {int(r[0]) for r in conn.execute("SELECT id FROM rejected_events")}


def test_resolved_dead_letters_go_unresolved_ones_stay_without_an_archive(conn, monkeypatch) -> None:
    applied_old = dead_letter(conn, days_old=100, status="applied", replayed_days_ago=95)
    duplicate_old = dead_letter(conn, days_old=200, status="duplicate", replayed_days_ago=150)
    applied_recently = dead_letter(conn, days_old=100, status="applied", replayed_days_ago=5)
    applied_young = dead_letter(conn, days_old=10, status="applied", replayed_days_ago=9)
    unresolved_old = dead_letter(conn, days_old=300)
    rejected_again_old = dead_letter(conn, days_old=300, status="rejected", replayed_days_ago=200)
    copy_pending = dead_letter(conn, days_old=300, status="applied", replayed_days_ago=200)
    conn.execute(
        "INSERT INTO dead_letter_outbox (rejected_event_id, topic) VALUES (%s, 'dlq')", (copy_pending,)
    )

    report = run(conn)

    kept = {applied_recently, applied_young, unresolved_old, rejected_again_old, copy_pending}
    assert remaining(conn) == kept
    assert {applied_old, duplicate_old}.isdisjoint(remaining(conn))
    letters = report.dead_letters
    assert letters is not None
    assert (letters.deleted_resolved, letters.deleted_unresolved, letters.archived) == (2, 0, 0)
    assert (letters.kept_unresolved, letters.kept_pending_copy) == (2, 1)


def test_dry_run_counts_and_changes_nothing(conn, monkeypatch) -> None:
    dead_letter(conn, days_old=100, status="applied", replayed_days_ago=100)
    dead_letter(conn, days_old=100)
    apply(event("arrival", uuid.uuid4(), uuid.uuid4(), 1))
    age_events(conn, 400, first=1)
    monkeypatch.setenv("EVENT_LOG_RETENTION_DAYS", "30")
    before = remaining(conn)

    report = run(conn, dry_run=True)

    assert report.dry_run and report.dead_letters is not None
    assert (report.dead_letters.deleted_resolved, report.dead_letters.kept_unresolved) == (1, 1)
    assert report.event_log.folded_events == 1
    assert remaining(conn) == before
    assert conn.execute("SELECT count(*) FROM movement_events").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM stock_opening").fetchone() == (0,)


def cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "retention", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "CACHE_ENABLED": "false", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_archives_every_expired_dead_letter_then_deletes_it(conn, clean_db, tmp_path) -> None:
    binary = b"\x00\xffnot utf-8" * 10
    unresolved = dead_letter(conn, days_old=120, raw=binary)
    resolved = dead_letter(conn, days_old=120, status="duplicate", replayed_days_ago=100)
    young = dead_letter(conn, days_old=1)

    dry = cli(clean_db, "--dry-run", "--archive", str(tmp_path))
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["dead_letters"]["archived"] == 2
    assert list(tmp_path.iterdir()) == [] and remaining(conn) == {unresolved, resolved, young}

    done = cli(clean_db, "--archive", str(tmp_path))
    assert done.returncode == 0, done.stderr
    letters = json.loads(done.stdout)["dead_letters"]
    assert (letters["archived"], letters["deleted_resolved"], letters["deleted_unresolved"]) == (2, 1, 1)
    (archive,) = tmp_path.iterdir()
    assert letters["archive_file"] == str(archive)
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    by_id = {line["id"]: line for line in lines}
    assert set(by_id) == {unresolved, resolved}
    assert base64.b64decode(by_id[unresolved]["raw_payload_base64"]) == binary
    assert by_id[resolved]["replay_status"] == "duplicate" and by_id[unresolved]["replay_status"] is None
    assert remaining(conn) == {young}
    assert "deleted 2 dead letters (2 archived)" in done.stderr

    again = cli(clean_db, "--archive", str(tmp_path))  # nothing left: no second, empty file
    assert json.loads(again.stdout)["dead_letters"]["archived"] == 0
    assert len(list(tmp_path.iterdir())) == 1


def test_the_cli_names_the_unresolved_ones_it_keeps(conn, clean_db) -> None:
    dead_letter(conn, days_old=120)
    result = cli(clean_db)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dead_letters"]["kept_unresolved"] == 1
    assert "kept 1 unresolved (pass --archive DIR to archive and delete them)" in result.stderr
    assert len(remaining(conn)) == 1


# --- monitoring rows, concurrency ----------------------------------------------------------------


def test_outcome_counts_and_consumer_lag_older_than_the_retention_go(conn, monkeypatch) -> None:
    conn.execute(
        """
        INSERT INTO event_outcome_counts (minute, origin, outcome, reason, shard, events) VALUES
            (date_trunc('minute', now()) - interval '100 days', 'kafka', 'applied', '', 0, 5),
            (date_trunc('minute', now()) - interval '1 day', 'kafka', 'applied', '', 0, 7)
        """
    )
    conn.execute(
        """
        INSERT INTO consumer_lag (group_id, topic, partition, lag, consumer, reported_at) VALUES
            ('g', 't', 0, 3, 'c', now() - interval '100 days'), ('g', 't', 1, 4, 'c', now())
        """
    )
    report = run(conn)
    assert (report.outcome_counts_deleted, report.consumer_lag_deleted) == (1, 1)
    assert conn.execute("SELECT events FROM event_outcome_counts").fetchall() == [(7,)]
    assert conn.execute("SELECT partition FROM consumer_lag").fetchall() == [(1,)]


def test_a_second_run_at_the_same_time_does_nothing(conn, clean_db, monkeypatch) -> None:
    old = dead_letter(conn, days_old=100, status="applied", replayed_days_ago=100)
    with psycopg.connect(clean_db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (retention.RETENTION_LOCK_ID,))
        report = run(conn)
        assert report.skipped == "another retention run holds the lock"
        assert old in remaining(conn)
        result = cli(clean_db)
        assert result.returncode == 0 and json.loads(result.stdout)["skipped"]
    assert run(conn).skipped is None  # the lock is free again: this run works
    assert old not in remaining(conn)
