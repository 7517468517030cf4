-- Issue 19: a poller that meets a batch it cannot decode pauses that partition only and says so;
-- an operator resumes it (after fixing the cause) or skips the batch (kept as a dead letter).

-- The pause, as the poller that holds it reports it with its lag (NULL: flowing).
ALTER TABLE consumer_lag
    ADD COLUMN paused_offset bigint,
    ADD COLUMN paused_reason text,
    ADD COLUMN paused_since  timestamptz;

-- Each local poller process: its state and when its loop last finished an iteration (/ready).
CREATE TABLE poller_status (
    consumer     text        PRIMARY KEY,
    group_id     text        NOT NULL,
    state        text        NOT NULL,
    last_loop_at timestamptz NOT NULL,
    reported_at  timestamptz NOT NULL DEFAULT now()
);

-- The operator's resume/skip requests; the poller holding the partition paused carries them out.
CREATE TABLE poller_commands (
    id           bigserial   PRIMARY KEY,
    group_id     text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    action       text        NOT NULL CHECK (action IN ('resume', 'skip')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz,
    done_by      text,
    outcome      text
);
CREATE INDEX poller_commands_pending ON poller_commands (group_id) WHERE done_at IS NULL;
