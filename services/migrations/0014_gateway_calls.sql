-- What the MCP gateway puts on the record: every session it opened or closed and every
-- tools/call, with its outcome and duration, never its arguments or results. Written by the
-- gateway's recorder in batches (one multi-row INSERT per transaction, shared by concurrent
-- calls); a call is answered only after its row is committed.
CREATE TABLE gateway_calls (
    record_id            uuid             PRIMARY KEY,
    -- Commit order, as for events: readers take rows below pg_snapshot_xmin only, ordered by
    -- (transaction_id, position), so a batch that commits late is never skipped.
    position             bigint           GENERATED ALWAYS AS IDENTITY,
    transaction_id       xid8             NOT NULL DEFAULT pg_current_xact_id(),
    kind                 text             NOT NULL CHECK (kind IN ('session.opened', 'session.closed', 'tool.called')),
    project_id           uuid             NOT NULL,
    -- The target: a Klavis instance, a Composio server with the user / account its URL names,
    -- or a GAIA-registered server.
    target_type          text             NOT NULL CHECK (target_type IN ('instance', 'composio_server', 'registered_server')),
    instance_id          uuid,
    server_id            uuid,
    user_id              text,
    connected_account_id text,
    server_name          text             NOT NULL,
    tool_name            text,
    outcome              text             NOT NULL CHECK (outcome IN ('ok', 'tool_error', 'upstream_error', 'refused')),
    duration_ms          double precision NOT NULL,
    request_id           text             NOT NULL,
    -- When the request arrived (the gateway's clock).
    occurred_at          timestamptz      NOT NULL,
    recorded_at          timestamptz      NOT NULL DEFAULT clock_timestamp(),
    CHECK (instance_id IS NOT NULL OR server_id IS NOT NULL)
);

-- The NATS publisher reads in commit order after its checkpoint.
CREATE INDEX gateway_calls_commit_order ON gateway_calls (transaction_id, position);
-- The audit reads one instance's records, or one Composio server's for a user, in time order.
CREATE INDEX gateway_calls_by_instance ON gateway_calls (project_id, instance_id, occurred_at, position)
    WHERE instance_id IS NOT NULL;
CREATE INDEX gateway_calls_by_server_user ON gateway_calls (project_id, server_id, user_id, occurred_at, position)
    WHERE server_id IS NOT NULL;

-- Wakes the publisher at commit (delivered only when the inserting transaction commits).
CREATE FUNCTION notify_gateway_calls_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gateway_calls_appended', '');
    RETURN NULL;
END $$;

CREATE TRIGGER gateway_calls_appended
    AFTER INSERT ON gateway_calls
    FOR EACH STATEMENT EXECUTE FUNCTION notify_gateway_calls_appended();
