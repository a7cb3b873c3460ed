-- Audits look an instance up by its id in the event that created it: instance ids are random
-- and live in the payload, and the view forgets an instance once it is deleted.
CREATE INDEX events_instance_created_by_id ON events ((payload -> 'InstanceCreated' ->> 'instance_id'))
    WHERE event_type = 'instance.created';
