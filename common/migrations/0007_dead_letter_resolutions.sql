-- The dead-letter workflow (issue 23): an operator resolves a dead letter with a note (who, when,
-- why), one or in bulk; a webhook refusal, whose caller was answered 409 and keeps control of a
-- retry, is marked answered when parked. Every resolution and every operator replay is also
-- written to dead_letter_audit, which retention never deletes from: the row of a dead letter may go
-- (`warehouse-stock retention`), the record of what was decided about it stays.
ALTER TABLE rejected_events
    ADD COLUMN resolved_at     timestamptz,
    ADD COLUMN resolved_by     text,
    ADD COLUMN resolution      text CHECK (resolution IN ('resolved', 'answered')),
    ADD COLUMN resolution_note text;

-- Webhook refusals parked before this migration were answered to their caller too.
UPDATE rejected_events
   SET resolved_at = received_at, resolved_by = 'webhook', resolution = 'answered',
       resolution_note = 'refused with 409 to the webhook caller, who decides whether to retry'
 WHERE origin = 'webhook' AND resolved_at IS NULL;

-- The unresolved ones, what the console and the counts look at first.
CREATE INDEX rejected_events_unresolved_idx ON rejected_events (reason, id)
    WHERE resolved_at IS NULL AND (replay_status IS NULL OR replay_status = 'rejected');

CREATE TABLE dead_letter_audit (
    id                bigserial   PRIMARY KEY,
    -- No foreign key: the entry outlives the dead letter retention deletes.
    rejected_event_id bigint      NOT NULL,
    action            text        NOT NULL CHECK (action IN ('resolve', 'replay')),
    actor             text        NOT NULL,
    note              text,
    -- For a replay, its outcome (applied, duplicate, rejected).
    outcome           text,
    reason            text        NOT NULL,
    movement_id       uuid,
    at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letter_audit_letter_idx ON dead_letter_audit (rejected_event_id, id);
