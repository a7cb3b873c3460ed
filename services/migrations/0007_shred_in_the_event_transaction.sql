-- Crypto-shredding happens in the very transaction that records the deletion: when an event
-- ends a credential, the data key it names is deleted with it. A committed deletion has
-- therefore always destroyed its key, whatever the projector is doing; a rolled-back one has
-- destroyed nothing. (The deleted row survives in dead tuples and WAL until vacuum and WAL
-- recycling; the key is unreachable through SQL from the commit on.)
CREATE FUNCTION shred_ended_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    doomed text;
BEGIN
    CASE NEW.event_type
    WHEN 'server.deleted' THEN
        DELETE FROM secret_keys WHERE owner = 'server:' || NEW.aggregate_id;
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

CREATE TRIGGER shred_ended_credentials
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type IN ('server', 'instance'))
    EXECUTE FUNCTION shred_ended_credentials();
