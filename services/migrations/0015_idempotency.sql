-- Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): the first response to a keyed
-- POST, kept per (project, key) so that a retry reaching any replica, before or after a
-- restart, gets the same answer instead of running again.
--
-- A row is claimed (INSERT ... ON CONFLICT) before the request runs and completed with its
-- response after; `status` is null while the first request is still running. `claim` names the
-- run that owns the row, so that a run whose lease lapsed (its process died) cannot overwrite
-- the answer of the run that took over. `fingerprint` is a SHA-256 of method, path and body:
-- the same key with another request is refused.
CREATE TABLE idempotency_keys (
    project_id    uuid        NOT NULL,
    key           text        NOT NULL,
    fingerprint   bytea       NOT NULL,
    claim         uuid        NOT NULL,
    claimed_until timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    status        smallint,
    header_names  text[],
    header_values bytea[],
    body          bytea,
    PRIMARY KEY (project_id, key)
);

-- The sweep deletes by age.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
