-- The event store. The first seven columns are postgres-es 0.5's schema (its db/init.sql),
-- unchanged: postgres-es names its columns in every statement, so the columns added after
-- them are invisible to it.
CREATE TABLE events (
    aggregate_type  text   NOT NULL,
    aggregate_id    text   NOT NULL,
    sequence        bigint NOT NULL CHECK (sequence >= 0),
    event_type      text   NOT NULL,
    event_version   text   NOT NULL,
    payload         json   NOT NULL,
    metadata        json   NOT NULL,
    -- Insertion order across all aggregates. Not commit order: a lower number can commit
    -- after a higher one. The feed orders by (transaction_id, global_position) instead.
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    -- The inserting transaction. Every event of one command shares it. A reader that only
    -- reads below the oldest running transaction (pg_snapshot_xmin) can never be overtaken
    -- by a late commit.
    transaction_id  xid8   NOT NULL DEFAULT pg_current_xact_id(),
    -- When the event was written (clock_timestamp: the row's own time, not the start of
    -- its transaction).
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX events_feed_order ON events (transaction_id, global_position);

-- Wakes feed readers (projector, relay) at commit. NOTIFY is delivered only when the
-- inserting transaction commits, and duplicates within a transaction are folded into one.
CREATE FUNCTION notify_events_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events_appended', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_appended
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();
