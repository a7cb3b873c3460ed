-- What the active NATS relay last said about itself, so that `/ready` of any process and
-- `provisioner relay --status` can tell whether events are flowing. Written by the relay
-- on every change of health and as a heartbeat every few seconds while it leads.
CREATE TABLE relay_status (
    relay                text        PRIMARY KEY,
    healthy              boolean     NOT NULL,
    -- Why it is not healthy (never a URL with credentials, never an event).
    detail               text,
    -- The stream's last sequence after the last acknowledged publish.
    stream_last_sequence bigint,
    heartbeat_at         timestamptz NOT NULL DEFAULT now()
);
