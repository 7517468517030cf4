"""Reports over the ledger for operators: summary, events per minute, routes, stuck movements, history.

Every function here is one or two statements served by an index (migration 0003), so the console's
pages stay fast on a long event log. Times are PostgreSQL's (`now()`), the clock `received_at`
is written with, so "the last hour" and "older than" agree with the event log.

`stock_as_of` answers from the event log alone: the stock of (warehouse, product) as of T is the
sum of the quantities of its arrivals minus those of its departures among the events whose
`received_at` (the start of the transaction that applied them) is at or before T.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from common import outcome_counts
from common.cursor import DEFAULT_LIMIT, BadCursor, decode_cursor, encode_cursor
from common.dead_letters import raw_text
from common.models import MovementPage, MovementView, StockPage, StockView
from common.outcomes import Reason, Status
from common.reads import MOVEMENT_COLUMNS, movement_from_row

Outcome = Literal["applied", "duplicate", "rejected"]
OUTCOMES: tuple[Outcome, ...] = tuple(s.value for s in Status)  # type: ignore[assignment]
REASONS: tuple[str, ...] = tuple(r.value for r in Reason)
SERIES_MINUTES = 60
# A poller's report older than this is not news: the poller stopped, or runs elsewhere.
LAG_FRESH_SECONDS = 120
LAST_MOVEMENTS = 3
MAX_ROUTES = 1000


def _example(model: type[BaseModel]) -> dict[str, object]:
    return model.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index, return-value]


# ----------------------------------------------------------------------------------- summary


class MinuteCount(BaseModel):
    """Events decided in one minute (by `received_at` minute), by outcome; duplicates included."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"minute": "2025-02-18T14:34:00Z", "applied": 120, "duplicate": 4, "rejected": 1}]
        }
    )

    minute: datetime
    applied: int
    duplicate: int
    rejected: int


class DeadLetterCount(BaseModel):
    """Dead letters of one reason: all kept, and those no replay has resolved yet."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "insufficient_stock", "total": 12, "unresolved": 3}]}
    )

    reason: Literal["invalid", "conflict", "insufficient_stock"]
    total: int
    unresolved: int


class PartitionLag(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_id": "warehouse-stock",
                    "topic": "warehouse-movements",
                    "partition": 0,
                    "lag": 42,
                    "reported_at": "2025-02-18T14:34:50Z",
                }
            ]
        }
    )

    group_id: str
    topic: str
    partition: int
    lag: int
    reported_at: datetime


class PollerLag(BaseModel):
    """Records the local pollers have yet to consume, from reports fresher than two minutes.

    `total` is null when no poller reported lately (none runs, or the app runs in AWS, where the
    event source mapping reports OffsetLag to CloudWatch instead: see `note`).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"total": 42, "partitions": [_example(PartitionLag)], "note": None},
                {
                    "total": None,
                    "partitions": [],
                    "note": "no poller reported in the last 120 s",
                },
            ]
        }
    )

    total: int | None
    partitions: list[PartitionLag]
    note: str | None


class InTransitHead(BaseModel):
    """The movement that has been in transit longest."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "movement_id": "c6290746-790e-43fa-8270-014dc90e02e0",
                    "source_warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
                    "departed_at": "2025-02-18T12:12:56Z",
                    "age_seconds": 8520,
                }
            ]
        }
    )

    movement_id: UUID
    source_warehouse_id: UUID | None
    departed_at: datetime
    age_seconds: int


class Summary(BaseModel):
    """The state of the service at a glance: what the console's overview shows."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "generated_at": "2025-02-18T14:35:02Z",
                    "warehouses": 12,
                    "products": 840,
                    "movements_in_transit": 31,
                    "oldest_in_transit": _example(InTransitHead),
                    "events_last_hour": {"applied": 7200, "duplicate": 240, "rejected": 15},
                    "events_per_minute": [_example(MinuteCount)],
                    "dead_letters": [_example(DeadLetterCount)],
                    "poller_lag": _example(PollerLag),
                }
            ]
        }
    )

    generated_at: datetime
    warehouses: int = Field(description="Warehouses with at least one product an applied event touched.")
    products: int = Field(description="Distinct products held in any warehouse (applied events).")
    movements_in_transit: int
    oldest_in_transit: InTransitHead | None
    events_last_hour: dict[Outcome, int] = Field(
        description="Events decided in the last 60 minutes (the per-minute series summed), by outcome."
    )
    events_per_minute: list[MinuteCount] = Field(
        description="The last 60 minutes, oldest first, one entry per minute (zeros included)."
    )
    dead_letters: list[DeadLetterCount]
    poller_lag: PollerLag


