//! Instances of MCP servers for a project's users, surface-independent: Klavis's instance and
//! user APIs (and later Composio's) go through [`Instances`].

mod server_instances;
mod view;

pub use server_instances::{InstancePage, ServerInstanceError, ServerInstanceResult, ServerInstances};

pub use view::{ConnectionRecord, InstanceQuery, InstancesView, UserRecord};

use crate::error::AppError;
use crate::project::Caller;
use crate::secrets::{Credential as KeyOwner, Vault};
use crate::store::{CommandBus, CommandMetadata};
use domain::instance::{AuthTarget, Credential, Instance, InstanceCommand, InstanceError, UserId, slot_id};
use events::instance::{AuthMethod, InstanceSettings, ServerRef, Slot};
use events::{InstanceId, ProjectId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::PgPool;

pub type InstanceResult<T> = Result<T, AppError<InstanceError>>;

fn not_found<T>() -> InstanceResult<T> {
    Err(AppError::Rejected(InstanceError::NotFound))
}

/// The server and user a slot is for.
#[derive(Debug, Clone)]
pub struct SlotRef {
    pub server: ServerRef,
    pub server_name: String,
    pub user: UserId,
}

impl SlotRef {
    fn slot(&self, project_id: ProjectId) -> Slot {
        Slot {
            project_id,
            server: self.server.clone(),
            server_name: self.server_name.clone(),
            user_id: self.user.as_str().to_owned(),
        }
    }

    fn id(&self, project_id: ProjectId) -> String {
        slot_id(project_id, &self.server, &self.user)
    }
}

/// An instance as a create answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedInstance {
    pub instance_id: InstanceId,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Whether this create made it (or it existed already).
    pub created_now: bool,
}

/// The instance an `instance.created` event made; `candidate` tells whether it was ours.
fn created_by(last: &crate::store::LastEvent, candidate: InstanceId) -> Option<CreatedInstance> {
    if last.event_type != "instance.created" {
        return None;
    }
    let id: InstanceId = last.payload.get("InstanceCreated")?.get("instance_id")?.as_str()?.parse().ok()?;
    Some(CreatedInstance { instance_id: id, created_at: last.recorded_at, created_now: id == candidate })
}

/// The id of the slot whose `instance.created` made this instance, read from the events (the
/// view forgets deleted instances). Instance ids are random and never reused.
pub async fn slot_holding(pool: &PgPool, instance_id: InstanceId) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE event_type = 'instance.created' \
         AND (payload -> 'InstanceCreated' ->> 'instance_id') = $1 LIMIT 1",
    )
    .bind(instance_id.to_string())
    .fetch_optional(pool)
    .await
}

/// Which credential an operation is about: an instance's, or a user's for a server.
#[derive(Debug, Clone)]
pub enum Target {
    Instance(InstanceId),
    User(SlotRef),
}

/// A credential opened for a call: its method, its JSON, and the sealed form it was read from.
pub struct OpenedCredential {
    pub method: AuthMethod,
    pub plain: SecretString,
    pub sealed: events::SealedSecret,
}

/// A credential as given, before it is sealed: its method and its JSON.
pub struct AuthInput {
    pub method: AuthMethod,
    pub data: SecretString,
}

#[derive(Clone)]
pub struct Instances {
    bus: CommandBus,
    vault: Vault,
    pool: PgPool,
}

impl Instances {
    pub fn new(bus: CommandBus, vault: Vault, pool: PgPool) -> Self {
        Self { bus, vault, pool }
    }

