-- Events the relay published without their data because the whole message would not fit the
-- NATS server's max_payload (see relay::oversized). One row per event: /ready and
-- `provisioner relay --status` count them, and an operator finds them here.
CREATE TABLE relay_oversized (
    message_id      text PRIMARY KEY,
    global_position bigint NOT NULL,
    event_type      text NOT NULL,
    -- The size the full message would have had, and the server's max_payload then.
    message_bytes   bigint NOT NULL,
    max_bytes       bigint NOT NULL,
    published_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