def _now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


def events_per_minute(
    conn: psycopg.Connection, *, now: datetime | None = None, minutes: int = SERIES_MINUTES
) -> list[MinuteCount]:
    """The last `minutes` minutes up to the current one, oldest first, zero-filled."""
    now = now or _now(conn)
    last = now.astimezone(UTC).replace(second=0, microsecond=0)
    first = last - timedelta(minutes=minutes - 1)
    counts: dict[datetime, dict[str, int]] = {}
    for minute, _origin, outcome, _reason, events in outcome_counts.per_minute(conn, first):
        per_outcome = counts.setdefault(minute.astimezone(UTC), {})
        per_outcome[outcome] = per_outcome.get(outcome, 0) + events
    series = []
    for i in range(minutes):
        minute = first + timedelta(minutes=i)
        got = counts.get(minute, {})
        series.append(
            MinuteCount(
                minute=minute,
                applied=got.get("applied", 0),
                duplicate=got.get("duplicate", 0),
                rejected=got.get("rejected", 0),
            )
        )
    return series


def dead_letter_counts(conn: psycopg.Connection) -> list[DeadLetterCount]:
    """Every reason, zeros included; unresolved = never replayed, or replayed and refused again."""
    rows = conn.execute(
        """
        SELECT reason, count(*),
               count(*) FILTER (WHERE replay_status IS NULL OR replay_status = 'rejected')
        FROM rejected_events GROUP BY reason
        """
    ).fetchall()
    found = {reason: (total, unresolved) for reason, total, unresolved in rows}
    counts = [(reason, *found.get(reason, (0, 0))) for reason in REASONS]
    return [
        DeadLetterCount(reason=reason, total=total, unresolved=unresolved)  # type: ignore[arg-type]
        for reason, total, unresolved in counts
    ]


def poller_lag(conn: psycopg.Connection, *, in_lambda: bool = False) -> PollerLag:
    """The local pollers' latest reports, when fresh; in AWS, where to look instead."""
    rows = conn.execute(
        """
        SELECT group_id, topic, partition, lag, reported_at FROM consumer_lag
        WHERE reported_at > now() - make_interval(secs => %s)
        ORDER BY group_id, topic, partition
        """,
        (LAG_FRESH_SECONDS,),
    ).fetchall()
    partitions = [
        PartitionLag(group_id=g, topic=t, partition=p, lag=lag, reported_at=at) for g, t, p, lag, at in rows
    ]
    if partitions:
        return PollerLag(total=sum(p.lag for p in partitions), partitions=partitions, note=None)
    if in_lambda:
        note = (
            "in AWS the Kafka event source mapping reports its lag to CloudWatch: "
            "metric OffsetLag (namespace AWS/Lambda) of the ingest function"
        )
    else:
        note = f"no poller reported in the last {LAG_FRESH_SECONDS} s"
    return PollerLag(total=None, partitions=[], note=note)


def summary(conn: psycopg.Connection, *, in_lambda: bool = False) -> Summary:
    now = _now(conn)
    row = conn.execute(
        """
        SELECT (SELECT count(DISTINCT warehouse_id) FROM stock WHERE updated_at IS NOT NULL),
               (SELECT count(DISTINCT product_id) FROM stock WHERE updated_at IS NOT NULL),
               (SELECT count(*) FROM movements WHERE status = 'in_transit')
        """
    ).fetchone()
    assert row is not None
    warehouses, products, in_transit = row
    oldest = conn.execute(
        """
        SELECT movement_id, source_warehouse_id, departed_at FROM movements
        WHERE status = 'in_transit' ORDER BY departed_at, movement_id LIMIT 1
        """
    ).fetchone()
    series = events_per_minute(conn, now=now)
    return Summary(
        generated_at=now,
        warehouses=warehouses,
        products=products,
        movements_in_transit=in_transit,
        oldest_in_transit=InTransitHead(
            movement_id=oldest[0],
            source_warehouse_id=oldest[1],
            departed_at=oldest[2],
            age_seconds=max(0, int((now - oldest[2]).total_seconds())),
        )
        if oldest
        else None,
        events_last_hour={o: sum(getattr(m, o) for m in series) for o in OUTCOMES},
        events_per_minute=series,
        dead_letters=dead_letter_counts(conn),
        poller_lag=poller_lag(conn, in_lambda=in_lambda),
    )


