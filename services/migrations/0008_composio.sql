-- Composio: auth configs and connected accounts (views, written only by the projector), the
-- Composio fields of the server view, and crypto-shredding of their credentials.

CREATE TABLE view_auth_configs (
    auth_config_id  text        PRIMARY KEY,
    project_id      uuid        NOT NULL,
    name            text        NOT NULL,
    toolkit         text        NOT NULL,
    managed         boolean     NOT NULL,
    auth_scheme     text        NOT NULL,
    -- Only the credential fields that are not secret (client_id, scopes, endpoints); the
    -- others are listed by name, never by value.
    public_credentials jsonb    NOT NULL,
    secret_fields   text[]      NOT NULL,
    proxy_url       text,
    has_proxy_auth_key boolean  NOT NULL,
    restrict_to_following_tools text[] NOT NULL,
    tools_for_connected_account_creation text[] NOT NULL,
    tools_available_for_execution text[] NOT NULL,
    enabled         boolean     NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz
);

CREATE INDEX view_auth_configs_by_project ON view_auth_configs (project_id, created_at DESC, auth_config_id)
    WHERE deleted_at IS NULL;

-- Connected accounts with their status: what an instance's precondition reads.
CREATE TABLE view_connected_accounts (
    connected_account_id text       PRIMARY KEY,
    project_id      uuid        NOT NULL,
    auth_config_id  text        NOT NULL,
    toolkit         text        NOT NULL,
    auth_scheme     text        NOT NULL,
    user_id         text        NOT NULL,
    status          text        NOT NULL,
    status_reason   text,
    link_token_sha256 text,
    callback_url    text,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz
);

CREATE INDEX view_connected_accounts_by_user ON view_connected_accounts (project_id, user_id, auth_config_id, status)
    WHERE deleted_at IS NULL;
CREATE INDEX view_connected_accounts_by_auth_config ON view_connected_accounts (auth_config_id, status)
    WHERE deleted_at IS NULL;
CREATE INDEX view_connected_accounts_pending ON view_connected_accounts (expires_at)
    WHERE deleted_at IS NULL AND status IN ('INITIALIZING', 'INITIATED');
CREATE UNIQUE INDEX view_connected_accounts_by_link ON view_connected_accounts (link_token_sha256);

ALTER TABLE view_servers
    ADD COLUMN auth_config_ids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN allowed_tools text[] NOT NULL DEFAULT '{}',
    ADD COLUMN toolkits text[] NOT NULL DEFAULT '{}',
    ADD COLUMN no_auth_apps text[] NOT NULL DEFAULT '{}',
    ADD COLUMN managed_auth_via_composio boolean NOT NULL DEFAULT false;

-- Instance lists per server.
CREATE INDEX view_connections_by_server ON view_connections (server_key, updated_at) WHERE instance_id IS NOT NULL;

-- The credentials of a deleted auth config, and of a revoked or deleted connected account,
-- are destroyed in the transaction that records it (see 0007).
CREATE OR REPLACE FUNCTION shred_ended_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    doomed text;
BEGIN
    CASE NEW.event_type
    WHEN 'server.deleted' THEN
        DELETE FROM secret_keys WHERE owner = 'server:' || NEW.aggregate_id;
        RETURN NULL;
    WHEN 'auth_config.deleted' THEN
        DELETE FROM secret_keys WHERE owner = 'auth_config:' || NEW.aggregate_id;
        RETURN NULL;
    WHEN 'connected_account.revoked', 'connected_account.deleted' THEN
        DELETE FROM secret_keys WHERE owner = 'connected_account:' || NEW.aggregate_id;
        RETURN NULL;
    WHEN 'instance.auth_set' THEN
        doomed := NEW.payload -> 'InstanceAuthSet' ->> 'replaced_key_id';
    WHEN 'instance.auth_cleared' THEN
        doomed := NEW.payload -> 'InstanceAuthCleared' ->> 'destroyed_key_id';
    WHEN 'instance.deleted' THEN
        doomed := NEW.payload -> 'InstanceDeleted' ->> 'destroyed_key_id';
    WHEN 'instance.user_erased' THEN
        doomed := NEW.payload -> 'InstanceUserErased' ->> 'destroyed_key_id';
    ELSE
        RETURN NULL;
    END CASE;
    IF doomed IS NOT NULL THEN
        DELETE FROM secret_keys WHERE key_id = doomed::uuid;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER shred_ended_credentials ON events;
CREATE TRIGGER shred_ended_credentials
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type IN ('server', 'instance', 'auth_config', 'connected_account'))
    EXECUTE FUNCTION shred_ended_credentials();
