-- A Kafka record's identity is its cluster, its coordinates and its content; dead letters that
-- retry themselves; the dead-letter topic outbox; outcome counts and consumer lag for monitoring.

-- Coordinates repeat (a topic deleted and created again restarts at offset 0; a second cluster
-- carries the same topic name), so "this record was parked before" also compares a digest of the
-- record's key and value and, when known, the cluster it was read from.
ALTER TABLE rejected_events
    ADD COLUMN kafka_cluster text,
    ADD COLUMN record_digest bytea,
    -- The stock a parked departure waits for (see auto-replay in common/ledger.py).
    ADD COLUMN warehouse_id  uuid,
    ADD COLUMN product_id    uuid;

-- Rows from before this migration: the digest of the value alone (their key was not kept, which
-- is exactly the digest of a record without a key); the cluster stays unknown (NULL), which
-- matches any cluster.
UPDATE rejected_events SET record_digest = sha256(raw_payload) WHERE kafka_topic IS NOT NULL;

-- The stock key of parked valid events, read back from their JSON where it parses.
DO $$
DECLARE
    r record;
    doc jsonb;
BEGIN
    FOR r IN SELECT id, raw_payload FROM rejected_events WHERE reason <> 'invalid' LOOP
        BEGIN
            doc := convert_from(r.raw_payload, 'UTF8')::jsonb;
            UPDATE rejected_events
               SET warehouse_id = (doc -> 'data' ->> 'warehouse_id')::uuid,
                   product_id = (doc -> 'data' ->> 'product_id')::uuid
             WHERE id = r.id;
        EXCEPTION WHEN others THEN
            NULL;  -- not parseable by PostgreSQL (e.g. \u0000 in an ignored field): left unknown
        END;
    END LOOP;
END $$;

DROP INDEX rejected_events_kafka_record_uq;
-- The very same record redelivered is parked once.
CREATE UNIQUE INDEX rejected_events_kafka_record_uq
    ON rejected_events (kafka_topic, kafka_partition, kafka_offset, record_digest, (coalesce(kafka_cluster, '')))
    WHERE kafka_topic IS NOT NULL;
ALTER TABLE rejected_events ADD CONSTRAINT rejected_events_kafka_digest_present
    CHECK (kafka_topic IS NULL OR record_digest IS NOT NULL);
-- Departures refused for insufficient stock that may still retry themselves, by stock key.
CREATE INDEX rejected_events_waiting_idx
    ON rejected_events (warehouse_id, product_id, id)
    WHERE reason = 'insufficient_stock' AND origin = 'kafka'
      AND (replay_status IS NULL OR replay_status = 'rejected');

ALTER TABLE movement_events ADD COLUMN kafka_cluster text;

-- Parked records still to be copied to DLQ_TOPIC: written in the parking transaction, deleted
-- once the copy is acknowledged, so a copy is never lost (and, redelivered, carries the same key).
CREATE TABLE dead_letter_outbox (
    rejected_event_id bigint PRIMARY KEY REFERENCES rejected_events (id) ON DELETE CASCADE,
    topic             text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Events per minute by origin and outcome (duplicates included, which leave no other trace).
-- `shard` spreads concurrent transactions over several rows so they never queue on one counter.
CREATE TABLE event_outcome_counts (
    minute  timestamptz NOT NULL,
    origin  text        NOT NULL,
    outcome text        NOT NULL,
    reason  text        NOT NULL DEFAULT '',
    shard   smallint    NOT NULL,
    events  bigint      NOT NULL,
    PRIMARY KEY (minute, origin, outcome, reason, shard)
);

-- What each local poller last saw of its partitions (the event source mapping in AWS reports
-- OffsetLag to CloudWatch instead).
CREATE TABLE consumer_lag (
    group_id         text        NOT NULL,
    topic            text        NOT NULL,
    partition        integer     NOT NULL,
    committed_offset bigint,
    end_offset       bigint,
    lag              bigint      NOT NULL,
    consumer         text        NOT NULL,
    reported_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