# ------------------------------------------------------------------------------------ routes


class RouteStats(BaseModel):
    """Delivered movements from one warehouse to another: how many, what was lost, how long it took."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source_warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
                    "destination_warehouse_id": "c1d70455-7e14-11e9-812a-70106f431230",
                    "movements": 140,
                    "movements_with_loss": 9,
                    "units_departed": 14000,
                    "units_arrived": 13968,
                    "units_lost": 32,
                    "loss_rate": 0.002286,
                    "transit_p50_seconds": 7260.0,
                    "transit_p95_seconds": 15480.5,
                    "transit_max_seconds": 20100,
                }
            ]
        }
    )

    source_warehouse_id: UUID
    destination_warehouse_id: UUID
    movements: int
    movements_with_loss: int = Field(description="Movements whose arrival counted fewer units than left.")
    units_departed: int
    units_arrived: int
    units_lost: int = Field(description="Sum over the movements of departed − arrived where positive.")
    loss_rate: float = Field(description="units_lost / units_departed.")
    transit_p50_seconds: float
    transit_p95_seconds: float
    transit_max_seconds: int


class RoutesReport(BaseModel):
    """Routes (source → destination) by units lost, most first, over delivered movements."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "from": "2025-02-01T00:00:00Z",
                    "to": None,
                    "routes_total": 1,
                    "items": [_example(RouteStats)],
                }
            ]
        },
    )

    from_: datetime | None = Field(alias="from", description="The window's start (arrivals at or after).")
    to: datetime | None = Field(description="The window's end (arrivals before).")
    routes_total: int = Field(description="Routes in the window, of which `items` is the first `limit`.")
    items: list[RouteStats]


