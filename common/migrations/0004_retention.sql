-- Retention (`warehouse-stock retention`): the opening balance applied events are folded into, and
-- an index to find old dead letters without reading the whole table.

-- With EVENT_LOG_RETENTION_DAYS set, applied events older than that leave movement_events and are
-- summed here per (warehouse, product), so that for every pair, at any moment:
--     stock.quantity = coalesce(stock_opening.quantity, 0)
--                    + sum(+quantity of each arrival, -quantity of each departure in movement_events)
-- A fold deletes the events and adds them here in one transaction: the rule never breaks, not
-- even while a fold runs. `quantity` is a net sum and may be negative (the events folded need not
-- be a prefix of the pair's history in commit order). `movements` is never trimmed: it is what
-- recognises an old event delivered again as a duplicate.
CREATE TABLE stock_opening (
    warehouse_id  uuid        NOT NULL,
    product_id    uuid        NOT NULL,
    -- Net effect of every folded event of the pair (arrivals minus departures).
    quantity      bigint      NOT NULL,
    -- Events received before this moment (movement_events.received_at) were folded.
    folded_until  timestamptz NOT NULL,
    -- How many events were folded into this row, over all runs.
    folded_events bigint      NOT NULL CHECK (folded_events > 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, product_id)
);

-- Dead letters by age: rejected_events is written rarely, so the index costs nothing on the hot path.
CREATE INDEX rejected_events_received_idx ON rejected_events (received_at, id);
