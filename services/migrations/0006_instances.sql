-- Instance views. Written only by the projector (see 0005).

-- One row per (project, server, user) slot that has ever been used: its live instance, if any,
-- and whether it holds a credential. What instance lookups, user integrations and the
-- connected-account checks read. Never holds a credential, sealed or not.
CREATE TABLE view_connections (
    slot_id             text        PRIMARY KEY,
    project_id          uuid        NOT NULL,
    server_key          text        NOT NULL,
    server_name         text        NOT NULL,
    user_id             text        NOT NULL,
    instance_id         uuid        UNIQUE,
    platform            text,
    connection_type     text,
    legacy              boolean,
    read_only           boolean,
    instance_created_at timestamptz,
    auth_method         text,
    authenticated_at    timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    version             bigint      NOT NULL
);

CREATE INDEX view_connections_by_user ON view_connections (project_id, user_id, server_name);

-- The users a project's instances and credentials belong to (Klavis's /user API): created on
-- their first event, removed when the user is deleted.
CREATE TABLE view_users (
    project_id   uuid        NOT NULL,
    user_id      text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

CREATE INDEX view_users_by_age ON view_users (project_id, created_at, user_id);

-- OAuth apps (white-labeling), without their client secrets.
CREATE TABLE view_oauth_apps (
    project_id    uuid        NOT NULL,
    client_id     text        NOT NULL,
    app_id        text        NOT NULL UNIQUE,
    provider      text        NOT NULL,
    server_name   text        NOT NULL,
    callback_url  text,
    account_id    text,
    authorize_url text,
    token_url     text,
    scopes        text[],
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (project_id, client_id)
);

CREATE INDEX view_oauth_apps_by_provider ON view_oauth_apps (project_id, provider, updated_at DESC);
