"""Books that balance: set-based checks that stock, movements, the event log and the dead letters agree.

`reconcile(conn)` runs every check in one REPEATABLE READ, READ ONLY transaction, so it sees one
committed state of the books (the ledger writes a batch, and a retention fold moves events, in one
transaction each: the books balance at every commit, and a live service can be checked). Every
check is set-based SQL returning only the offending rows, never a row-by-row walk in Python;
checks that read the same rows share one statement (one pass over the event log, not three).
`warehouse-stock reconcile` (cli/reconcile.py) prints the report.

What the constraints already guarantee, so no check repeats it: one event per (movement_id,
event) (UNIQUE), event is `arrival`/`departure` and quantity > 0 (CHECK), one stock row per pair
and one movement row per movement (primary keys), a dead letter's reason is one of three (CHECK),
a Kafka record is parked once and has a digest when it has a topic (unique index, CHECK), an
outbox row names an existing dead letter once (primary key, foreign key), an opening balance is
one per pair with folded_events > 0. `stock_negative` is the one constraint checked anyway.

Folded events (retention, migration 0004) leave `movement_events` for `stock_opening`, but
`movements` is never trimmed, so every folded event is a movement half with no event in the log.
No half is excused by age: its received_at went with its event, and a fold (by id ranges) need
not take every event older than `folded_until`. Instead, per pair, the halves with no event must
be exactly what was folded: `folded_events` of them, net (arrivals minus departures) the opening
`quantity`. A lost event breaks that, and `stock_balance`, whatever its age.

A note, not a discrepancy: a departure refused for lack of stock, still unresolved, whose very
half is applied. Another delivery of the same event was decided on its own and applied (the
producer's retry is a new record; a webhook client resends after its 409; the same events
published again into a recreated topic, even at the same offsets, which is why matching
coordinates prove nothing without the record digest the log does not keep). The stock counts the
event once and the row truly records a refused delivery: nothing is wrong and nothing is left to
replay. A Kafka one is settled (`duplicate`) by the next arrival on its pair within
AUTO_REPLAY_WINDOW_SECONDS, any one by a replay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

# Most offending rows read per check: a badly broken database must not flood the terminal.
MAX_ROWS_PER_CHECK = 1000


@dataclass(frozen=True)
class Discrepancy:
    """One offending row: which check, which row (its key columns), what should be, what is."""

    check: str
    key: dict[str, Any]
    expected: str
    found: str

    def line(self) -> str:
        key = " ".join(f"{k}={v}" for k, v in self.key.items())
        return f"{self.check}  {key}  expected {self.expected}  found {self.found}"


@dataclass
class Report:
    """Every discrepancy (the books do not balance), every note (worth a look, not wrong)."""

    discrepancies: list[Discrepancy] = field(default_factory=list)
    notes: list[Discrepancy] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def summary(self) -> str:
        sizes = ", ".join(f"{n} {table}" for table, n in self.counts.items())
        cut = (
            f"; output cut at {MAX_ROWS_PER_CHECK} rows for {', '.join(self.truncated)}"
            if self.truncated
            else ""
        )
        return (
            f"reconcile: {'OK' if self.ok else 'FAILED'}: {len(self.discrepancies)} discrepancies, "
            f"{len(self.notes)} notes, {len(self.seconds)} checks over {sizes} "
            f"in {sum(self.seconds.values()):.2f}s{cut}"
        )


# The halves each movement row holds, one row per half present (any of its columns set).
_HALVES = """
    SELECT m.movement_id, h.event, m.product_id, h.warehouse_id, h.quantity, h.at
    FROM movements m
    CROSS JOIN LATERAL (VALUES
        ('departure', m.source_warehouse_id, m.departed_quantity, m.departed_at),
        ('arrival', m.destination_warehouse_id, m.arrived_quantity, m.arrived_at)
    ) AS h(event, warehouse_id, quantity, at)
    WHERE h.warehouse_id IS NOT NULL OR h.quantity IS NOT NULL OR h.at IS NOT NULL
