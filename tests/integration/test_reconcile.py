"""`warehouse-stock reconcile`: clean books pass, and each kind of broken row is caught by its check.

The books are built the way the service builds them: Kafka batches and webhook calls through the
ledger, a redelivered batch, refusals of every reason, a departure retried automatically when its
stock arrived (in a later batch and within one batch), an operator's replay, a departure applied
by a second delivery while its first refusal stays parked, a placeholder stock row, and a
retention fold (events moved into `stock_opening` as migration 0004 specifies). Each test then
breaks one row on purpose, commits, and runs the command: it must print exactly that discrepancy
and exit 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cli.main import main as cli_main
from common.adapters import cache, db
from common.adapters.config import get_settings
from common.domain.events import Origin, parse_event
from common.domain.outcomes import Outcome
from common.ledger import apply as ledger
from common.ledger import use_cases as service
from common.operations.reconcile import reconcile
from tools.corpus import envelope

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "reconcile-test"


def body(mid: uuid.UUID, event: str, warehouse: uuid.UUID, product: uuid.UUID, quantity: int) -> bytes:
    doc = envelope(
        movement_id=mid, warehouse_id=warehouse, product_id=product, event=event, quantity=quantity
    )
    return json.dumps(doc).encode()


@dataclass
class Books:
    """The mixed stream's books, and the rows the tests break."""

    conn: psycopg.Connection
    url: str
    offset: int = 0
    w1: uuid.UUID = field(default_factory=uuid.uuid4)
    w2: uuid.UUID = field(default_factory=uuid.uuid4)
    w3: uuid.UUID = field(default_factory=uuid.uuid4)  # never stocked
    p1: uuid.UUID = field(default_factory=uuid.uuid4)
    p2: uuid.UUID = field(default_factory=uuid.uuid4)
    ids: dict[str, Any] = field(default_factory=dict)

    def kafka(self, *bodies: bytes, at: int | None = None) -> list[Outcome]:
        """One Kafka batch of consecutive offsets (from `at`: a redelivery of earlier records)."""
        start = self.offset if at is None else at
        items = [parse_event(raw, Origin.kafka(TOPIC, 0, start + i)) for i, raw in enumerate(bodies)]
        if at is None:
            self.offset += len(bodies)
        return db.run_in_transaction(lambda c: ledger.apply_events(c, items), conn=self.conn)

    def webhook(self, raw: bytes) -> Outcome:
        item = parse_event(raw, Origin.webhook())
        (outcome,) = db.run_in_transaction(lambda c: ledger.apply_events(c, [item]), conn=self.conn)
        return outcome

    def one(self, sql: str, *params: Any) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        assert row is not None, sql
        return row[0]


