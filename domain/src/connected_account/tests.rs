use super::*;
use cqrs_es::test::TestFramework;

fn account(project_id: ProjectId) -> AccountRef {
    AccountRef {
        project_id,
        connected_account_id: "ca_123456789012".into(),
        auth_config_id: "ac_123456789012".into(),
        toolkit: "gmail".into(),
        auth_scheme: "OAUTH2".into(),
        user_id: "alice".into(),
    }
}

fn sealed() -> SealedSecret {
    SealedSecret { key_id: uuid::Uuid::nil(), nonce: "n".into(), ciphertext: "c".into() }
}

fn initiated(project_id: ProjectId, expires_at: i64) -> Recorded<ConnectedAccountEvent> {
    Recorded(ConnectedAccountEvent::ConnectedAccountInitiated(ConnectedAccountInitiated {
        account: account(project_id),
        link_token_sha256: "ab".repeat(32),
        callback_url: None,
        expires_at,
    }))
}

fn activated(project_id: ProjectId, state: Option<&str>) -> Recorded<ConnectedAccountEvent> {
    Recorded(ConnectedAccountEvent::ConnectedAccountActivated(ConnectedAccountActivated {
        account: account(project_id),
        credential: sealed(),
        oauth_state: state.map(str::to_owned),
    }))
}

/// Aliases held by other accounts, as the store's unique table would answer.
struct Held(Vec<(&'static str, &'static str)>);

#[async_trait::async_trait]
impl AliasDirectory for Held {
    async fn alias_holder(&self, _: ProjectId, _: &str, _: &str, alias: &str) -> Result<Option<String>, LookupFailed> {
        Ok(self.0.iter().find(|(a, _)| *a == alias).map(|(_, holder)| (*holder).to_owned()))
    }
}

fn test() -> TestFramework<ConnectedAccount> {
    test_holding(vec![])
}

fn test_holding(held: Vec<(&'static str, &'static str)>) -> TestFramework<ConnectedAccount> {
    TestFramework::with(Arc::new(Held(held)) as Arc<dyn AliasDirectory>)
}

#[tokio::test]
async fn an_oauth_connection_completes_before_it_expires_and_only_once() {
    let project = ProjectId::random();
    let complete = |now| ConnectedAccountCommand::CompleteOAuth {
        project_id: project,
        credential: sealed(),
        oauth_state: "s1".into(),
        now,
    };
    test()
        .given(vec![initiated(project, 1_000)])
        .when_async(complete(999))
        .await
        .then_expect_events(vec![activated(project, Some("s1"))]);
    test()
        .given(vec![initiated(project, 1_000)])
        .when_async(complete(1_001))
        .await
        .then_expect_error(ConnectedAccountError::Expired);
    test()
        .given(vec![initiated(project, 1_000), activated(project, Some("s1"))])
        .when_async(complete(999))
        .await
        .then_expect_error(ConnectedAccountError::StateAlreadyUsed);
}