def routes_report(
    conn: psycopg.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> RoutesReport:
    """Per route, the delivered movements whose arrival time (`arrived_at`) is in [since, until)."""
    rows = conn.execute(
        """
        WITH delivered AS (
            SELECT source_warehouse_id AS src, destination_warehouse_id AS dst,
                   departed_quantity AS dep_q, arrived_quantity AS arr_q,
                   extract(epoch FROM arrived_at - departed_at) AS transit
            FROM movements
            WHERE status = 'delivered'
              AND (%(since)s::timestamptz IS NULL OR arrived_at >= %(since)s::timestamptz)
              AND (%(until)s::timestamptz IS NULL OR arrived_at < %(until)s::timestamptz)
        )
        SELECT src, dst, count(*), count(*) FILTER (WHERE arr_q < dep_q),
               sum(dep_q)::bigint, sum(arr_q)::bigint, sum(greatest(dep_q - arr_q, 0))::bigint,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY transit),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY transit),
               max(transit), count(*) OVER ()
        FROM delivered
        GROUP BY src, dst
        ORDER BY 7 DESC, 3 DESC, src, dst
        LIMIT %(limit)s
        """,
        {"since": since, "until": until, "limit": limit},
    ).fetchall()
    items = [
        RouteStats(
            source_warehouse_id=src,
            destination_warehouse_id=dst,
            movements=n,
            movements_with_loss=lossy,
            units_departed=dep,
            units_arrived=arr,
            units_lost=lost,
            loss_rate=round(lost / dep, 6) if dep else 0.0,
            transit_p50_seconds=float(p50),
            transit_p95_seconds=float(p95),
            transit_max_seconds=int(tmax),
        )
        for src, dst, n, lossy, dep, arr, lost, p50, p95, tmax, _ in rows
    ]
    return RoutesReport(
        from_=since, to=until, routes_total=rows[0][-1] if rows else 0, items=items
    )


# ------------------------------------------------------------------------ stuck movements


DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90`, `90s`, `15m`, `2h`, `3d`; ValueError otherwise."""
    match = DURATION.match(text)
    if not match:
        raise ValueError("must be a whole number of seconds, or a number followed by s, m, h or d (e.g. 2h)")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > 100 * 365 * 86400:
        raise ValueError("must be at most 100 years")
    return timedelta(seconds=seconds)


def in_transit(
    conn: psycopg.Connection,
    *,
    older_than: timedelta = timedelta(0),
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> MovementPage:
    """Movements in transit whose departure is more than `older_than` ago, oldest first."""
    after_at: datetime | None = None
    after_id: UUID | None = None
    if cursor is not None:
        key = decode_cursor("transit", cursor)
        stamp, _, mid = key.partition("|")
        try:
            after_at, after_id = datetime.fromisoformat(stamp), UUID(mid)
        except ValueError:
            raise BadCursor("not a cursor returned by this list") from None
    rows = conn.execute(
        f"""
        SELECT {MOVEMENT_COLUMNS}, departed_at FROM movements
        WHERE status = 'in_transit' AND departed_at < now() - %(age)s
          AND (%(at)s::timestamptz IS NULL
               OR (departed_at, movement_id) > (%(at)s::timestamptz, %(id)s::uuid))
        ORDER BY departed_at, movement_id
        LIMIT %(n)s
        """,  # noqa: S608 - MOVEMENT_COLUMNS is a constant
        {"age": older_than, "at": after_at, "id": after_id, "n": limit + 1},
    ).fetchall()
    page, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = encode_cursor("transit", f"{last[-1].isoformat()}|{last[0]}")
    return MovementPage(items=[movement_from_row(row[:-1]) for row in page], next_cursor=next_cursor)


# ----------------------------------------------------------------------- stock history


def _stock_cursor(cursor: str | None) -> UUID | None:
    if cursor is None:
        return None
    try:
        return UUID(decode_cursor("stock", cursor))
    except ValueError:
        raise BadCursor("not a cursor returned by this list") from None


def stock_as_of(
    conn: psycopg.Connection,
    warehouse_id: UUID,
    as_of: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    product_range: tuple[UUID, UUID] | None = None,
) -> StockPage:
    """The warehouse's stock as of `as_of`, from the event log, by product id (see the module doc).

    A product appears once an event of it was applied at or before `as_of`; `updated_at` is the
    `received_at` of the last of them. Pages continue like `list_stock` (the same cursor kind).
    A naive `as_of` is UTC.
    """
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    after = _stock_cursor(cursor)
    low, high = product_range or (None, None)
    rows = conn.execute(
        """
        SELECT product_id,
               sum(CASE WHEN event = 'arrival' THEN quantity ELSE -quantity END)::bigint,
               max(received_at)
        FROM movement_events
        WHERE warehouse_id = %(w)s AND received_at <= %(t)s
          AND (%(after)s::uuid IS NULL OR product_id > %(after)s::uuid)
          AND (%(low)s::uuid IS NULL OR product_id BETWEEN %(low)s::uuid AND %(high)s::uuid)
        GROUP BY product_id
        ORDER BY product_id
        LIMIT %(n)s
        """,
        {"w": warehouse_id, "t": as_of, "after": after, "low": low, "high": high, "n": limit + 1},
    ).fetchall()
    page, more = rows[:limit], len(rows) > limit
    items = [StockView(warehouse_id=warehouse_id, product_id=p, quantity=q, updated_at=u) for p, q, u in page]
    return StockPage(items=items, next_cursor=encode_cursor("stock", page[-1][0]) if more else None)


# -------------------------------------------------------------- what the console's pages read

HEX = re.compile(r"^[0-9a-f]{1,32}$")


def product_prefix_range(text: str) -> tuple[UUID, UUID] | None:
    """The ids starting with `text` (hex digits, hyphens ignored) as an inclusive UUID range.

    An index range scan instead of a LIKE on the id's text, which no index serves. None when
    `text` is empty; ValueError when it is not hexadecimal.
    """
    digits = text.strip().lower().replace("-", "")
    if not digits:
        return None
    if not HEX.match(digits):
        raise ValueError("a product id, or its first hexadecimal digits")
    return UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))


class LastMovement(BaseModel):
    movement_id: UUID
    event: Literal["arrival", "departure"]
    quantity: int
    occurred_at: datetime
    received_at: datetime
    other_warehouse_id: UUID | None  # where it went (departure) or came from (arrival), once known


class WarehouseTotals(BaseModel):
    products: int
    units: int
    updated_at: datetime | None


def warehouse_totals(conn: psycopg.Connection, warehouse_id: UUID) -> WarehouseTotals:
    row = conn.execute(
        """
        SELECT count(*), coalesce(sum(quantity), 0)::bigint, max(updated_at) FROM stock
        WHERE warehouse_id = %s AND updated_at IS NOT NULL
        """,
        (warehouse_id,),
    ).fetchone()
    assert row is not None
    return WarehouseTotals(products=row[0], units=row[1], updated_at=row[2])


def warehouse_stock(
    conn: psycopg.Connection,
    warehouse_id: UUID,
    *,
    product_range: tuple[UUID, UUID] | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> StockPage:
    """The current stock of a warehouse, optionally of the products in `product_range`."""
    after = _stock_cursor(cursor)
    low, high = product_range or (None, None)
    rows = conn.execute(
        """
        SELECT product_id, quantity, updated_at FROM stock
        WHERE warehouse_id = %(w)s AND updated_at IS NOT NULL
          AND (%(after)s::uuid IS NULL OR product_id > %(after)s::uuid)
          AND (%(low)s::uuid IS NULL OR product_id BETWEEN %(low)s::uuid AND %(high)s::uuid)
        ORDER BY product_id
        LIMIT %(n)s
        """,
        {"w": warehouse_id, "after": after, "low": low, "high": high, "n": limit + 1},
    ).fetchall()
    page, more = rows[:limit], len(rows) > limit
    items = [StockView(warehouse_id=warehouse_id, product_id=p, quantity=q, updated_at=u) for p, q, u in page]
    return StockPage(items=items, next_cursor=encode_cursor("stock", page[-1][0]) if more else None)


def last_movements(
    conn: psycopg.Connection,
    warehouse_id: UUID,
    product_ids: list[UUID],
    *,
    per_product: int = LAST_MOVEMENTS,
) -> dict[UUID, list[LastMovement]]:
    """The latest `per_product` events of each product in this warehouse, newest first."""
    if not product_ids:
        return {}
    rows = conn.execute(
        """
        SELECT p.product_id, e.movement_id, e.event, e.quantity, e.occurred_at, e.received_at,
               CASE WHEN e.event = 'departure' THEN m.destination_warehouse_id
                    ELSE m.source_warehouse_id END
        FROM unnest(%(p)s::uuid[]) AS p(product_id)
        CROSS JOIN LATERAL (
            SELECT movement_id, event, quantity, occurred_at, received_at FROM movement_events
            WHERE warehouse_id = %(w)s AND product_id = p.product_id
            ORDER BY received_at DESC, id DESC
            LIMIT %(n)s
        ) e
        LEFT JOIN movements m ON m.movement_id = e.movement_id
        """,
        {"p": product_ids, "w": warehouse_id, "n": per_product},
    ).fetchall()
    found: dict[UUID, list[LastMovement]] = {p: [] for p in product_ids}
    for product, mid, event, quantity, occurred, received, other in rows:
        found[product].append(
            LastMovement(
                movement_id=mid,
                event=event,
                quantity=quantity,
                occurred_at=occurred,
                received_at=received,
                other_warehouse_id=other,
            )
        )
    return found


class WarehouseRow(BaseModel):
    warehouse_id: UUID
    products: int
    units: int
    updated_at: datetime | None


def warehouses(conn: psycopg.Connection, *, limit: int = 500) -> list[WarehouseRow]:
    """Every warehouse with stock rows, most recently updated first."""
    rows = conn.execute(
        """
        SELECT warehouse_id, count(*), sum(quantity)::bigint, max(updated_at) FROM stock
        WHERE updated_at IS NOT NULL
        GROUP BY warehouse_id
        ORDER BY max(updated_at) DESC, warehouse_id
        LIMIT %s
        """,
        (limit,),
    ).fetchall()
    return [WarehouseRow(warehouse_id=w, products=n, units=u, updated_at=at) for w, n, u, at in rows]


class DeadLetterRow(BaseModel):
    id: int
    reason: Literal["invalid", "conflict", "insufficient_stock"]
    detail: str
    movement_id: UUID | None
    event: str | None
    origin: str
    source: str = Field(description="webhook, replay, or the Kafka record as topic/partition@offset")
    received_at: datetime
    replayed_at: datetime | None
    replay_status: str | None
    replay_detail: str | None
    raw_payload: str
    raw_payload_encoding: Literal["utf-8", "base64"]


class DeadLetterPage(BaseModel):
    items: list[DeadLetterRow]
    next_cursor: str | None


def dead_letters(
    conn: psycopg.Connection,
    *,
    reason: str | None = None,
    unresolved: bool = False,
    movement_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> DeadLetterPage:
    """Dead letters newest first (what an operator looks at): of one reason, unresolved, of a movement."""
    before: int | None = None
    if cursor is not None:
        key = decode_cursor("dead_letters", cursor)  # type: ignore[arg-type]
        if not key.isascii() or not key.isdigit() or len(key) > 18:
            raise BadCursor("not a cursor returned by this list")
        before = int(key)
    rows = conn.execute(
        """
        SELECT id, reason, detail, movement_id, event, origin, kafka_topic, kafka_partition,
               kafka_offset, received_at, replayed_at, replay_status, replay_detail, raw_payload
        FROM rejected_events
        WHERE (%(reason)s::text IS NULL OR reason = %(reason)s::text)
          AND (NOT %(unresolved)s OR replay_status IS NULL OR replay_status = 'rejected')
          AND (%(movement)s::uuid IS NULL OR movement_id = %(movement)s::uuid)
          AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
        ORDER BY id DESC
        LIMIT %(n)s
        """,
        {
            "reason": reason,
            "unresolved": unresolved,
            "movement": movement_id,
            "before": before,
            "n": limit + 1,
        },
    ).fetchall()
    page, more = rows[:limit], len(rows) > limit
    items = []
    for (rid, why, detail, mid, event, origin, topic, partition, offset, received, replayed,
         status, replay_detail, raw) in page:  # fmt: skip
        text, encoding = raw_text(bytes(raw))
        items.append(
            DeadLetterRow(
                id=rid,
                reason=why,
                detail=detail,
                movement_id=mid,
                event=event,
                origin=origin,
                source=f"{topic}/{partition}@{offset}" if topic is not None else origin,
                received_at=received,
                replayed_at=replayed,
                replay_status=status,
                replay_detail=replay_detail,
                raw_payload=text,
                raw_payload_encoding=encoding,
            )
        )
    next_cursor = encode_cursor("dead_letters", page[-1][0]) if more else None  # type: ignore[arg-type]
    return DeadLetterPage(items=items, next_cursor=next_cursor)


def locate(conn: psycopg.Connection, some_id: UUID) -> Literal["movement", "warehouse"] | None:
    """Whether an id names a movement or a warehouse with stock (the console's search box)."""
    row = conn.execute(
        """
        SELECT EXISTS (SELECT 1 FROM movements WHERE movement_id = %(id)s AND status IS NOT NULL),
               EXISTS (SELECT 1 FROM stock WHERE warehouse_id = %(id)s)
        """,
        {"id": some_id},
    ).fetchone()
    assert row is not None
    if row[0]:
        return "movement"
    return "warehouse" if row[1] else None


class LoggedEvent(BaseModel):
    """One applied event of a movement, as the event log keeps it."""

    event: Literal["arrival", "departure"]
    warehouse_id: UUID
    quantity: int
    occurred_at: datetime
    received_at: datetime
    envelope_id: str
    origin: str
    kafka: str | None


class MovementDetail(BaseModel):
    movement: MovementView
    events: list[LoggedEvent]
    dead_letters: int = Field(description="Refused events of this movement (the list is an operator route).")


def movement_detail(conn: psycopg.Connection, movement_id: UUID) -> MovementDetail | None:
    """Both halves, the events they came from, and how many events of it were refused."""
    row = conn.execute(
        f"SELECT {MOVEMENT_COLUMNS} FROM movements WHERE movement_id = %s AND status IS NOT NULL",  # noqa: S608
        (movement_id,),
    ).fetchone()
    if row is None:
        return None
    events = [
        LoggedEvent(
            event=event,
            warehouse_id=w,
            quantity=q,
            occurred_at=occurred,
            received_at=received,
            envelope_id=envelope_id,
            origin=origin,
            kafka=f"{topic}/{partition}@{offset}" if topic is not None else None,
        )
        for event, w, q, occurred, received, envelope_id, origin, topic, partition, offset in conn.execute(
            """
            SELECT event, warehouse_id, quantity, occurred_at, received_at, envelope_id, origin,
                   kafka_topic, kafka_partition, kafka_offset
            FROM movement_events WHERE movement_id = %s ORDER BY event DESC
            """,
            (movement_id,),
        )
    ]
    refused = conn.execute(
        "SELECT count(*) FROM rejected_events WHERE movement_id = %s", (movement_id,)
    ).fetchone()
    return MovementDetail(
        movement=movement_from_row(row), events=events, dead_letters=refused[0] if refused else 0
    )