def build(books: Books) -> None:
    """The mixed stream; each step asserts its outcome, so the books are what the tests assume."""
    b, w1, w2, w3, p1, p2 = books, books.w1, books.w2, books.w3, books.p1, books.p2
    m = [uuid.uuid4() for _ in range(12)]
    first = [
        body(m[0], "arrival", w1, p1, 10),
        body(m[1], "arrival", w1, p2, 5),
        b'{"not": "an envelope"}',
        body(m[2], "departure", w1, p1, 4),
    ]
    assert [o.status for o in b.kafka(*first)] == ["applied", "applied", "rejected", "applied"]
    # The same batch redelivered: nothing changes, the bad record is found parked.
    again = b.kafka(*first, at=0)
    assert [o.status for o in again] == ["duplicate", "duplicate", "rejected", "duplicate"]
    assert b.webhook(body(m[2], "arrival", w2, p1, 4)).status == "applied"
    conflict = b.webhook(body(m[2], "arrival", w2, p1, 3))
    assert conflict.reason == "conflict"
    b.ids["conflict"] = conflict.rejected_event_id
    # A Kafka departure from a pair with no stock waits (a placeholder row), then an arrival in a
    # later batch lets it through (retried automatically).
    (waiting,) = b.kafka(body(m[3], "departure", w2, p2, 7))
    assert waiting.reason == "insufficient_stock"
    b.ids["auto_retried"] = waiting.rejected_event_id
    assert [o.status for o in b.kafka(body(m[4], "arrival", w2, p2, 10))] == ["applied"]
    # A webhook departure refused (webhook refusals do not wait), replayed by an operator later.
    refused = b.webhook(body(m[5], "departure", w2, p1, 9))
    assert refused.reason == "insufficient_stock" and refused.rejected_event_id is not None
    b.ids["replayed"] = refused.rejected_event_id
    assert b.webhook(body(m[6], "arrival", w2, p1, 20)).status == "applied"
    (replayed,) = service.replay(ids=[refused.rejected_event_id])
    assert replayed.status == "applied"
    # Refused, then the same departure sent again once stock arrived: applied by that delivery.
    early = b.webhook(body(m[7], "departure", w1, p2, 50))
    assert early.reason == "insufficient_stock"
    b.ids["settled_elsewhere"] = early.rejected_event_id
    assert b.webhook(body(m[8], "arrival", w1, p2, 100)).status == "applied"
    assert b.webhook(body(m[7], "departure", w1, p2, 50)).status == "applied"
    # Departures from a pair never stocked: from Kafka (waits, placeholder row), from the webhook.
    (never,) = b.kafka(body(m[9], "departure", w3, p1, 3))
    assert never.reason == "insufficient_stock"
    b.ids["never_applied"] = never.rejected_event_id
    b.ids["webhook_letter"] = b.webhook(body(uuid.uuid4(), "departure", w3, p2, 1)).rejected_event_id
    # Refused and let through within one batch: nothing parked.
    in_batch = b.kafka(body(m[10], "departure", w1, p1, 8), body(m[11], "arrival", w1, p1, 5))
    assert [o.status for o in in_batch] == ["applied", "applied"]
    assert b.webhook(body(m[0], "arrival", w1, p1, 10)).status == "duplicate"  # m0 again, by webhook

    auto = b.one("SELECT replay_status FROM rejected_events WHERE id = %s", b.ids["auto_retried"])
    assert auto == "applied"
    assert b.one("SELECT count(*) FROM stock WHERE updated_at IS NULL") == 1  # the placeholder of w3/p1
    expected = {(w1, p1): 10 - 4 - 8 + 5, (w1, p2): 5 + 100 - 50, (w2, p1): 4 + 20 - 9, (w2, p2): 10 - 7}
    for (w, p), quantity in expected.items():
        assert (
            b.one("SELECT quantity FROM stock WHERE warehouse_id = %s AND product_id = %s", w, p) == quantity
        )
    fold_oldest(b.conn, 3)
    b.ids["movements"] = m


def fold_oldest(conn: psycopg.Connection, events: int) -> None:
    """What retention does (migration 0004): the oldest events leave the log for the opening balance."""
    conn.execute(
        """
        WITH gone AS (
            DELETE FROM movement_events
            WHERE id IN (SELECT id FROM movement_events ORDER BY id LIMIT %s)
            RETURNING warehouse_id, product_id,
                      CASE WHEN event = 'arrival' THEN quantity ELSE -quantity END AS delta
        )
        INSERT INTO stock_opening AS o (warehouse_id, product_id, quantity, folded_until, folded_events)
        SELECT warehouse_id, product_id, sum(delta), now(), count(*) FROM gone GROUP BY 1, 2
        ON CONFLICT (warehouse_id, product_id) DO UPDATE SET
            quantity = o.quantity + EXCLUDED.quantity,
            folded_events = o.folded_events + EXCLUDED.folded_events
        """,
        (events,),
    )