#[tokio::test]
async fn a_pending_connection_expires_on_time_and_not_before() {
    let project = ProjectId::random();
    test()
        .given(vec![initiated(project, 1_000)])
        .when_async(ConnectedAccountCommand::Expire { now: 999, lifetime_secs: 600 })
        .await
        .then_expect_events(vec![]);
    test()
        .given(vec![initiated(project, 1_000)])
        .when_async(ConnectedAccountCommand::Expire { now: 1_000, lifetime_secs: 600 })
        .await
        .then_expect_events(vec![Recorded(ConnectedAccountEvent::ConnectedAccountExpired(ConnectedAccountExpired {
            account: account(project),
            reason: reason::expired(600),
        }))]);
    test()
        .given(vec![initiated(project, 1_000), activated(project, Some("s"))])
        .when_async(ConnectedAccountCommand::Expire { now: 5_000, lifetime_secs: 600 })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn only_active_or_inactive_accounts_can_be_toggled_or_revoked() {
    let project = ProjectId::random();
    test()
        .given(vec![initiated(project, 1_000)])
        .when_async(ConnectedAccountCommand::Revoke { project_id: project })
        .await
        .then_expect_error(ConnectedAccountError::NotRevocable("INITIATED"));
    test()
        .given(vec![initiated(project, 1_000)])
        .when_async(ConnectedAccountCommand::SetEnabled { project_id: project, enabled: false })
        .await
        .then_expect_error(ConnectedAccountError::NotChangeable("INITIATED"));
    let revoked = Recorded(ConnectedAccountEvent::ConnectedAccountRevoked(ConnectedAccountRevoked {
        account: account(project),
        reason: reason::REVOKED.into(),
    }));
    test()
        .given(vec![activated(project, None)])
        .when_async(ConnectedAccountCommand::Revoke { project_id: project })
        .await
        .then_expect_events(vec![revoked.clone()]);
    test()
        .given(vec![activated(project, None), revoked.clone()])
        .when_async(ConnectedAccountCommand::Revoke { project_id: project })
        .await
        .then_expect_events(vec![]);
    test()
        .given(vec![activated(project, None), revoked])
        .when_async(ConnectedAccountCommand::SetEnabled { project_id: project, enabled: true })
        .await
        .then_expect_error(ConnectedAccountError::NotChangeable("REVOKED"));
}

#[tokio::test]
async fn a_deleted_or_foreign_account_is_not_found() {
    let project = ProjectId::random();
    let deleted =
        Recorded(ConnectedAccountEvent::ConnectedAccountDeleted(ConnectedAccountDeleted { account: account(project) }));
    test()
        .given(vec![activated(project, None), deleted])
        .when_async(ConnectedAccountCommand::SetEnabled { project_id: project, enabled: false })
        .await
        .then_expect_error(ConnectedAccountError::NotFound);
    test()
        .given(vec![activated(project, None)])
        .when_async(ConnectedAccountCommand::Delete { project_id: ProjectId::random() })
        .await
        .then_expect_error(ConnectedAccountError::NotFound);
}

#[test]
fn direct_connections_need_their_scheme_credential() {
    let val = |json: serde_json::Value| json.as_object().cloned().unwrap();
    assert_eq!(missing_credential_fields("API_KEY", &val(serde_json::json!({"status": "ACTIVE"}))), ["api_key"]);
    assert!(missing_credential_fields("API_KEY", &val(serde_json::json!({"generic_api_key": "k"}))).is_empty());
    assert_eq!(missing_credential_fields("BEARER_TOKEN", &val(serde_json::json!({"token": " "}))), ["token"]);
    assert_eq!(missing_credential_fields("BASIC", &val(serde_json::json!({"password": "p"}))), ["username"]);
    assert!(missing_credential_fields("NO_AUTH", &val(serde_json::json!({}))).is_empty());
}

#[test]
fn only_an_active_account_gives_its_credential_and_only_in_its_project() {
    let project = ProjectId::random();
    let fold = |events: Vec<Recorded<ConnectedAccountEvent>>| {
        let mut account = ConnectedAccount::default();
        events.into_iter().for_each(|e| account.apply(e));
        account
    };
    let revoked = Recorded(ConnectedAccountEvent::ConnectedAccountRevoked(ConnectedAccountRevoked {
        account: account(project),
        reason: reason::REVOKED.into(),
    }));
    let active = fold(vec![activated(project, None)]);
    assert_eq!(active.active_credential_in(project).map(|(_, sealed)| sealed.clone()), Some(sealed()));
    assert!(active.active_credential_in(ProjectId::random()).is_none(), "another project's");
    assert!(fold(vec![initiated(project, 1_000)]).active_credential_in(project).is_none(), "pending");
    assert!(fold(vec![activated(project, None), revoked]).active_credential_in(project).is_none(), "revoked");
}

fn resealed(ciphertext: &str) -> SealedSecret {
    SealedSecret { key_id: uuid::Uuid::nil(), nonce: "n2".into(), ciphertext: ciphertext.into() }
}

fn refreshed(project_id: ProjectId, ciphertext: &str) -> Recorded<ConnectedAccountEvent> {
    Recorded(ConnectedAccountEvent::ConnectedAccountRefreshed(ConnectedAccountRefreshed {
        account: account(project_id),
        credential: resealed(ciphertext),
    }))
}

#[tokio::test]
async fn an_active_account_is_refreshed_once_and_a_loser_of_the_race_is_refused() {
    let project = ProjectId::random();
    let refresh = |replaces: SealedSecret, new: &str| ConnectedAccountCommand::Refresh {
        project_id: project,
        replaces,
        refreshed: resealed(new),
    };
    test()
        .given(vec![initiated(project, 1_000), activated(project, Some("s1"))])
        .when_async(refresh(sealed(), "winner"))
        .await
        .then_expect_events(vec![refreshed(project, "winner")]);
    test()
        .given(vec![initiated(project, 1_000), activated(project, Some("s1")), refreshed(project, "winner")])
        .when_async(refresh(sealed(), "loser"))
        .await
        .then_expect_error(ConnectedAccountError::CredentialChanged);
    let revoked = Recorded(ConnectedAccountEvent::ConnectedAccountRevoked(ConnectedAccountRevoked {
        account: account(project),
        reason: reason::REVOKED.into(),
    }));
    test()
        .given(vec![initiated(project, 1_000), activated(project, Some("s1")), revoked])
        .when_async(refresh(sealed(), "after revoke"))
        .await
        .then_expect_error(ConnectedAccountError::CredentialChanged);
}

#[tokio::test]
async fn a_failed_refresh_expires_an_active_account_with_the_reason() {
    let project = ProjectId::random();
    let why = format!("{}: invalid_grant", reason::TOKEN_REFRESH);
    let expired = Recorded(ConnectedAccountEvent::ConnectedAccountExpired(ConnectedAccountExpired {
        account: account(project),
        reason: why.clone(),
    }));
    test()
        .given(vec![initiated(project, 1_000), activated(project, Some("s1"))])
        .when_async(ConnectedAccountCommand::ExpireCredential {
            project_id: project,
            replaces: sealed(),
            reason: why.clone(),
        })
        .await
        .then_expect_events(vec![expired.clone()]);

    let mut state = ConnectedAccount::default();
    for event in [initiated(project, 1_000), activated(project, Some("s1")), expired] {
        state.apply(event);
    }
    assert_eq!(state.status_in(project), Some(Status::Expired));
    assert_eq!(state.state_in(project).unwrap().status_reason.as_deref(), Some(why.as_str()));
    assert!(state.active_credential_in(project).is_none(), "an EXPIRED account's credential is not used");
}

#[test]
fn the_expiry_reason_names_the_configured_lifetime() {
    assert_eq!(reason::expired(600), "Connection initiation did not complete within 10 minutes");
    assert_eq!(reason::expired(90), "Connection initiation did not complete within 90 seconds");
    assert_eq!(reason::expired(60), "Connection initiation did not complete within 1 minute");
    assert_eq!(reason::expired(7200), "Connection initiation did not complete within 2 hours");
    assert_eq!(reason::expired(1), "Connection initiation did not complete within 1 second");
}

fn aliased(project_id: ProjectId, alias: Option<&str>) -> Recorded<ConnectedAccountEvent> {
    Recorded(ConnectedAccountEvent::ConnectedAccountAliasChanged(ConnectedAccountAliasChanged {
        account: account(project_id),
        alias: alias.map(str::to_owned),
    }))
}

fn key_account(project_id: ProjectId) -> AccountRef {
    AccountRef { auth_scheme: "API_KEY".into(), ..account(project_id) }
}

fn key_activated(project_id: ProjectId) -> Recorded<ConnectedAccountEvent> {
    Recorded(ConnectedAccountEvent::ConnectedAccountActivated(ConnectedAccountActivated {
        account: key_account(project_id),
        credential: sealed(),
        oauth_state: None,
    }))
}

fn credential_update(scheme: &str, replaces: SealedSecret) -> CredentialUpdate {
    CredentialUpdate {
        auth_scheme: scheme.into(),
        replaces,
        updated: resealed("c2"),
        set_fields: vec!["api_key".into()],
        removed_fields: vec!["api_key_prefix".into()],
    }
}

fn update(
    project_id: ProjectId,
    alias: Patch<String>,
    credential: Option<CredentialUpdate>,
) -> ConnectedAccountCommand {
    ConnectedAccountCommand::Update { project_id, alias, credential }
}

#[tokio::test]
async fn an_alias_given_at_creation_is_recorded_with_it_unless_another_account_holds_it() {
    let project = ProjectId::random();
    let connect = ConnectedAccountCommand::Connect {
        account: account(project),
        credential: sealed(),
        alias: Some("work".into()),
    };
    test()
        .given_no_previous_events()
        .when_async(connect.clone())
        .await
        .then_expect_events(vec![activated(project, None), aliased(project, Some("work"))]);
    test_holding(vec![("work", "ca_otheraccount")])
        .given_no_previous_events()
        .when_async(connect)
        .await
        .then_expect_error(ConnectedAccountError::AliasTaken("work".into()));
    let initiate = ConnectedAccountCommand::Initiate {
        account: account(project),
        link_token_sha256: "ab".repeat(32),
        callback_url: None,
        expires_at: 1_000,
        alias: Some("home".into()),
    };
    test()
        .given_no_previous_events()
        .when_async(initiate.clone())
        .await
        .then_expect_events(vec![initiated(project, 1_000), aliased(project, Some("home"))]);
    test_holding(vec![("home", "ca_otheraccount")])
        .given_no_previous_events()
        .when_async(initiate)
        .await
        .then_expect_error(ConnectedAccountError::AliasTaken("home".into()));
}

#[tokio::test]
async fn an_update_sets_changes_and_clears_the_alias_and_records_nothing_that_changes_nothing() {
    let project = ProjectId::random();
    test()
        .given(vec![activated(project, None)])
        .when_async(update(project, Patch::Set("work".into()), None))
        .await
        .then_expect_events(vec![aliased(project, Some("work"))]);
    // Its own alias is no conflict, and setting it again records nothing.
    test_holding(vec![("work", "ca_123456789012")])
        .given(vec![activated(project, None), aliased(project, Some("work"))])
        .when_async(update(project, Patch::Set("work".into()), None))
        .await
        .then_expect_events(vec![]);
    test_holding(vec![("home", "ca_otheraccount")])
        .given(vec![activated(project, None), aliased(project, Some("work"))])
        .when_async(update(project, Patch::Set("home".into()), None))
        .await
        .then_expect_error(ConnectedAccountError::AliasTaken("home".into()));
    test()
        .given(vec![activated(project, None), aliased(project, Some("work"))])
        .when_async(update(project, Patch::Clear, None))
        .await
        .then_expect_events(vec![aliased(project, None)]);
    test()
        .given(vec![activated(project, None)])
        .when_async(update(project, Patch::Clear, None))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn an_update_of_another_projects_or_a_deleted_account_is_not_found() {
    let project = ProjectId::random();
    test()
        .given(vec![activated(project, None)])
        .when_async(update(ProjectId::random(), Patch::Set("work".into()), None))
        .await
        .then_expect_error(ConnectedAccountError::NotFound);
    let deleted =
        Recorded(ConnectedAccountEvent::ConnectedAccountDeleted(ConnectedAccountDeleted { account: account(project) }));
    test()
        .given(vec![activated(project, None), deleted])
        .when_async(update(project, Patch::Clear, None))
        .await
        .then_expect_error(ConnectedAccountError::NotFound);
}

#[tokio::test]
async fn a_credential_update_replaces_the_credential_it_was_merged_from_and_keeps_the_status() {
    let project = ProjectId::random();
    let updated =
        Recorded(ConnectedAccountEvent::ConnectedAccountCredentialUpdated(ConnectedAccountCredentialUpdated {
            account: key_account(project),
            credential: resealed("c2"),
            set_fields: vec!["api_key".into()],
            removed_fields: vec!["api_key_prefix".into()],
        }));
    test()
        .given(vec![key_activated(project)])
        .when_async(update(project, Patch::Keep, Some(credential_update("API_KEY", sealed()))))
        .await
        .then_expect_events(vec![updated.clone()]);
    // Merged from a credential it no longer holds: a concurrent update won.
    test()
        .given(vec![key_activated(project), updated.clone()])
        .when_async(update(project, Patch::Keep, Some(credential_update("API_KEY", sealed()))))
        .await
        .then_expect_error(ConnectedAccountError::CredentialChanged);
    test()
        .given(vec![key_activated(project)])
        .when_async(update(project, Patch::Keep, Some(credential_update("BEARER_TOKEN", sealed()))))
        .await
        .then_expect_error(ConnectedAccountError::SchemeMismatch {
            expected: "API_KEY".into(),
            given: "BEARER_TOKEN".into(),
        });
    let revoked = Recorded(ConnectedAccountEvent::ConnectedAccountRevoked(ConnectedAccountRevoked {
        account: key_account(project),
        reason: reason::REVOKED.into(),
    }));
    test()
        .given(vec![key_activated(project), revoked])
        .when_async(update(project, Patch::Keep, Some(credential_update("API_KEY", sealed()))))
        .await
        .then_expect_error(ConnectedAccountError::CredentialNotUpdatable("REVOKED"));
    // The status stays: an INACTIVE account updated is still INACTIVE.
    let mut account = ConnectedAccount::default();
    let disabled = Recorded(ConnectedAccountEvent::ConnectedAccountStatusChanged(ConnectedAccountStatusChanged {
        account: key_account(project),
        enabled: false,
        reason: reason::BY_USER.into(),
    }));
    for event in [key_activated(project), disabled, updated] {
        account.apply(event);
    }
    assert_eq!(account.status_in(project), Some(Status::Inactive));
    assert_eq!(account.credential_in(project).map(|(_, sealed)| sealed.clone()), Some(resealed("c2")));
}

#[tokio::test]
async fn an_update_of_credential_and_alias_records_both_or_neither() {
    let project = ProjectId::random();
    test_holding(vec![("home", "ca_otheraccount")])
        .given(vec![key_activated(project)])
        .when_async(update(project, Patch::Set("home".into()), Some(credential_update("API_KEY", sealed()))))
        .await
        .then_expect_error(ConnectedAccountError::AliasTaken("home".into()));
}
