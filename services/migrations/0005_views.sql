-- Read models. Written only by the projector, from the feed, in the same transaction as its
-- checkpoint; a rebuild from position 0 gives the same rows. Times come from the events'
-- recorded_at, never from now(), for that reason.

CREATE TABLE view_projects (
    project_id uuid        PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL
);

-- What a request's API key resolves to. Holds the key's SHA-256, never the key.
CREATE TABLE view_api_keys (
    key_id     uuid        PRIMARY KEY,
    project_id uuid        NOT NULL,
    name       text,
    key_sha256 text        NOT NULL UNIQUE,
    issued_at  timestamptz NOT NULL,
    revoked_at timestamptz
);

-- Registered servers, without their secrets: only whether each one is set, and the names
-- (not values) of env variables and headers.
CREATE TABLE view_servers (
    server_id               uuid        PRIMARY KEY,
    project_id              uuid        NOT NULL,
    name                    text        NOT NULL,
    description             text,
    transport               text        NOT NULL,
    url                     text,
    connection              text        NOT NULL,
    command                 text,
    args                    text,
    env_names               text[]      NOT NULL,
    custom_headers          jsonb       NOT NULL,
    oauth_client_id         text,
    has_oauth_client_secret boolean     NOT NULL,
    oauth_scope             text,
    proxy_url               text,
    has_proxy_auth_token    boolean     NOT NULL,
    proxy_auth_header       text        NOT NULL,
    request_timeout_ms      bigint      NOT NULL,
    max_total_timeout_ms    bigint      NOT NULL,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    deleted_at              timestamptz,
    -- Sequence of the server's last event applied here.
    version                 bigint      NOT NULL
);

CREATE INDEX view_servers_by_project ON view_servers (project_id, created_at, server_id)
    WHERE deleted_at IS NULL;