@pytest.fixture
def books(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Books]:
    """Empty ledger tables (stock_opening too), the mixed stream applied; the service (the
    operator's replay) pointed at the test database."""
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("CACHE_ENABLED", "false")
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    monkeypatch.delenv("DLQ_TOPIC", raising=False)
    get_settings.cache_clear()
    db.close_pool()
    cache.reset()
    with psycopg.connect(clean_db, autocommit=True, connect_timeout=5) as conn:
        conn.execute("TRUNCATE stock_opening")
        books = Books(conn, clean_db)
        build(books)
        yield books
        conn.execute("TRUNCATE stock_opening")  # clean_db does not know the table (yet)
    db.close_pool()
    cache.reset()
    get_settings.cache_clear()


def run_command(books: Books, capsys: pytest.CaptureFixture[str]) -> tuple[int, set[tuple[str, str, str]]]:
    """`warehouse-stock reconcile --json` in this process: its exit status and its findings as
    (kind, check, key)."""
    capsys.readouterr()
    status = cli_main(["reconcile", "--json", "--database-url", books.url])
    out = capsys.readouterr().out
    found = set()
    for line in out.splitlines():
        row = json.loads(line)
        found.add((row["kind"], row["check"], json.dumps(row["key"], sort_keys=True)))
    return status, found


def key(**columns: Any) -> str:
    return json.dumps(
        {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in columns.items()}, sort_keys=True
    )


def pair(w: uuid.UUID, p: uuid.UUID) -> str:
    return key(warehouse_id=w, product_id=p)


def settled_note(books: Books) -> tuple[str, str, str]:
    return ("note", "dead_letter_settled_elsewhere", key(rejected_event_id=books.ids["settled_elsewhere"]))


def assert_caught(books: Books, capsys: pytest.CaptureFixture[str], *expected: tuple[str, str]) -> None:
    """The command exits 1 and reports exactly these (check, key) discrepancies (and the note)."""
    status, found = run_command(books, capsys)
    assert found == {("discrepancy", check, k) for check, k in expected} | {settled_note(books)}
    assert status == 1


# --- clean books ---------------------------------------------------------------------------------


