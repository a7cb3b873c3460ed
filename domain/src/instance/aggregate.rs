use super::{AccountDirectory, AuthTarget, Credential, InstanceCommand, InstanceError};
use crate::Recorded;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use events::instance::{
    AuthMethod, InstanceAuthCleared, InstanceAuthSet, InstanceCreated, InstanceCredentialExpired,
    InstanceCredentialRefreshed, InstanceDeleted, InstanceSettings, InstanceSettingsChanged, InstanceUserErased, Slot,
};
use events::{InstanceEvent, InstanceId, ProjectId, SealedSecret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// A (project, server, user) slot, folded from its events.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Instance {
    slot: Option<Slot>,
    live: Option<Live>,
    credential: Option<StoredCredential>,
    /// OAuth states that already delivered a credential.
    used_states: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Live {
    instance_id: InstanceId,
    settings: InstanceSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCredential {
    method: AuthMethod,
    sealed: SealedSecret,
    /// Its OAuth tokens could not be refreshed: kept (sealed, its key alive until it is
    /// replaced or removed) but not usable.
    #[serde(default)]
    expired: bool,
}

impl Instance {
    /// The slot, if it exists and belongs to `project_id`.
    fn slot_in(&self, project_id: ProjectId) -> Result<&Slot, InstanceError> {
        self.slot.as_ref().filter(|s| s.project_id == project_id).ok_or(InstanceError::NotFound)
    }

    /// The live instance `instance_id` of `project_id`'s slot.
    fn live_instance(&self, project_id: ProjectId, instance_id: InstanceId) -> Result<(&Slot, &Live), InstanceError> {
        let slot = self.slot_in(project_id)?;
        let live = self.live.as_ref().filter(|l| l.instance_id == instance_id).ok_or(InstanceError::NotFound)?;
        Ok((slot, live))
    }

    /// The slot a credential command is about, checked against the caller's project.
    fn target_slot(&self, project_id: ProjectId, target: &AuthTarget) -> Result<Slot, InstanceError> {
        match target {
            AuthTarget::Instance(id) => self.live_instance(project_id, *id).map(|(slot, _)| slot.clone()),
            AuthTarget::User(given) if given.project_id == project_id => {
                Ok(self.slot.clone().unwrap_or_else(|| given.clone()))
            }
            AuthTarget::User(_) => Err(InstanceError::NotFound),
        }
    }

    pub fn live_instance_id(&self) -> Option<InstanceId> {
        self.live.as_ref().map(|l| l.instance_id)
    }

    pub fn slot(&self) -> Option<&Slot> {
        self.slot.as_ref()
    }

    /// The data key of the credential held, if any.
    pub fn credential_key(&self) -> Option<Uuid> {
        self.credential.as_ref().map(|c| c.sealed.key_id)
    }

    /// The credential held, still sealed, if the slot belongs to `project_id`.
    pub fn credential_in(&self, project_id: ProjectId) -> Option<(AuthMethod, &SealedSecret)> {
        self.slot_in(project_id).ok()?;
        self.credential.as_ref().map(|c| (c.method, &c.sealed))
    }

    /// The credential held, still sealed, if it is usable (not expired) and the slot belongs to
    /// `project_id`: what a call may send upstream.
    pub fn usable_credential_in(&self, project_id: ProjectId) -> Option<(AuthMethod, &SealedSecret)> {
        self.slot_in(project_id).ok()?;
        self.credential.as_ref().filter(|c| !c.expired).map(|c| (c.method, &c.sealed))
    }

    /// The slot of `project_id`, if it still holds `sealed` as its usable OAuth credential.
    fn oauth_credential(&self, project_id: ProjectId, sealed: &SealedSecret) -> Result<&Slot, InstanceError> {
        let slot = self.slot_in(project_id)?;
        match &self.credential {
            Some(c) if !c.expired && c.method == AuthMethod::Oauth && c.sealed == *sealed => Ok(slot),
            _ => Err(InstanceError::CredentialChanged),
        }
    }

    pub fn has_used_state(&self, state: &str) -> bool {
        self.used_states.contains(state)
    }

    fn decide(&self, command: InstanceCommand) -> Result<Option<InstanceEvent>, InstanceError> {
        let live_id = self.live_instance_id();
        let key = self.credential_key();
        Ok(Some(match command {
            InstanceCommand::Create { slot, candidate, settings, .. } => {
                if self.live.is_some() {
                    return Ok(None);
                }
                let slot = self.slot.clone().unwrap_or(slot);
                InstanceEvent::InstanceCreated(InstanceCreated { slot, instance_id: candidate, settings })
            }
            InstanceCommand::ChangeSettings { project_id, instance_id, read_only } => {
                let (slot, live) = self.live_instance(project_id, instance_id)?;
                if live.settings.read_only == read_only {
                    return Ok(None);
                }
                let settings = InstanceSettings { read_only, ..live.settings.clone() };
                InstanceEvent::InstanceSettingsChanged(InstanceSettingsChanged {
                    slot: slot.clone(),
                    instance_id,
                    settings,
                })
            }
            InstanceCommand::SetAuth { project_id, target, credential: Credential { method, sealed, oauth_state } } => {
                let slot = self.target_slot(project_id, &target)?;
                if oauth_state.as_ref().is_some_and(|s| self.used_states.contains(s)) {
                    return Err(InstanceError::StateAlreadyUsed);
                }
                InstanceEvent::InstanceAuthSet(InstanceAuthSet {
                    slot,
                    instance_id: live_id,
                    method,
                    credential: sealed,
                    replaced_key_id: key,
                    oauth_state,
                })
            }
            InstanceCommand::ClearAuth { project_id, target } => {
                let slot = self.target_slot(project_id, &target)?;
                let Some(destroyed_key_id) = key else { return Ok(None) };
                InstanceEvent::InstanceAuthCleared(InstanceAuthCleared { slot, instance_id: live_id, destroyed_key_id })
            }
            InstanceCommand::Delete { project_id, instance_id } => {
                let (slot, _) = self.live_instance(project_id, instance_id)?;
                InstanceEvent::InstanceDeleted(InstanceDeleted {
                    slot: slot.clone(),
                    instance_id,
                    destroyed_key_id: key,
                })
            }
            InstanceCommand::EraseUser { project_id } => {
                let slot = self.slot_in(project_id)?.clone();
                InstanceEvent::InstanceUserErased(InstanceUserErased {
                    slot,
                    instance_id: live_id,
                    destroyed_key_id: key,
                })
            }
            InstanceCommand::RefreshCredential { project_id, replaces, refreshed } => {
                let slot = self.oauth_credential(project_id, &replaces)?.clone();
                if refreshed.key_id != replaces.key_id {
                    // A new key would outlive the credential's: only its own key seals it.
                    return Err(InstanceError::CredentialChanged);
                }
                InstanceEvent::InstanceCredentialRefreshed(InstanceCredentialRefreshed {
                    slot,
                    instance_id: live_id,
                    credential: refreshed,
                })
            }
            InstanceCommand::ExpireCredential { project_id, replaces, reason } => {
                let slot = self.oauth_credential(project_id, &replaces)?.clone();
                InstanceEvent::InstanceCredentialExpired(InstanceCredentialExpired {
                    slot,
                    instance_id: live_id,
                    key_id: replaces.key_id,
                    reason,
                })
            }
        }))
    }
}

impl Aggregate for Instance {
    const TYPE: &'static str = <InstanceEvent as events::Event>::AGGREGATE_TYPE;
    type Command = InstanceCommand;
    type Event = Recorded<InstanceEvent>;
    type Error = InstanceError;
    type Services = Arc<dyn AccountDirectory>;

    async fn handle(
        &mut self,
        command: InstanceCommand,
        accounts: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), InstanceError> {
        // The precondition: a new instance needs an ACTIVE connected account of the user for
        // every auth config the server requires, each auth config ENABLED. An existing one is
        // simply returned.
        if let InstanceCommand::Create { slot, required_auth_configs, .. } = &command
            && self.live.is_none()
            && !required_auth_configs.is_empty()
        {
            let lacking = accounts.unusable_auth_configs(slot.project_id, &slot.user_id, required_auth_configs).await?;
            if !lacking.is_empty() {
                return Err(InstanceError::MissingConnectedAccounts(lacking));
            }
        }
        if let Some(event) = self.decide(command)? {
            sink.write(Recorded(event), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, Recorded(event): Self::Event) {
        if self.slot.is_none() {
            self.slot = Some(event.slot().clone());
        }
        match event {
            InstanceEvent::InstanceCreated(e) => {
                self.live = Some(Live { instance_id: e.instance_id, settings: e.settings });
            }
            InstanceEvent::InstanceSettingsChanged(e) => {
                if let Some(live) = self.live.as_mut() {
                    live.settings = e.settings;
                }
            }
            InstanceEvent::InstanceAuthSet(e) => {
                self.credential = Some(StoredCredential { method: e.method, sealed: e.credential, expired: false });
                self.used_states.extend(e.oauth_state);
            }
            InstanceEvent::InstanceAuthCleared(_) => self.credential = None,
            InstanceEvent::InstanceCredentialRefreshed(e) => {
                if let Some(credential) = self.credential.as_mut() {
                    credential.sealed = e.credential;
                    credential.expired = false;
                }
            }
            InstanceEvent::InstanceCredentialExpired(_) => {
                if let Some(credential) = self.credential.as_mut() {
                    credential.expired = true;
                }
            }
            InstanceEvent::InstanceDeleted(_) | InstanceEvent::InstanceUserErased(_) => {
                self.live = None;
                self.credential = None;
            }
        }
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