"""
_NET = "CASE WHEN {0}.event = 'arrival' THEN {0}.quantity ELSE -{0}.quantity END"
_PAIR = "json_build_object('warehouse_id', warehouse_id, 'product_id', product_id)"
_HALF = (
    "format('product %s, warehouse %s, quantity %s, at %s', "
    "{0}.product_id, {0}.warehouse_id, {0}.quantity, {0}.{1})"
)

# Each statement returns its offending rows as (check, key, expected, found).
STATEMENTS: list[tuple[tuple[str, ...], str]] = [
    (
        ("stock_balance", "stock_negative", "stock_history"),
        f"""
        WITH ev AS (
            SELECT warehouse_id, product_id, sum({_NET.format("e")})::bigint AS net
            FROM movement_events e GROUP BY warehouse_id, product_id
        ), books AS (
            SELECT warehouse_id, product_id, s.quantity, s.updated_at, s.warehouse_id IS NOT NULL AS has_row,
                   coalesce(o.quantity, 0) + coalesce(ev.net, 0) AS expected,
                   o.warehouse_id IS NOT NULL OR ev.warehouse_id IS NOT NULL AS history
            FROM stock s FULL JOIN stock_opening o USING (warehouse_id, product_id)
            FULL JOIN ev USING (warehouse_id, product_id)
        )
        SELECT x.name, {_PAIR}, x.expected, x.found
        FROM books CROSS JOIN LATERAL (VALUES
            -- stock = opening balance + arrivals - departures, for every pair anything knows of.
            ('stock_balance', quantity IS DISTINCT FROM expected, expected::text,
             coalesce(quantity::text, 'no stock row')),
            -- Backed by a CHECK constraint; checked anyway (it can be dropped, or added NOT VALID).
            ('stock_negative', quantity < 0, '>= 0', quantity::text),
            -- updated_at NULL marks a placeholder (a departure waits on a pair never stocked; the
            -- API reads 0, never updated): it has no history, and a touched row has one.
            ('stock_history', has_row AND (updated_at IS NULL) = history,
             CASE WHEN history THEN 'updated_at set: applied events touched it' ELSE 'a placeholder' END,
             CASE WHEN history THEN 'updated_at null' ELSE 'updated_at set, no event, no opening' END)
        ) AS x(name, bad, expected, found)
        WHERE x.bad
        """,
    ),
    (
        ("movement_halves", "halves_without_events"),
        f"""
        WITH odd AS (  -- the pairs (half, event) that differ, and the unpaired ones of either side
            SELECT e.movement_id, coalesce(e.event, h.event) AS event,
                   h.movement_id IS NOT NULL AS has_half, h.movement_id || ' ' || h.event AS half,
                   {_HALF.format("e", "occurred_at")} AS logged, {_HALF.format("h", "at")} AS held,
                   h.warehouse_id, h.product_id, {_NET.format("h")} AS net
            FROM ({_HALVES}) h
            FULL JOIN movement_events e ON e.movement_id = h.movement_id AND e.event = h.event
            WHERE (h.product_id, h.warehouse_id, h.quantity, h.at)
                  IS DISTINCT FROM (e.product_id, e.warehouse_id, e.quantity, e.occurred_at)
        ), missing AS (
            SELECT warehouse_id, product_id, count(*) AS n, sum(net)::bigint AS net,
                   (array_agg(half ORDER BY half))[1:3] AS some
            FROM odd WHERE movement_id IS NULL GROUP BY warehouse_id, product_id
        )
        -- Each event of the log is a half of its movement row, field for field.
        SELECT 'movement_halves', json_build_object('movement_id', movement_id, 'event', event), logged,
               CASE WHEN has_half THEN held ELSE 'no such half in movements' END
        FROM odd WHERE movement_id IS NOT NULL
        UNION ALL
        -- The halves with no event in the log, per pair, are exactly the folded events (above).
        SELECT 'halves_without_events', {_PAIR},
               format('%s folded events, net %s', coalesce(o.folded_events, 0), coalesce(o.quantity, 0)),
               format('%s halves without an event, net %s (%s)', coalesce(m.n, 0), coalesce(m.net, 0),
                      coalesce(array_to_string(m.some, ', '), 'none'))
        FROM missing m FULL JOIN stock_opening o USING (warehouse_id, product_id)
        WHERE (coalesce(m.n, 0), coalesce(m.net, 0))
              <> (coalesce(o.folded_events, 0), coalesce(o.quantity, 0))
        """,
    ),
    (
        ("dead_letter_replays", "dead_letter_fields", "dead_letter_settled_elsewhere"),
        """
        SELECT x.name, json_build_object('rejected_event_id', r.id), x.expected, x.found
        FROM rejected_events r
        LEFT JOIN movements m ON m.movement_id = r.movement_id
        CROSS JOIN LATERAL (SELECT CASE r.event WHEN 'departure' THEN m.source_warehouse_id
                                                WHEN 'arrival' THEN m.destination_warehouse_id END AS w) h
        CROSS JOIN LATERAL (VALUES
            -- A replay recorded as applied (or duplicate: found applied) put its half in the books,
            -- with the dead letter's warehouse and product (where known); the state is a known one.
            ('dead_letter_replays',
             (r.replay_status IS NULL) <> (r.replayed_at IS NULL)
             OR r.replay_status NOT IN ('applied', 'duplicate', 'rejected')
             OR r.replay_status IN ('applied', 'duplicate')
                AND (h.w IS NULL OR h.w <> coalesce(r.warehouse_id, h.w) OR m.product_id <> r.product_id),
             format('replay_status in (applied, duplicate, rejected) with replayed_at, or neither; '
                    'when applied/duplicate, the %s of movement %s in movements', r.event, r.movement_id),
             format('replay_status %s, replayed_at %s, movement half %s', coalesce(r.replay_status, 'null'),
                    coalesce(r.replayed_at::text, 'null'),
                    coalesce(format('warehouse %s product %s', h.w, m.product_id), 'none'))),
            -- What its origin and reason imply: a Kafka one has its coordinates and digest (the
            -- CHECK covers only rows with a topic), a valid event its movement and half, a lack of
            -- stock a departure, a conflict the movement whose first version stands; a copy
            -- queued for DLQ_TOPIC is a Kafka record's.
            ('dead_letter_fields',
             r.origin = 'kafka' AND (r.kafka_topic IS NULL OR r.kafka_partition IS NULL
                                     OR r.kafka_offset IS NULL OR r.record_digest IS NULL)
             OR r.origin <> 'kafka' AND r.kafka_topic IS NOT NULL
             OR r.reason <> 'invalid' AND (r.movement_id IS NULL OR r.event IS NULL)
             OR r.reason = 'insufficient_stock' AND r.event IS DISTINCT FROM 'departure'
             OR r.reason = 'conflict' AND m.movement_id IS NULL
             OR r.origin <> 'kafka'
                AND EXISTS (SELECT 1 FROM dead_letter_outbox x WHERE x.rejected_event_id = r.id),
             format('%s dead letter (%s) with what that implies', r.origin, r.reason),
             format('topic %s partition %s offset %s digest %s, movement %s %s, movement row %s, queued %s',
                    r.kafka_topic, r.kafka_partition, r.kafka_offset, r.record_digest IS NOT NULL,
                    r.movement_id, r.event, m.movement_id IS NOT NULL,
                    EXISTS (SELECT 1 FROM dead_letter_outbox x WHERE x.rejected_event_id = r.id))),
            -- The note (module docstring): an unresolved lack of stock whose departure is applied.
            ('dead_letter_settled_elsewhere',
             r.reason = 'insufficient_stock' AND coalesce(r.replay_status, 'rejected') = 'rejected'
             AND h.w IS NOT NULL AND r.event = 'departure',
             'a departure waiting for stock',
             format('its departure is applied by another delivery (warehouse %s, product %s): '
                    'nothing to replay', h.w, m.product_id))
        ) AS x(name, bad, expected, found)
        WHERE x.bad
        """,
    ),
]
NOTES = frozenset({"dead_letter_settled_elsewhere"})
# The settings of a transaction of its own (see `reconcile`).
OWN_TRANSACTION = (
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    "SET LOCAL statement_timeout = 0",
    "SET LOCAL work_mem = '64MB'",
)
_COUNTS = """
    SELECT (SELECT count(*) FROM movement_events), (SELECT count(*) FROM movements),
           (SELECT count(*) FROM stock), (SELECT count(*) FROM rejected_events)