def test_the_mixed_stream_balances_with_one_note(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    report = reconcile(books.conn)
    assert report.ok and report.discrepancies == []
    assert [(n.check, n.key) for n in report.notes] == [
        ("dead_letter_settled_elsewhere", {"rejected_event_id": books.ids["settled_elsewhere"]})
    ]
    assert books.one("SELECT count(*) FROM stock_opening") > 0  # the fold did fold something
    status, found = run_command(books, capsys)
    assert (status, found) == (0, {settled_note(books)})


def test_books_still_balance_after_every_event_is_folded(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    fold_oldest(books.conn, 1000)
    assert books.one("SELECT count(*) FROM movement_events") == 0
    assert run_command(books, capsys) == (0, {settled_note(books)})


def test_the_command_exits_1_and_prints_the_discrepancy(books: Books) -> None:
    books.conn.execute(
        "UPDATE stock SET quantity = quantity + 1 WHERE warehouse_id = %s AND product_id = %s",
        (books.w2, books.p2),
    )
    env = {**os.environ, "DATABASE_URL": books.url}
    for argv in (
        [str(Path(sys.executable).parent / "warehouse-stock"), "reconcile"],
        [sys.executable, "-m", "cli", "reconcile"],
    ):
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        (line,) = [x for x in done.stdout.splitlines() if not x.startswith("note:")]
        assert line.startswith(f"stock_balance  warehouse_id={books.w2} product_id={books.p2}")
        assert "expected 3  found 4" in line
        assert "reconcile: FAILED: 1 discrepancies, 1 notes" in done.stderr


def test_an_unreachable_database_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://nobody:nothing@127.0.0.1:1/none"
    assert cli_main(["reconcile", "--database-url", url]) == 2
    assert "cannot read the books" in capsys.readouterr().err


# --- stock -----------------------------------------------------------------------------------------


def test_a_stock_row_off_its_events(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    books.conn.execute(
        "UPDATE stock SET quantity = quantity + 1 WHERE warehouse_id = %s AND product_id = %s",
        (books.w2, books.p1),
    )
    assert_caught(books, capsys, ("stock_balance", pair(books.w2, books.p1)))


def test_a_missing_stock_row(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    books.conn.execute("DELETE FROM stock WHERE warehouse_id = %s AND product_id = %s", (books.w1, books.p2))
    assert_caught(books, capsys, ("stock_balance", pair(books.w1, books.p2)))


def test_a_negative_stock(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    """Only possible without the CHECK constraint: dropped for the test, then restored."""
    conn = books.conn
    conn.execute("ALTER TABLE stock DROP CONSTRAINT stock_quantity_not_negative")
    try:
        conn.execute(
            "UPDATE stock SET quantity = -1 WHERE warehouse_id = %s AND product_id = %s", (books.w3, books.p1)
        )
        w3p1 = pair(books.w3, books.p1)
        assert_caught(books, capsys, ("stock_balance", w3p1), ("stock_negative", w3p1))
    finally:
        conn.execute("UPDATE stock SET quantity = 0 WHERE quantity < 0")
        conn.execute("ALTER TABLE stock ADD CONSTRAINT stock_quantity_not_negative CHECK (quantity >= 0)")


def test_a_stocked_pair_marked_as_a_placeholder(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    books.conn.execute(
        "UPDATE stock SET updated_at = NULL WHERE warehouse_id = %s AND product_id = %s", (books.w2, books.p2)
    )
    assert_caught(books, capsys, ("stock_history", pair(books.w2, books.p2)))


def test_a_touched_stock_row_with_no_history(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    w, p = uuid.uuid4(), uuid.uuid4()
    books.conn.execute("INSERT INTO stock VALUES (%s, %s, 0, now())", (w, p))
    assert_caught(books, capsys, ("stock_history", pair(w, p)))


# --- movements and the event log -------------------------------------------------------------------


def test_an_arrived_quantity_off_its_event(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    mid = books.ids["movements"][2]  # delivered: departure 4 from w1, arrival 4 at w2
    books.conn.execute("UPDATE movements SET arrived_quantity = 5 WHERE movement_id = %s", (mid,))
    assert_caught(books, capsys, ("movement_halves", key(movement_id=mid, event="arrival")))


def test_an_event_whose_half_is_missing(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    mid = books.ids["movements"][10]
    books.conn.execute(
        "UPDATE movements SET departed_at = NULL, departed_quantity = NULL, source_warehouse_id = NULL "
        "WHERE movement_id = %s",
        (mid,),
    )
    assert_caught(books, capsys, ("movement_halves", key(movement_id=mid, event="departure")))


def test_a_product_changed_on_a_movement(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    mid = books.ids["movements"][4]  # an arrival only
    books.conn.execute("UPDATE movements SET product_id = %s WHERE movement_id = %s", (uuid.uuid4(), mid))
    assert_caught(books, capsys, ("movement_halves", key(movement_id=mid, event="arrival")))


def test_an_event_deleted_from_the_log(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    mid = books.ids["movements"][6]  # arrival of 20 at w2/p1
    books.conn.execute("DELETE FROM movement_events WHERE movement_id = %s", (mid,))
    w2p1 = pair(books.w2, books.p1)
    assert_caught(books, capsys, ("stock_balance", w2p1), ("halves_without_events", w2p1))


def test_an_opening_balance_counting_other_events(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    """The stock still balances (opening quantities unchanged), but the fold's count does not."""
    w, p = books.conn.execute("SELECT warehouse_id, product_id FROM stock_opening LIMIT 1").fetchone() or ()
    books.conn.execute(
        "UPDATE stock_opening SET folded_events = folded_events + 1 "
        "WHERE warehouse_id = %s AND product_id = %s",
        (w, p),
    )
    assert_caught(books, capsys, ("halves_without_events", pair(w, p)))


# --- dead letters -----------------------------------------------------------------------------------


def test_a_dead_letter_marked_applied_whose_event_is_not_in_the_books(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = books.ids["never_applied"]
    books.conn.execute(
        "UPDATE rejected_events SET replay_status = 'applied', replayed_at = now() WHERE id = %s", (rid,)
    )
    assert_caught(books, capsys, ("dead_letter_replays", key(rejected_event_id=rid)))


def test_a_dead_letter_applied_to_another_warehouse(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    rid = books.ids["replayed"]
    books.conn.execute("UPDATE rejected_events SET warehouse_id = %s WHERE id = %s", (uuid.uuid4(), rid))
    assert_caught(books, capsys, ("dead_letter_replays", key(rejected_event_id=rid)))


def test_a_dead_letter_applied_as_another_product(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    rid = books.ids["auto_retried"]
    books.conn.execute("UPDATE rejected_events SET product_id = %s WHERE id = %s", (uuid.uuid4(), rid))
    assert_caught(books, capsys, ("dead_letter_replays", key(rejected_event_id=rid)))


def test_a_replay_state_without_its_time(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    rid = books.ids["auto_retried"]
    books.conn.execute("UPDATE rejected_events SET replayed_at = NULL WHERE id = %s", (rid,))
    assert_caught(books, capsys, ("dead_letter_replays", key(rejected_event_id=rid)))


def test_an_unknown_replay_state(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    rid = books.ids["never_applied"]
    books.conn.execute(
        "UPDATE rejected_events SET replay_status = 'maybe', replayed_at = now() WHERE id = %s", (rid,)
    )
    assert_caught(books, capsys, ("dead_letter_replays", key(rejected_event_id=rid)))


def test_a_kafka_dead_letter_without_its_coordinates(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = books.ids["never_applied"]
    books.conn.execute("UPDATE rejected_events SET kafka_topic = NULL WHERE id = %s", (rid,))
    assert_caught(books, capsys, ("dead_letter_fields", key(rejected_event_id=rid)))


def test_a_webhook_dead_letter_with_kafka_coordinates(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = books.ids["webhook_letter"]
    books.conn.execute(
        "UPDATE rejected_events SET kafka_topic = 't', kafka_partition = 0, kafka_offset = 99, "
        "record_digest = '\\x00' WHERE id = %s",
        (rid,),
    )
    assert_caught(books, capsys, ("dead_letter_fields", key(rejected_event_id=rid)))


def test_a_refused_valid_event_without_its_half(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    rid = books.ids["conflict"]
    books.conn.execute("UPDATE rejected_events SET event = NULL WHERE id = %s", (rid,))
    assert_caught(books, capsys, ("dead_letter_fields", key(rejected_event_id=rid)))


def test_a_conflict_with_no_movement_standing(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    rid = books.ids["conflict"]
    books.conn.execute("UPDATE rejected_events SET movement_id = %s WHERE id = %s", (uuid.uuid4(), rid))
    assert_caught(books, capsys, ("dead_letter_fields", key(rejected_event_id=rid)))


def test_a_lack_of_stock_on_an_arrival(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    rid = books.ids["webhook_letter"]
    books.conn.execute("UPDATE rejected_events SET event = 'arrival' WHERE id = %s", (rid,))
    assert_caught(books, capsys, ("dead_letter_fields", key(rejected_event_id=rid)))


def test_a_dead_letter_copy_queued_for_a_webhook_refusal(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = books.ids["webhook_letter"]
    books.conn.execute("INSERT INTO dead_letter_outbox (rejected_event_id, topic) VALUES (%s, 'dlq')", (rid,))
    assert_caught(books, capsys, ("dead_letter_fields", key(rejected_event_id=rid)))


def test_a_note_is_not_a_discrepancy_but_its_replay_settles_it(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    """The departure applied by its second delivery: replaying its first refusal finds it applied."""
    (result,) = service.replay(ids=[books.ids["settled_elsewhere"]])
    assert result.status == "duplicate"
    assert run_command(books, capsys) == (0, set())
