use super::*;
use crate::instance::Unusable;
use cqrs_es::test::TestFramework;
use events::SealedSecret;
use events::instance::{ConnectionType, ServerRef};

/// Alice holds an ACTIVE account for every auth config whose id starts with `ac_active`.
struct Accounts;

#[async_trait::async_trait]
impl AccountDirectory for Accounts {
    async fn unusable_auth_configs(
        &self,
        _: ProjectId,
        _: &str,
        ids: &[String],
    ) -> Result<Vec<Unusable>, crate::LookupFailed> {
        Ok(ids.iter().filter(|id| !id.starts_with("ac_active")).map(|id| missing(id)).collect())
    }
}

fn missing(id: &str) -> Unusable {
    Unusable { auth_config_id: id.into(), reason: "no connected account".into() }
}

struct InstanceTest;

impl InstanceTest {
    fn with(_: ()) -> TestFramework<Instance> {
        TestFramework::with(Arc::new(Accounts) as Arc<dyn AccountDirectory>)
    }
}

fn slot(project_id: ProjectId) -> Slot {
    Slot {
        project_id,
        server: ServerRef::Catalog { slug: "gmail".into() },
        server_name: "Gmail".into(),
        user_id: "alice".into(),
    }
}

fn settings(read_only: bool) -> InstanceSettings {
    InstanceSettings {
        platform: Some("web".into()),
        connection_type: ConnectionType::StreamableHttp,
        legacy: false,
        read_only,
    }
}

fn created(project_id: ProjectId, instance_id: InstanceId) -> Recorded<InstanceEvent> {
    Recorded(InstanceEvent::InstanceCreated(InstanceCreated {
        slot: slot(project_id),
        instance_id,
        settings: settings(false),
    }))
}

fn sealed(key: u128) -> SealedSecret {
    SealedSecret { key_id: Uuid::from_u128(key), nonce: "n".into(), ciphertext: "c".into() }
}

fn credential(key: u128, state: Option<&str>) -> Credential {
    Credential { method: AuthMethod::Oauth, sealed: sealed(key), oauth_state: state.map(str::to_owned) }
}

fn auth_set(
    project_id: ProjectId,
    instance_id: Option<InstanceId>,
    key: u128,
    replaced: Option<u128>,
    state: Option<&str>,
) -> Recorded<InstanceEvent> {
    Recorded(InstanceEvent::InstanceAuthSet(InstanceAuthSet {
        slot: slot(project_id),
        instance_id,
        method: AuthMethod::Oauth,
        credential: sealed(key),
        replaced_key_id: replaced.map(Uuid::from_u128),
        oauth_state: state.map(str::to_owned),
    }))
}

#[tokio::test]
async fn the_first_create_makes_an_instance_with_the_candidate_id() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    InstanceTest::with(())
        .given_no_previous_events()
        .when_async(InstanceCommand::Create {
            slot: slot(project),
            candidate: id,
            settings: settings(false),
            required_auth_configs: vec![],
        })
        .await
        .then_expect_events(vec![created(project, id)]);
}

