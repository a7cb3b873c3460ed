-- The names of live servers, unique per project ignoring case.
--
-- Uniqueness spans aggregates (two servers may race for one name), which optimistic locking
-- on one aggregate cannot enforce. So this table is written by a trigger inside the very
-- transaction that appends a server's event: a second server taking a taken name fails its
-- insert with a unique violation, and its whole command rolls back (postgres-es reports it
-- as a conflict, which the command bus retries; the retry then sees the name taken).
-- It is part of the write side, not a view: the domain reads it through the
-- ServerDirectory port before deciding, and it is always consistent with committed events.
-- Names are compared lower-cased under ICU's root collation, so that the comparison ignores
-- case for every script whatever the database's own locale (a C-locale lower() would only
-- fold ASCII).
CREATE TABLE server_names (
    project_id text NOT NULL,
    name_key   text NOT NULL,
    server_id  text NOT NULL UNIQUE,
    PRIMARY KEY (project_id, name_key)
);

CREATE FUNCTION maintain_server_names() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    body json;
BEGIN
    CASE NEW.event_type
    WHEN 'server.registered' THEN
        body := NEW.payload -> 'ServerRegistered';
        INSERT INTO server_names (project_id, name_key, server_id)
        VALUES (body ->> 'project_id', lower((body -> 'config' ->> 'name') COLLATE "und-x-icu"), NEW.aggregate_id);
    WHEN 'server.updated' THEN
        body := NEW.payload -> 'ServerUpdated';
        UPDATE server_names SET name_key = lower((body -> 'config' ->> 'name') COLLATE "und-x-icu")
        WHERE server_id = NEW.aggregate_id;
    WHEN 'server.deleted' THEN
        DELETE FROM server_names WHERE server_id = NEW.aggregate_id;
    ELSE
        NULL;
    END CASE;
    RETURN NULL;
END
$$;

CREATE TRIGGER server_names_follow_events
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type = 'server')
    EXECUTE FUNCTION maintain_server_names();