"""


def reconcile(conn: psycopg.Connection, *, limit: int = MAX_ROWS_PER_CHECK) -> Report:
    """Run every check on one snapshot of the books; at most `limit` rows reported per check.

    On an idle connection, in a transaction of its own: REPEATABLE READ (one snapshot for every
    check), READ ONLY, no statement timeout (a full pass over a large event log may outlast one
    meant for requests), 64 MB of work_mem (its hash joins over whole tables then stay in memory:
    with the default 4 MB a million events spill 1.2 GB to temporary files). Inside the caller's
    transaction, in that one as it is (a test that breaks a row and rolls back). Writes nothing.
    """
    report = Report()
    own = conn.info.transaction_status == TransactionStatus.IDLE
    with conn.transaction():
        if own:
            for setting in OWN_TRANSACTION:
                conn.execute(setting)
        for names, statement in STATEMENTS:
            began = time.perf_counter()
            rows = conn.execute(statement).fetchall()
            seen: dict[str, int] = {}
            for name, key, expected, found in rows:
                seen[name] = seen.get(name, 0) + 1
                if seen[name] > limit:
                    if name not in report.truncated:
                        report.truncated.append(name)
                    continue
                found_row = Discrepancy(name, key, expected, found)
                (report.notes if name in NOTES else report.discrepancies).append(found_row)
            elapsed = time.perf_counter() - began
            for name in names:
                report.seconds[name] = elapsed / len(names)
        counts = conn.execute(_COUNTS).fetchone()
    assert counts is not None
    report.counts = dict(zip(("events", "movements", "stock rows", "dead letters"), counts, strict=True))
    return report