    /// Creates the user's instance of a server, or returns the existing one.
    ///
    /// A live instance in the view is answered at once (the common repeat create: one
    /// read). Otherwise the command decides, and the slot's newest event says which instance
    /// is live: the one this command created, or a concurrent creator's.
    pub async fn create(
        &self,
        caller: &Caller,
        slot: &SlotRef,
        settings: InstanceSettings,
        required_auth_configs: Vec<String>,
        meta: &CommandMetadata,
    ) -> InstanceResult<CreatedInstance> {
        let id = slot.id(caller.project_id);
        if !self.bus.views_lagging()
            && let Some(record) = view::by_slot(&self.pool, &id).await?
            && let Some(instance_id) = record.instance_id()
        {
            return Ok(CreatedInstance {
                instance_id,
                created_at: record.instance_created_at.unwrap_or(record.updated_at),
                created_now: false,
            });
        }
        // The precondition reads the connected-account view: it must hold every account this
        // process connected, or a user who just connected could be refused. Better a 503.
        if !required_auth_configs.is_empty() && !self.bus.views_caught_up().await {
            return Err(AppError::Unavailable(anyhow::anyhow!(
                "the connected-account view is behind writes already answered; the precondition cannot be checked"
            )));
        }
        let candidate = InstanceId::random();
        let command =
            InstanceCommand::Create { slot: slot.slot(caller.project_id), candidate, settings, required_auth_configs };
        let committed = self.bus.instance(&id, command, meta).await?;
        if let Some(created) = committed.last_event.as_ref().and_then(|last| created_by(last, candidate)) {
            return Ok(created);
        }
        // The slot's newest event is not a creation: its instance is older. Ask the events.
        let state: Instance = self.bus.load(&id).await?;
        let instance_id = state
            .live_instance_id()
            .ok_or_else(|| AppError::Failed(anyhow::anyhow!("slot {id} has no instance after a create")))?;
        let created_at =
            view::by_slot(&self.pool, &id).await?.and_then(|r| r.instance_created_at).unwrap_or_else(chrono::Utc::now);
        Ok(CreatedInstance { instance_id, created_at, created_now: false })
    }

    /// A live instance of the caller's project.
    pub async fn get(&self, caller: &Caller, instance_id: InstanceId) -> InstanceResult<ConnectionRecord> {
        view::by_instance(&self.pool, caller.project_id, instance_id).await?.map_or_else(not_found, Ok)
    }

