-- How far each subscriber of the feed has read: the (transaction_id, global_position) of
-- the last event it has fully handled. A subscriber writes its checkpoint in the same
-- transaction as the effects of the events it handled, which is what makes it exactly-once.
CREATE TABLE feed_checkpoints (
    subscriber      text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
