-- The clean-batch lane (issue 22): a batch whose events are all new or exact duplicates is decided
-- and written by one function call instead of the ledger's Python rules. `common/domain/rules.py`
-- stays the reference (tests/integration/ledger/test_clean_lane.py compares the two); anything
-- the rules would refuse, or that waits, makes the lane decline without writing, and
-- common/ledger/apply.py decides the batch in Python as before, in the same transaction.

-- The departures waiting, within the window, for stock on one of these keys: Kafka departures
-- refused for insufficient stock and not yet settled (applied, a duplicate). The one definition:
-- common/dead_letters/store.py `waiting_departures` reads them from here, the lane below asks
-- whether there is any. (SQL, so the planner inlines it into each caller's cached plan.)
CREATE FUNCTION dead_letters_waiting(keys_w uuid[], keys_p uuid[], window_seconds integer)
RETURNS SETOF rejected_events LANGUAGE sql STABLE AS $$
    SELECT r.*
    FROM rejected_events r
    WHERE window_seconds > 0
      AND (r.warehouse_id, r.product_id) IN (SELECT k.w, k.p FROM unnest(keys_w, keys_p) AS k(w, p))
      AND r.reason = 'insufficient_stock' AND r.origin = 'kafka'
      AND (r.replay_status IS NULL OR r.replay_status = 'rejected')
      AND r.received_at >= now() - make_interval(secs => window_seconds)
$$;

-- The ledger's lane (called by common/ledger/tables.py `apply_clean`). One row per event in batch
-- order (e_*: the event; l_*: where it came from, for the event log). Returns verdict 'applied'
-- with, per event, whether it applied (else: an exact duplicate) and its key's stock right after;
-- or verdict 'lost_race' (a row this batch creates was created concurrently: the caller raises
-- LostRace and the transaction runs again); or the reason it declined ('conflict',
-- 'insufficient_stock', 'waiting'), having written nothing and released its locks.
-- Every lookup between the batch and the locked rows is a join (no `= ANY(array)` per row: that
-- is quadratic in the batch size).
CREATE FUNCTION ledger_apply_clean(
    e_movement uuid[], e_arrival boolean[], e_warehouse uuid[], e_product uuid[],
    e_quantity bigint[], e_at timestamptz[],
    l_envelope text[], l_origin text[], l_topic text[], l_partition integer[], l_offset bigint[],
    l_cluster text[],
    window_seconds integer,
    OUT verdict text, OUT applied boolean[], OUT stock_after bigint[]
) LANGUAGE plpgsql AS $$
DECLARE
    m_id uuid[]; m_product uuid[]; m_src uuid[]; m_dep_q bigint[]; m_dep_at timestamptz[];
    m_dst uuid[]; m_arr_q bigint[]; m_arr_at timestamptz[];
    s_w uuid[]; s_p uuid[]; s_q bigint[];
    a_w uuid[]; a_p uuid[];
    m_held boolean[];      -- per event: its movement's row existed (then updated, else inserted)
    s_held boolean[];      -- per event: its stock row existed
    s_last boolean[];      -- per event: the last of its key in the batch, and the key changed
    m_last boolean[];      -- per event: the last of its movement, and the movement changed; then
    r_src uuid[]; r_dep_q bigint[]; r_dep_at timestamptz[];  -- the movement's row afterwards
    r_dst uuid[]; r_arr_q bigint[]; r_arr_at timestamptz[];
    any_conflict boolean; any_short boolean;
    new_movements integer; new_keys integer; inserted integer;
BEGIN
    -- A block with an exception handler is a subtransaction: declining rolls it back, which
    -- releases the row locks taken in it, so the Python path that follows locks in key order
    -- from scratch (movements first, then stock) and cannot deadlock with another batch.
    BEGIN
        -- 1. Lock the movement rows, then the stock rows, each in key order (as tables.lock).
        SELECT array_agg(x.movement_id), array_agg(x.product_id), array_agg(x.source_warehouse_id),
               array_agg(x.departed_quantity), array_agg(x.departed_at),
               array_agg(x.destination_warehouse_id), array_agg(x.arrived_quantity),
               array_agg(x.arrived_at)
          INTO m_id, m_product, m_src, m_dep_q, m_dep_at, m_dst, m_arr_q, m_arr_at
          FROM (SELECT * FROM movements WHERE movement_id = ANY(e_movement)
                ORDER BY movement_id FOR UPDATE) x;
        SELECT array_agg(x.warehouse_id), array_agg(x.product_id), array_agg(x.quantity)
          INTO s_w, s_p, s_q
          FROM (SELECT s.warehouse_id, s.product_id, s.quantity
                  FROM stock s
                  JOIN (SELECT DISTINCT w, p FROM unnest(e_warehouse, e_product) AS k(w, p)) k
                    ON s.warehouse_id = k.w AND s.product_id = k.p
                 ORDER BY s.warehouse_id, s.product_id
                   FOR UPDATE OF s) x;

        -- 2. Nothing may wait on the stock an arrival raises (read once the stock rows are
        --    locked: a departure starts waiting on a key only while holding its stock row).
        IF window_seconds > 0 THEN
            SELECT array_agg(a.w), array_agg(a.p) INTO a_w, a_p
              FROM unnest(e_warehouse, e_product, e_arrival) AS a(w, p, arr) WHERE a.arr;
            IF a_w IS NOT NULL AND EXISTS (SELECT 1 FROM dead_letters_waiting(a_w, a_p, window_seconds)) THEN
                verdict := 'waiting';
                RAISE SQLSTATE 'LC001';
            END IF;
        END IF;

        -- 3. Decide, as rules.decide would one event at a time if nothing is refused: the first
        --    copy of a half the movement does not hold applies, every other copy must be an exact
        --    duplicate, all halves of a movement name one product, and the running stock of each
        --    key (in batch order, applied events only) never goes below zero.
        WITH ev AS (
            SELECT e.i, e.m, e.arr, e.w, e.p, e.q, e.at
              FROM unnest(e_movement, e_arrival, e_warehouse, e_product, e_quantity, e_at)
                   WITH ORDINALITY AS e(m, arr, w, p, q, at, i)
        ), joined AS (
            -- Each event next to the one before it of the same movement, halves apart (departures
            -- first), in batch order: a copy must equal the copy before it, and a movement's
            -- events must name the product the one before names (so all of them name one).
            SELECT ev.*, h.m IS NOT NULL AS m_held, h.product AS held_product,
                   h.src, h.dep_q, h.dep_at, h.dst, h.arr_q, h.arr_at,
                   CASE WHEN ev.arr THEN h.dst ELSE h.src END AS held_w,
                   CASE WHEN ev.arr THEN h.arr_q ELSE h.dep_q END AS held_q,
                   CASE WHEN ev.arr THEN h.arr_at ELSE h.dep_at END AS held_at,
                   lag(ev.arr) OVER movement AS prev_arr, lag(ev.p) OVER movement AS prev_p,
                   lag(ev.w) OVER movement AS prev_w, lag(ev.q) OVER movement AS prev_q,
                   lag(ev.at) OVER movement AS prev_at,
                   first_value(ev.arr) OVER movement AS first_arr,
                   first_value(ev.w) OVER movement AS first_w,
                   first_value(ev.q) OVER movement AS first_q,
                   first_value(ev.at) OVER movement AS first_at,
                   lead(ev.i) OVER movement IS NULL AS last_of_movement
              FROM ev
              LEFT JOIN unnest(m_id, m_product, m_src, m_dep_q, m_dep_at, m_dst, m_arr_q, m_arr_at)
                   AS h(m, product, src, dep_q, dep_at, dst, arr_q, arr_at) ON h.m = ev.m
            WINDOW movement AS (PARTITION BY ev.m ORDER BY ev.arr, ev.i)
        ), decided AS (
            SELECT j.i, j.w, j.p, j.arr, j.q, j.m_held,
                   NOT j.m_held AND j.prev_arr IS NULL AS new_movement,
                   j.held_at IS NULL AND j.prev_arr IS DISTINCT FROM j.arr AS applies,
                   (j.held_product IS NOT NULL AND j.held_product <> j.p)
                   OR (j.prev_arr IS NOT NULL AND j.prev_p <> j.p)
                   OR (j.held_at IS NOT NULL AND (j.held_w, j.held_q, j.held_at) IS DISTINCT FROM (j.w, j.q, j.at))
                   OR (j.prev_arr = j.arr AND (j.prev_w, j.prev_q, j.prev_at) IS DISTINCT FROM (j.w, j.q, j.at))
                   AS conflict,
                   -- On a movement's last event (an arrival if the batch has one): its row
                   -- afterwards, the batch's halves over the held ones (equal where both are).
                   j.last_of_movement AND (NOT j.m_held OR (NOT j.first_arr AND j.dep_at IS NULL)
                                           OR (j.arr AND j.arr_at IS NULL)) AS m_last,
                   CASE WHEN NOT j.first_arr THEN j.first_w ELSE j.src END AS r_src,
                   CASE WHEN NOT j.first_arr THEN j.first_q ELSE j.dep_q END AS r_dep_q,
                   CASE WHEN NOT j.first_arr THEN j.first_at ELSE j.dep_at END AS r_dep_at,
                   CASE WHEN j.arr THEN j.w ELSE j.dst END AS r_dst,
                   CASE WHEN j.arr THEN j.q ELSE j.arr_q END AS r_arr_q,
                   CASE WHEN j.arr THEN j.at ELSE j.arr_at END AS r_arr_at
              FROM joined j
        ), running AS (
            -- Per key in batch order: the stock after each event, and which event is the key's
            -- last (its stock is what the row holds afterwards, if any event of the key applied).
            SELECT d.i, d.arr, d.applies, d.conflict, d.m_held, d.new_movement, s.w IS NOT NULL AS s_held,
                   d.m_last, d.r_src, d.r_dep_q, d.r_dep_at, d.r_dst, d.r_arr_q, d.r_arr_at,
                   coalesce(s.q, 0) + sum(CASE WHEN NOT d.applies THEN 0 WHEN d.arr THEN d.q ELSE -d.q END)
                       OVER k AS after,
                   lead(d.i) OVER k IS NULL AND count(*) FILTER (WHERE d.applies) OVER k > 0 AS s_last
              FROM decided d
              LEFT JOIN unnest(s_w, s_p, s_q) AS s(w, p, q) ON s.w = d.w AND s.p = d.p
            WINDOW k AS (PARTITION BY d.w, d.p ORDER BY d.i)
        )
        -- (Sorted once: the arrays follow their input's order; an ORDER BY per aggregate would
        -- sort once each.)
        SELECT bool_or(r.conflict), bool_or(r.applies AND NOT r.arr AND r.after < 0),
               array_agg(r.applies), array_agg(r.after), array_agg(r.m_held), array_agg(r.s_held),
               array_agg(r.s_last), count(*) FILTER (WHERE r.new_movement),
               count(*) FILTER (WHERE r.s_last AND NOT r.s_held),
               array_agg(r.m_last), array_agg(r.r_src), array_agg(r.r_dep_q), array_agg(r.r_dep_at),
               array_agg(r.r_dst), array_agg(r.r_arr_q), array_agg(r.r_arr_at)
          INTO any_conflict, any_short, applied, stock_after, m_held, s_held, s_last,
               new_movements, new_keys, m_last, r_src, r_dep_q, r_dep_at, r_dst, r_arr_q, r_arr_at
          FROM (SELECT * FROM running ORDER BY i) r;
        IF any_conflict THEN
            verdict := 'conflict';
            RAISE SQLSTATE 'LC001';
        ELSIF any_short THEN
            verdict := 'insufficient_stock';
            RAISE SQLSTATE 'LC001';
        END IF;
    EXCEPTION WHEN SQLSTATE 'LC001' THEN
        applied := NULL;
        stock_after := NULL;
        RETURN;
    END;

    -- 4. Write, in the order of tables.write_movements / write_stock / append_log: the rows that
    --    existed are updated, the others inserted in key order, and an insert that skips a row
    --    another transaction created first means we lost the race.
    WITH r AS (
        SELECT x.*
          FROM unnest(e_movement, e_product, m_held, m_last, r_src, r_dep_q, r_dep_at, r_dst, r_arr_q,
                      r_arr_at) AS x(m, p, held, last, src, dep_q, dep_at, dst, arr_q, arr_at)
         WHERE x.last
    ), updated AS (
        UPDATE movements t SET
            product_id = r.p, source_warehouse_id = r.src, departed_quantity = r.dep_q,
            departed_at = r.dep_at, destination_warehouse_id = r.dst, arrived_quantity = r.arr_q,
            arrived_at = r.arr_at, updated_at = now()
          FROM r
         WHERE r.held AND t.movement_id = r.m
    )
    INSERT INTO movements (movement_id, product_id, source_warehouse_id, departed_quantity,
                           departed_at, destination_warehouse_id, arrived_quantity, arrived_at)
    SELECT r.m, r.p, r.src, r.dep_q, r.dep_at, r.dst, r.arr_q, r.arr_at
      FROM r WHERE NOT r.held
     ORDER BY r.m
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted <> new_movements THEN
        verdict := 'lost_race';
        RETURN;
    END IF;

    WITH k AS (
        SELECT x.w, x.p, x.q, x.held
          FROM unnest(e_warehouse, e_product, stock_after, s_held, s_last) AS x(w, p, q, held, last)
         WHERE x.last
    ), updated AS (
        UPDATE stock s SET quantity = k.q, updated_at = now()
          FROM k WHERE k.held AND s.warehouse_id = k.w AND s.product_id = k.p
    )
    INSERT INTO stock (warehouse_id, product_id, quantity, updated_at)
    SELECT k.w, k.p, k.q, now() FROM k WHERE NOT k.held
     ORDER BY k.w, k.p
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted <> new_keys THEN
        verdict := 'lost_race';
        RETURN;
    END IF;

    INSERT INTO movement_events (movement_id, event, warehouse_id, product_id, quantity, occurred_at,
                                 envelope_id, origin, kafka_topic, kafka_partition, kafka_offset,
                                 kafka_cluster)
    SELECT x.m, CASE WHEN x.arr THEN 'arrival' ELSE 'departure' END, x.w, x.p, x.q, x.at,
           x.envelope, x.origin, x.topic, x.part, x.off, x.cluster
      FROM unnest(e_movement, e_arrival, e_warehouse, e_product, e_quantity, e_at, l_envelope,
                  l_origin, l_topic, l_partition, l_offset, l_cluster, applied)
           WITH ORDINALITY AS x(m, arr, w, p, q, at, envelope, origin, topic, part, off, cluster, ok, i)
     WHERE x.ok
     ORDER BY x.i;
    verdict := 'applied';
END
$$;
