//! Composio v3.1's partial update of an account: its alias, and fields of its key, token or
//! basic credential. The credential is opened, merged and sealed again under the account's
//! own data key; the command records it only if the account still holds the credential it
//! was merged from, so two concurrent updates never lose one another's fields silently.

use super::{AccountError, AccountResult, ConnectedAccounts, refused, widen};
use crate::error::AppError;
use crate::project::Caller;
use crate::secrets::OpenError;
use crate::store::CommandMetadata;
use domain::Patch;
use domain::connected_account::{
    ConnectedAccount, ConnectedAccountCommand, ConnectedAccountError, CredentialUpdate, Status, UPDATABLE_SCHEMES,
    missing_credential_fields,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `connection.state` of an update: the scheme the caller says the account has, and the
/// fields to set (a value) or remove (`None`).
pub struct CredentialPatch {
    pub auth_scheme: String,
    pub fields: BTreeMap<String, Option<SecretString>>,
}

impl ConnectedAccounts {
    /// Updates the alias (kept, cleared or set) and the credential's fields; returns the
    /// account as it is then. Nothing is recorded if any part is refused.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        alias: Patch<String>,
        credential: Option<CredentialPatch>,
        meta: &CommandMetadata,
    ) -> AccountResult<super::AccountRecord> {
        let credential = match credential {
            Some(patch) => Some(self.merged_credential(caller, id, patch).await?),
            None => None,
        };
        let command = ConnectedAccountCommand::Update { project_id: caller.project_id, alias, credential };
        let committed = widen(self.bus.connected_account(id, command, meta).await)?;
        self.after_write(caller, id, &committed).await
    }

    /// The account's credential with `patch` applied, sealed under the key of the one it
    /// replaces. Refused when the account has no credential to change (pending, failed,
    /// expired, revoked) or would lose a field its scheme needs.
    async fn merged_credential(
        &self,
        caller: &Caller,
        id: &str,
        patch: CredentialPatch,
    ) -> AccountResult<CredentialUpdate> {
        if !UPDATABLE_SCHEMES.contains(&patch.auth_scheme.as_str()) {
            return Err(refused(AccountError::NotUpdatableScheme(patch.auth_scheme)));
        }
        let account: ConnectedAccount = widen(self.bus.load(id).await)?;
        let state = account.state_in(caller.project_id).ok_or_else(|| refused(ConnectedAccountError::NotFound))?;
        let scheme = state.account.auth_scheme.clone();
        if scheme != patch.auth_scheme {
            return Err(refused(ConnectedAccountError::SchemeMismatch { expected: scheme, given: patch.auth_scheme }));
        }
        let not_updatable = || refused(ConnectedAccountError::CredentialNotUpdatable(state.status.as_str()));
        if !matches!(state.status, Status::Active | Status::Inactive) {
            return Err(not_updatable());
        }
        let (_, sealed) = account.credential_in(caller.project_id).ok_or_else(not_updatable)?;
        let current = match self.vault.open(sealed).await {
            Ok(plain) => plain,
            Err(OpenError::Shredded) => return Err(not_updatable()),
            Err(e) => return Err(AppError::Failed(e.into())),
        };
        let Merged { object: merged, set_fields, removed_fields } = merge(&current, patch.fields)?;
        let missing = missing_credential_fields(&scheme, &merged);
        if !missing.is_empty() {
            let fields = missing.into_iter().map(str::to_owned).collect();
            return Err(refused(AccountError::MissingFields { scheme, fields }));
        }
        let key = match self.vault.key_of(sealed).await {
            Ok(key) => key,
            Err(OpenError::Shredded) => return Err(not_updatable()),
            Err(e) => return Err(AppError::Failed(e.into())),
        };
        let merged = SecretString::from(Value::Object(merged).to_string());
        Ok(CredentialUpdate {
            auth_scheme: scheme,
            replaces: sealed.clone(),
            updated: key.seal(&merged),
            set_fields,
            removed_fields,
        })
    }
}

/// A credential with a patch applied.
struct Merged {
    object: Map<String, Value>,
    set_fields: Vec<String>,
    removed_fields: Vec<String>,
}

/// The stored credential object with each field set or removed; and the names of the fields
/// set and of those removed (removing an absent field is no change).
fn merge(current: &SecretString, fields: BTreeMap<String, Option<SecretString>>) -> AccountResult<Merged> {
    let mut object: Map<String, Value> = serde_json::from_str(current.expose_secret())
        .map_err(|_| AppError::Failed(anyhow::anyhow!("a stored credential is not a JSON object")))?;
    let (mut set, mut removed) = (Vec::new(), Vec::new());
    for (name, value) in fields {
        match value {
            Some(value) => {
                object.insert(name.clone(), Value::String(value.expose_secret().to_owned()));
                set.push(name);
            }
            None => {
                if object.remove(&name).is_some() {
                    removed.push(name);
                }
            }
        }
    }
    Ok(Merged { object, set_fields: set, removed_fields: removed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_sets_and_removes_fields_and_keeps_the_others() {
        let current = SecretString::from(r#"{"api_key":"old","api_key_prefix":"Bearer","region":"eu"}"#.to_owned());
        let fields = BTreeMap::from([
            ("api_key".to_owned(), Some(SecretString::from("new".to_owned()))),
            ("api_key_prefix".to_owned(), None),
            ("absent".to_owned(), None),
        ]);
        let Ok(merged) = merge(&current, fields) else { panic!("merge failed") };
        assert_eq!(Value::Object(merged.object), serde_json::json!({"api_key": "new", "region": "eu"}));
        assert_eq!(merged.set_fields, vec!["api_key"]);
        assert_eq!(merged.removed_fields, vec!["api_key_prefix"]);
    }
}
