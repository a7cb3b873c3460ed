use super::MasterKey;
use super::master_key::NONCE_LEN;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use events::SealedSecret;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

/// Creates, finds and destroys data keys, and seals and opens secrets with them.
#[derive(Clone)]
pub struct Vault {
    pool: PgPool,
    master: MasterKey,
}

/// An unwrapped data key, held only for the few statements that seal with it.
pub struct DataKey {
    id: Uuid,
    cipher: Aes256Gcm,
}

/// Why a sealed secret could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Its credential was deleted and its data key destroyed.
    #[error("the secret's data key was destroyed")]
    Shredded,
    /// Wrong master key, or tampered data.
    #[error("the secret cannot be decrypted")]
    Corrupt,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Vault {
    pub fn new(pool: PgPool, master: MasterKey) -> Self {
        Self { pool, master }
    }

    /// The data key of `owner` (a credential, like `server:<id>`), created on first use.
    pub async fn data_key(&self, owner: &str) -> anyhow::Result<DataKey> {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let fresh_id = Uuid::new_v4();
        // Insert a fresh key unless the owner has one; either way read back the owner's key,
        // so two concurrent first uses agree on one key.
        sqlx::query(
            "INSERT INTO secret_keys (key_id, owner, wrapped_key) VALUES ($1, $2, $3) ON CONFLICT (owner) DO NOTHING",
        )
        .bind(fresh_id)
        .bind(owner)
        .bind(self.master.wrap(&raw, fresh_id.as_bytes()))
        .execute(&self.pool)
        .await?;
        let (id, wrapped): (Uuid, Vec<u8>) =
            sqlx::query_as("SELECT key_id, wrapped_key FROM secret_keys WHERE owner = $1")
                .bind(owner)
                .fetch_one(&self.pool)
                .await?;
        self.unwrapped(id, &wrapped).ok_or_else(|| anyhow::anyhow!("data key {id} does not open with the master key"))
    }

    fn unwrapped(&self, id: Uuid, wrapped: &[u8]) -> Option<DataKey> {
        let raw = self.master.unwrap_key(wrapped, id.as_bytes())?;
        Some(DataKey { id, cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&raw)) })
    }

    /// Opens a sealed secret, if its data key still exists.
    pub async fn open(&self, sealed: &SealedSecret) -> Result<SecretString, OpenError> {
        self.key_of(sealed).await?.open(sealed).ok_or(OpenError::Corrupt)
    }

    /// The data key that sealed `sealed`, if it still exists: what a new version of the same
    /// credential (refreshed OAuth tokens) is sealed under, so that destroying the credential's
    /// key destroys every version of it.
    pub async fn key_of(&self, sealed: &SealedSecret) -> Result<DataKey, OpenError> {
        let wrapped: Option<Vec<u8>> = sqlx::query_scalar("SELECT wrapped_key FROM secret_keys WHERE key_id = $1")
            .bind(sealed.key_id)
            .fetch_optional(&self.pool)
            .await?;
        self.unwrapped(sealed.key_id, &wrapped.ok_or(OpenError::Shredded)?).ok_or(OpenError::Corrupt)
    }
}

impl DataKey {
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Encrypts a secret under this key with a fresh random nonce.
    pub fn seal(&self, secret: &SecretString) -> SealedSecret {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload { msg: secret.expose_secret().as_bytes(), aad: self.id.as_bytes() };
        let ciphertext =
            self.cipher.encrypt(Nonce::from_slice(&nonce), payload).expect("AES-GCM encrypts any secret below 64 GiB");
        SealedSecret { key_id: self.id, nonce: BASE64.encode(nonce), ciphertext: BASE64.encode(ciphertext) }
    }

    fn open(&self, sealed: &SealedSecret) -> Option<SecretString> {
        let nonce = BASE64.decode(&sealed.nonce).ok().filter(|n| n.len() == NONCE_LEN)?;
        let ciphertext = BASE64.decode(&sealed.ciphertext).ok()?;
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: self.id.as_bytes() })
            .ok()?;
        String::from_utf8(plain).ok().map(SecretString::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        let master = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let id = Uuid::new_v4();
        let wrapped = master.wrap(&[7u8; 32], id.as_bytes());
        let raw = master.unwrap_key(&wrapped, id.as_bytes()).unwrap();
        DataKey { id, cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&raw)) }
    }

    #[test]
    fn a_sealed_secret_opens_and_does_not_contain_the_plaintext() {
        let key = key();
        let sealed = key.seal(&SecretString::from("hunter2-secret"));
        let stored = serde_json::to_string(&sealed).unwrap();
        assert!(!stored.contains("hunter2"));
        assert_eq!(key.open(&sealed).unwrap().expose_secret(), "hunter2-secret");
    }

    #[test]
    fn a_tampered_secret_does_not_open() {
        let key = key();
        let mut sealed = key.seal(&SecretString::from("value"));
        sealed.ciphertext = BASE64.encode(b"garbage-garbage-garbage");
        assert!(key.open(&sealed).is_none());
    }

    #[test]
    fn a_key_wrapped_by_another_master_does_not_unwrap() {
        let a = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let b = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let wrapped = a.wrap(&[1u8; 32], b"id");
        assert!(b.unwrap_key(&wrapped, b"id").is_none());
        assert!(a.unwrap_key(&wrapped, b"other-id").is_none());
    }
}