    /// The instance as it was at `at`, rebuilt from its slot's events recorded until then:
    /// not found if it did not exist yet (or no longer), or is another project's.
    pub async fn get_as_of(
        &self,
        caller: &Caller,
        instance_id: InstanceId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> InstanceResult<ConnectionRecord> {
        let Some(slot_id) = slot_holding(&self.pool, instance_id).await? else { return not_found() };
        let events = crate::feed::read_stream(&self.pool, "instance", &slot_id, Some(at)).await?;
        view::record_as_of(&events)?
            .filter(|r| r.project_id == *caller.project_id.as_uuid() && r.instance_id() == Some(instance_id))
            .map_or_else(not_found, Ok)
    }

    /// A live instance of any project: the instance id alone is the credential (OAuth links).
    pub async fn get_anywhere(&self, instance_id: InstanceId) -> InstanceResult<ConnectionRecord> {
        view::by_instance_anywhere(&self.pool, instance_id).await?.map_or_else(not_found, Ok)
    }

    pub async fn set_read_only(
        &self,
        caller: &Caller,
        instance_id: InstanceId,
        read_only: bool,
        meta: &CommandMetadata,
    ) -> InstanceResult<ConnectionRecord> {
        let record = self.get(caller, instance_id).await?;
        let command = InstanceCommand::ChangeSettings { project_id: caller.project_id, instance_id, read_only };
        self.bus.instance(&record.slot_id, command, meta).await?;
        self.get(caller, instance_id).await
    }

    pub async fn delete(&self, caller: &Caller, instance_id: InstanceId, meta: &CommandMetadata) -> InstanceResult<()> {
        let record = self.get(caller, instance_id).await?;
        let command = InstanceCommand::Delete { project_id: caller.project_id, instance_id };
        self.bus.instance(&record.slot_id, command, meta).await.map(drop)
    }

    /// The slot id and domain target of a credential operation, refusing unknown instances.
    async fn resolve(&self, caller: &Caller, target: &Target) -> InstanceResult<(String, AuthTarget)> {
        Ok(match target {
            Target::Instance(id) => (self.get(caller, *id).await?.slot_id, AuthTarget::Instance(*id)),
            Target::User(slot) => (slot.id(caller.project_id), AuthTarget::User(slot.slot(caller.project_id))),
        })
    }

    /// Seals a credential under a data key of its own.
    async fn seal(&self, input: &AuthInput) -> InstanceResult<events::SealedSecret> {
        let key = self.vault.data_key(&KeyOwner::new_user_credential().owner()).await?;
        Ok(key.seal(&input.data))
    }

    pub async fn set_auth(
        &self,
        caller: &Caller,
        target: &Target,
        input: AuthInput,
        meta: &CommandMetadata,
    ) -> InstanceResult<()> {
        let (slot_id, auth_target) = self.resolve(caller, target).await?;
        let credential = Credential { method: input.method, sealed: self.seal(&input).await?, oauth_state: None };
        let command = InstanceCommand::SetAuth { project_id: caller.project_id, target: auth_target, credential };
        self.bus.instance(&slot_id, command, meta).await.map(drop)
    }

    pub async fn clear_auth(&self, caller: &Caller, target: &Target, meta: &CommandMetadata) -> InstanceResult<()> {
        let (slot_id, auth_target) = self.resolve(caller, target).await?;
        let command = InstanceCommand::ClearAuth { project_id: caller.project_id, target: auth_target };
        self.bus.instance(&slot_id, command, meta).await.map(drop)
    }

    /// The credential, opened, if there is one. An instance that does not exist is an error;
    /// a user's slot that was never used simply has none.
    pub async fn auth_data(&self, caller: &Caller, target: &Target) -> InstanceResult<Option<(AuthMethod, Value)>> {
        let (slot_id, _) = self.resolve(caller, target).await?;
        let slot: Instance = self.bus.load(&slot_id).await?;
        let Some((method, sealed)) = slot.credential_in(caller.project_id) else { return Ok(None) };
        match self.vault.open(sealed).await {
            Ok(plain) => Ok(Some((method, serde_json::from_str(plain.expose_secret()).map_err(anyhow::Error::from)?))),
            // Removed between the load and the open: there is none any more.
            Err(crate::secrets::OpenError::Shredded) => Ok(None),
            Err(e) => Err(AppError::Failed(e.into())),
        }
    }

    /// The credential of a live instance, opened: its method and JSON. Only the gateway calls
    /// this, right before it forwards a request; the instance id was the caller's credential.
    /// An expired credential (its refresh failed) is none: the user must authenticate again.
    pub async fn open_credential(
        &self,
        record: &ConnectionRecord,
    ) -> InstanceResult<Option<(AuthMethod, SecretString)>> {
        Ok(self.open_usable(record).await?.map(|opened| (opened.method, opened.plain)))
    }

    /// The usable credential of a slot, opened, with the sealed form it was read from (what a
    /// refresh replaces). Read from the slot's events, not the view.
    pub async fn open_usable(&self, record: &ConnectionRecord) -> InstanceResult<Option<OpenedCredential>> {
        let slot: Instance = self.bus.load(&record.slot_id).await?;
        let Some((method, sealed)) = slot.usable_credential_in(ProjectId::from_uuid(record.project_id)) else {
            return Ok(None);
        };
        match self.vault.open(sealed).await {
            Ok(plain) => Ok(Some(OpenedCredential { method, plain, sealed: sealed.clone() })),
            Err(crate::secrets::OpenError::Shredded) => Ok(None),
            Err(e) => Err(AppError::Failed(e.into())),
        }
    }

    /// Stores refreshed OAuth tokens in place of `replaces`, sealed under its data key (so that
    /// removing the credential still destroys them). Refused with `CredentialChanged` if the
    /// slot holds other tokens by now (another refresh won, or the user authorized again).
    pub async fn store_refreshed(
        &self,
        record: &ConnectionRecord,
        replaces: &events::SealedSecret,
        tokens: &SecretString,
        meta: &CommandMetadata,
    ) -> InstanceResult<()> {
        let key = match self.vault.key_of(replaces).await {
            Ok(key) => key,
            Err(crate::secrets::OpenError::Shredded) => {
                return Err(AppError::Rejected(InstanceError::CredentialChanged));
            }
            Err(e) => return Err(AppError::Failed(e.into())),
        };
        let command = InstanceCommand::RefreshCredential {
            project_id: ProjectId::from_uuid(record.project_id),
            replaces: replaces.clone(),
            refreshed: key.seal(tokens),
        };
        self.bus.instance(&record.slot_id, command, meta).await.map(drop)
    }

    /// Marks the OAuth tokens `replaces` expired (their refresh failed for good), unless the
    /// slot holds other tokens by now.
    pub async fn expire_credential(
        &self,
        record: &ConnectionRecord,
        replaces: &events::SealedSecret,
        reason: &str,
        meta: &CommandMetadata,
    ) -> InstanceResult<()> {
        let command = InstanceCommand::ExpireCredential {
            project_id: ProjectId::from_uuid(record.project_id),
            replaces: replaces.clone(),
            reason: reason.to_owned(),
        };
        self.bus.instance(&record.slot_id, command, meta).await.map(drop)
    }

    /// Whether the slot of `target` holds a credential (no decryption).
    pub async fn user_connection(&self, caller: &Caller, slot: &SlotRef) -> InstanceResult<Option<ConnectionRecord>> {
        Ok(view::by_slot(&self.pool, &slot.id(caller.project_id)).await?)
    }

    /// Stores the tokens of a completed OAuth flow on a live instance. `state` is the flow's
    /// nonce: a second completion with it is refused.
    pub async fn complete_oauth(
        &self,
        project_id: ProjectId,
        instance_id: InstanceId,
        state: String,
        tokens: SecretString,
        meta: &CommandMetadata,
    ) -> InstanceResult<()> {
        let caller_view = view::by_instance(&self.pool, project_id, instance_id).await?;
        let Some(record) = caller_view else { return not_found() };
        let input = AuthInput { method: AuthMethod::Oauth, data: tokens };
        let credential =
            Credential { method: AuthMethod::Oauth, sealed: self.seal(&input).await?, oauth_state: Some(state) };
        let command = InstanceCommand::SetAuth { project_id, target: AuthTarget::Instance(instance_id), credential };
        self.bus.instance(&record.slot_id, command, meta).await.map(drop)
    }

    /// Whether an OAuth state already delivered a credential to this instance's slot.
    pub async fn state_used(&self, record: &ConnectionRecord, state: &str) -> InstanceResult<bool> {
        let slot: Instance = self.bus.load(&record.slot_id).await?;
        Ok(slot.has_used_state(state))
    }

    // ---- users ----

    pub async fn users(
        &self,
        caller: &Caller,
        page_size: i64,
        page_number: i64,
    ) -> InstanceResult<(Vec<UserRecord>, i64)> {
        // Saturating: a page past the end is empty, never an overflow.
        let offset = page_number.saturating_sub(1).saturating_mul(page_size);
        Ok(view::users(&self.pool, caller.project_id, page_size, offset).await?)
    }

    pub async fn user(&self, caller: &Caller, user: &UserId) -> InstanceResult<UserRecord> {
        view::user(&self.pool, caller.project_id, user.as_str()).await?.map_or_else(not_found, Ok)
    }

    /// The user's slots holding an instance or a credential.
    pub async fn integrations(&self, caller: &Caller, user: &UserId) -> InstanceResult<Vec<ConnectionRecord>> {
        self.user(caller, user).await?;
        Ok(view::of_user(&self.pool, caller.project_id, user.as_str()).await?)
    }

    /// Deletes the user's instances and credentials, slot by slot. Each slot is erased in its
    /// own transaction; erasing is idempotent, so a retry after a failure completes the job.
    pub async fn delete_user(&self, caller: &Caller, user: &UserId, meta: &CommandMetadata) -> InstanceResult<usize> {
        self.user(caller, user).await?;
        let slots = view::slots_of_user(&self.pool, caller.project_id, user.as_str()).await?;
        for slot_id in &slots {
            self.bus.instance(slot_id, InstanceCommand::EraseUser { project_id: caller.project_id }, meta).await?;
        }
        Ok(slots.len())
    }
}