#[tokio::test]
async fn a_repeat_create_emits_nothing_and_keeps_the_first_settings() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    InstanceTest::with(())
        .given(vec![created(project, id)])
        .when_async(InstanceCommand::Create {
            slot: slot(project),
            candidate: InstanceId::random(),
            settings: settings(true),
            required_auth_configs: vec!["ac_missing_1".into()],
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_create_after_a_delete_gets_a_new_id() {
    let (project, old, new) = (ProjectId::random(), InstanceId::random(), InstanceId::random());
    let deleted = Recorded(InstanceEvent::InstanceDeleted(InstanceDeleted {
        slot: slot(project),
        instance_id: old,
        destroyed_key_id: None,
    }));
    InstanceTest::with(())
        .given(vec![created(project, old), deleted])
        .when_async(InstanceCommand::Create {
            slot: slot(project),
            candidate: new,
            settings: settings(false),
            required_auth_configs: vec![],
        })
        .await
        .then_expect_events(vec![created(project, new)]);
}

#[tokio::test]
async fn a_credential_replacing_another_names_the_key_to_destroy() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    InstanceTest::with(())
        .given(vec![created(project, id), auth_set(project, Some(id), 1, None, None)])
        .when_async(InstanceCommand::SetAuth {
            project_id: project,
            target: AuthTarget::Instance(id),
            credential: credential(2, None),
        })
        .await
        .then_expect_events(vec![auth_set(project, Some(id), 2, Some(1), None)]);
}

#[tokio::test]
async fn a_user_credential_may_come_before_the_instance() {
    let project = ProjectId::random();
    InstanceTest::with(())
        .given_no_previous_events()
        .when_async(InstanceCommand::SetAuth {
            project_id: project,
            target: AuthTarget::User(slot(project)),
            credential: credential(1, None),
        })
        .await
        .then_expect_events(vec![auth_set(project, None, 1, None, None)]);
}

#[tokio::test]
async fn an_oauth_state_delivers_one_credential_only() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    InstanceTest::with(())
        .given(vec![created(project, id), auth_set(project, Some(id), 1, None, Some("s1"))])
        .when_async(InstanceCommand::SetAuth {
            project_id: project,
            target: AuthTarget::Instance(id),
            credential: credential(2, Some("s1")),
        })
        .await
        .then_expect_error(InstanceError::StateAlreadyUsed);
}

#[tokio::test]
async fn another_projects_or_a_stale_instance_id_is_not_found() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    let stranger = ProjectId::random();
    for command in [
        InstanceCommand::Delete { project_id: stranger, instance_id: id },
        InstanceCommand::Delete { project_id: project, instance_id: InstanceId::random() },
        InstanceCommand::ChangeSettings { project_id: stranger, instance_id: id, read_only: true },
        InstanceCommand::SetAuth {
            project_id: stranger,
            target: AuthTarget::Instance(id),
            credential: credential(1, None),
        },
        InstanceCommand::SetAuth {
            project_id: stranger,
            target: AuthTarget::User(slot(project)),
            credential: credential(1, None),
        },
        InstanceCommand::ClearAuth { project_id: stranger, target: AuthTarget::Instance(id) },
        InstanceCommand::EraseUser { project_id: stranger },
    ] {
        InstanceTest::with(())
            .given(vec![created(project, id)])
            .when_async(command)
            .await
            .then_expect_error(InstanceError::NotFound);
    }
}

#[tokio::test]
async fn deleting_an_instance_destroys_its_credentials_key() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    InstanceTest::with(())
        .given(vec![created(project, id), auth_set(project, Some(id), 7, None, None)])
        .when_async(InstanceCommand::Delete { project_id: project, instance_id: id })
        .await
        .then_expect_events(vec![Recorded(InstanceEvent::InstanceDeleted(InstanceDeleted {
            slot: slot(project),
            instance_id: id,
            destroyed_key_id: Some(Uuid::from_u128(7)),
        }))]);
}

#[tokio::test]
async fn clearing_no_credential_changes_nothing() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    InstanceTest::with(())
        .given(vec![created(project, id)])
        .when_async(InstanceCommand::ClearAuth { project_id: project, target: AuthTarget::Instance(id) })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn changing_settings_records_the_whole_settings() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    InstanceTest::with(())
        .given(vec![created(project, id)])
        .when_async(InstanceCommand::ChangeSettings { project_id: project, instance_id: id, read_only: true })
        .await
        .then_expect_events(vec![Recorded(InstanceEvent::InstanceSettingsChanged(InstanceSettingsChanged {
            slot: slot(project),
            instance_id: id,
            settings: settings(true),
        }))]);
}

#[tokio::test]
async fn erasing_a_user_removes_instance_and_credential_in_one_event() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    InstanceTest::with(())
        .given(vec![created(project, id), auth_set(project, Some(id), 3, None, None)])
        .when_async(InstanceCommand::EraseUser { project_id: project })
        .await
        .then_expect_events(vec![Recorded(InstanceEvent::InstanceUserErased(InstanceUserErased {
            slot: slot(project),
            instance_id: Some(id),
            destroyed_key_id: Some(Uuid::from_u128(3)),
        }))]);
}

