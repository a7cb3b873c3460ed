-- Data keys of credentials, one per owner (for example `server:<id>`), each wrapped by the
-- master key. Secrets in events are encrypted under these keys. Deleting a row is
-- crypto-shredding: the events keep their ciphertext, and nothing can open it any more.
CREATE TABLE secret_keys (
    key_id      uuid        PRIMARY KEY,
    owner       text        NOT NULL UNIQUE,
    -- 12-byte nonce followed by the AES-256-GCM ciphertext of the 32-byte key and its tag.
    wrapped_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
