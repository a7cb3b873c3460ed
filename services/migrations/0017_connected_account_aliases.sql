-- The aliases of live connected accounts (Composio v3.1), unique per (project, user, toolkit),
-- as Composio documents them ("Must be unique per entity and toolkit within the project").
--
-- As server_names (0004): uniqueness spans aggregates (two accounts may race for one alias),
-- which optimistic locking on one aggregate cannot enforce. A trigger writes this table in the
-- transaction that appends an account's event, so the second of two racing commands fails its
-- insert with a unique violation and rolls back whole (postgres-es reports it as a conflict;
-- the command bus retries; the retry finds the alias taken through the AliasDirectory port
-- and is refused). Part of the write side, not a view: always consistent with committed
-- events. Aliases compare exactly (Composio does not say that case is ignored).
CREATE TABLE connected_account_aliases (
    project_id           text NOT NULL,
    user_id              text NOT NULL,
    toolkit              text NOT NULL,
    alias                text NOT NULL,
    connected_account_id text NOT NULL UNIQUE,
    PRIMARY KEY (project_id, user_id, toolkit, alias)
);

CREATE FUNCTION maintain_connected_account_aliases() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    body json;
BEGIN
    CASE NEW.event_type
    WHEN 'connected_account.alias_changed' THEN
        body := NEW.payload -> 'ConnectedAccountAliasChanged';
        DELETE FROM connected_account_aliases WHERE connected_account_id = NEW.aggregate_id;
        IF body ->> 'alias' IS NOT NULL THEN
            INSERT INTO connected_account_aliases (project_id, user_id, toolkit, alias, connected_account_id)
            VALUES (body -> 'account' ->> 'project_id', body -> 'account' ->> 'user_id',
                    body -> 'account' ->> 'toolkit', body ->> 'alias', NEW.aggregate_id);
        END IF;
    WHEN 'connected_account.deleted' THEN
        DELETE FROM connected_account_aliases WHERE connected_account_id = NEW.aggregate_id;
    ELSE
        NULL;
    END CASE;
    RETURN NULL;
END
$$;

CREATE TRIGGER connected_account_aliases_follow_events
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type = 'connected_account')
    EXECUTE FUNCTION maintain_connected_account_aliases();

-- The accounts' view shows the alias (Composio's `alias`, v3.1).
ALTER TABLE view_connected_accounts ADD COLUMN alias text;