#[tokio::test]
async fn an_instance_needs_an_active_account_for_every_required_auth_config() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    let required = vec!["ac_active_1".to_owned(), "ac_missing_1".to_owned(), "ac_missing_2".to_owned()];
    InstanceTest::with(())
        .given_no_previous_events()
        .when_async(InstanceCommand::Create {
            slot: slot(project),
            candidate: id,
            settings: settings(false),
            required_auth_configs: required,
        })
        .await
        .then_expect_error(InstanceError::MissingConnectedAccounts(vec![
            missing("ac_missing_1"),
            missing("ac_missing_2"),
        ]));
    InstanceTest::with(())
        .given_no_previous_events()
        .when_async(InstanceCommand::Create {
            slot: slot(project),
            candidate: id,
            settings: settings(false),
            required_auth_configs: vec!["ac_active_1".into()],
        })
        .await
        .then_expect_events(vec![created(project, id)]);
}

fn resealed(key: u128, ciphertext: &str) -> SealedSecret {
    SealedSecret { key_id: Uuid::from_u128(key), nonce: "n2".into(), ciphertext: ciphertext.into() }
}

fn refreshed(project_id: ProjectId, instance_id: InstanceId, credential: SealedSecret) -> Recorded<InstanceEvent> {
    Recorded(InstanceEvent::InstanceCredentialRefreshed(InstanceCredentialRefreshed {
        slot: slot(project_id),
        instance_id: Some(instance_id),
        credential,
    }))
}

#[tokio::test]
async fn a_refresh_of_the_credential_held_stores_the_new_tokens_under_its_key() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    InstanceTest::with(())
        .given(vec![created(project, id), auth_set(project, Some(id), 1, None, None)])
        .when_async(InstanceCommand::RefreshCredential {
            project_id: project,
            replaces: sealed(1),
            refreshed: resealed(1, "new"),
        })
        .await
        .then_expect_events(vec![refreshed(project, id, resealed(1, "new"))]);
}

#[tokio::test]
async fn a_refresh_that_lost_the_race_or_changes_the_key_is_refused() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    // Another refresh already replaced the tokens this one read.
    InstanceTest::with(())
        .given(vec![
            created(project, id),
            auth_set(project, Some(id), 1, None, None),
            refreshed(project, id, resealed(1, "winner")),
        ])
        .when_async(InstanceCommand::RefreshCredential {
            project_id: project,
            replaces: sealed(1),
            refreshed: resealed(1, "loser"),
        })
        .await
        .then_expect_error(InstanceError::CredentialChanged);
    InstanceTest::with(())
        .given(vec![created(project, id), auth_set(project, Some(id), 1, None, None)])
        .when_async(InstanceCommand::RefreshCredential {
            project_id: project,
            replaces: sealed(1),
            refreshed: resealed(2, "other key"),
        })
        .await
        .then_expect_error(InstanceError::CredentialChanged);
}

#[tokio::test]
async fn an_expired_credential_is_kept_sealed_but_not_usable_until_replaced() {
    let (project, id) = (ProjectId::random(), InstanceId::random());
    let expired = Recorded(InstanceEvent::InstanceCredentialExpired(InstanceCredentialExpired {
        slot: slot(project),
        instance_id: Some(id),
        key_id: Uuid::from_u128(1),
        reason: "invalid_grant".into(),
    }));
    InstanceTest::with(())
        .given(vec![created(project, id), auth_set(project, Some(id), 1, None, None)])
        .when_async(InstanceCommand::ExpireCredential {
            project_id: project,
            replaces: sealed(1),
            reason: "invalid_grant".into(),
        })
        .await
        .then_expect_events(vec![expired.clone()]);

    let mut slot_state = Instance::default();
    for event in [created(project, id), auth_set(project, Some(id), 1, None, None), expired] {
        slot_state.apply(event);
    }
    assert!(slot_state.usable_credential_in(project).is_none());
    assert_eq!(slot_state.credential_key(), Some(Uuid::from_u128(1)), "deleting it still destroys its key");
    slot_state.apply(auth_set(project, Some(id), 2, Some(1), Some("s")));
    assert!(slot_state.usable_credential_in(project).is_some(), "a new authorization makes it usable again");
}
