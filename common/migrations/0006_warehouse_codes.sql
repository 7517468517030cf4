-- The warehouse directory learnt from events (issue 23): which code (`source`, else the part of
-- `subject` before ':') each warehouse id was named by, and when that was first and last seen.
-- One row per (warehouse, code) pair, so a code that changes (two rows for one warehouse) and a
-- code two warehouses claim (two rows for one code) both stay visible; nothing is overwritten.
-- Written in the ledger's batch transaction by one statement (common/ledger/warehouses.py), for
-- applied events. `last_seen` is kept to the minute: a batch rewrites a pair only when it was last
-- seen more than a minute ago, so busy warehouses do not queue on their directory row.
-- No backfill: the event log keeps no envelope, so the codes of events applied before this
-- migration are unknown; a warehouse is named by its next applied event.
CREATE TABLE warehouse_codes (
    warehouse_id uuid        NOT NULL,
    code         text        NOT NULL CHECK (code <> '' AND length(code) <= 100),
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, code)
);

-- Search and "who else claims this code": by code, case-insensitively.
CREATE INDEX warehouse_codes_code_idx ON warehouse_codes (lower(code), warehouse_id);

-- A product across warehouses (GET /api/v1/products/{product_id}/stock): stock by product. Only
-- new pairs write it (the quantity updates of existing rows touch no indexed column).
CREATE INDEX stock_product_idx ON stock (product_id);
