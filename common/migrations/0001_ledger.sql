-- The movement ledger: current stock, one row per movement, every applied event, the dead letters.

-- Current stock per (warehouse, product); a pair without a row has never been touched.
CREATE TABLE stock (
    warehouse_id uuid        NOT NULL,
    product_id   uuid        NOT NULL,
    quantity     bigint      NOT NULL DEFAULT 0 CONSTRAINT stock_quantity_not_negative CHECK (quantity >= 0),
    updated_at   timestamptz,
    PRIMARY KEY (warehouse_id, product_id)
);

-- One row per movement: both halves side by side, the movement read model.
CREATE TABLE movements (
    movement_id              uuid PRIMARY KEY,
    product_id               uuid,
    source_warehouse_id      uuid,
    departed_at              timestamptz,
    departed_quantity        bigint,
    destination_warehouse_id uuid,
    arrived_at               timestamptz,
    arrived_quantity         bigint,
    status text GENERATED ALWAYS AS (
        CASE
            WHEN departed_at IS NOT NULL AND arrived_at IS NOT NULL THEN 'delivered'
            WHEN departed_at IS NOT NULL THEN 'in_transit'
            WHEN arrived_at IS NOT NULL THEN 'arrival_only'
        END
    ) STORED,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX movements_status_idx ON movements (status, movement_id) WHERE status IS NOT NULL;
CREATE INDEX movements_source_idx ON movements (source_warehouse_id, movement_id);
CREATE INDEX movements_destination_idx ON movements (destination_warehouse_id, movement_id);
CREATE INDEX movements_product_idx ON movements (product_id, movement_id);

-- Every applied event, as received: the audit trail the stock is the sum of.
CREATE TABLE movement_events (
    id              bigserial PRIMARY KEY,
    movement_id     uuid        NOT NULL,
    event           text        NOT NULL CHECK (event IN ('arrival', 'departure')),
    warehouse_id    uuid        NOT NULL,
    product_id      uuid        NOT NULL,
    quantity        bigint      NOT NULL CHECK (quantity > 0),
    occurred_at     timestamptz NOT NULL,
    envelope_id     text        NOT NULL,
    origin          text        NOT NULL,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (movement_id, event)
);

-- The dead-letter store: every refused event with its raw bytes, kept for inspection and replay.
CREATE TABLE rejected_events (
    id              bigserial PRIMARY KEY,
    reason          text        NOT NULL CHECK (reason IN ('invalid', 'conflict', 'insufficient_stock')),
    detail          text        NOT NULL,
    raw_payload     bytea       NOT NULL,
    movement_id     uuid,
    event           text,
    origin          text        NOT NULL,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    received_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz,
    replay_status   text,
    replay_detail   text
);
-- A redelivered Kafka record is parked once.
CREATE UNIQUE INDEX rejected_events_kafka_record_uq
    ON rejected_events (kafka_topic, kafka_partition, kafka_offset)
    WHERE kafka_topic IS NOT NULL;
CREATE INDEX rejected_events_reason_idx ON rejected_events (reason, id);
