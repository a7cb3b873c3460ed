-- The nonces of OAuth states a callback has used. A callback spends its state before it
-- calls the token endpoint, whatever then happens, so one state can make the service call
-- out at most once (issue 18: a failed exchange used to leave the state reusable).
--
-- Part of the write side, not a view: it is not derived from events (a failed callback
-- appends none). A row is only needed while its state could still be opened, so rows are
-- purged a while after `expires_at`, when spending another state.
CREATE TABLE spent_oauth_states (
    nonce      text        PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX spent_oauth_states_expiry ON spent_oauth_states (expires_at);
