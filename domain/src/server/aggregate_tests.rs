use super::*;
use crate::Patch;
use crate::server::{AbsoluteUrl, FieldError, LookupFailed, ServerField, ServerPatch, ServerSpec, Text, TimeoutMs};
use cqrs_es::test::TestFramework;
use events::SealedSecret;
use events::server::{ConnectionType, Transport};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Names held by other servers, as the real directory would answer.
#[derive(Default)]
struct FakeDirectory(Mutex<HashMap<(ProjectId, String), ServerId>>);

#[async_trait::async_trait]
impl ServerDirectory for FakeDirectory {
    async fn server_named(&self, project: ProjectId, name: &ServerName) -> Result<Option<ServerId>, LookupFailed> {
        Ok(self.0.lock().unwrap().get(&(project, name.as_str().to_lowercase())).copied())
    }

    /// Every auth config id starting with `ac_known` exists.
    async fn unknown_auth_configs(&self, _: ProjectId, ids: &[String]) -> Result<Vec<String>, LookupFailed> {
        Ok(ids.iter().filter(|id| !id.starts_with("ac_known")).cloned().collect())
    }
}

fn directory_with(entries: &[(ProjectId, &str, ServerId)]) -> Arc<dyn ServerDirectory> {
    let dir = FakeDirectory::default();
    for (p, n, s) in entries {
        dir.0.lock().unwrap().insert((*p, n.to_lowercase()), *s);
    }
    Arc::new(dir)
}

fn sealed(tag: &str) -> SealedSecret {
    SealedSecret { key_id: uuid_nil(), nonce: tag.into(), ciphertext: tag.into() }
}

fn uuid_nil() -> ::uuid::Uuid {
    ::uuid::Uuid::nil()
}

fn http_spec(name: &str) -> ServerSpec<SealedSecret> {
    ServerSpec {
        name: ServerName::parse(name).unwrap(),
        description: None,
        transport: Transport::Http,
        url: Some(AbsoluteUrl::parse(ServerField::Url, "https://mcp.example.com").unwrap()),
        connection: None,
        command: None,
        args: None,
        env: BTreeMap::new(),
        custom_headers: vec![],
        oauth_client_id: None,
        oauth_client_secret: Some(sealed("s")),
        oauth_scope: None,
        proxy_url: None,
        proxy_auth_token: None,
        proxy_auth_header: None,
        request_timeout: None,
        max_total_timeout: None,
        composio: Default::default(),
    }
}

fn registered(project_id: ProjectId, server_id: ServerId, name: &str) -> Recorded<ServerEvent> {
    let config = config_from(http_spec(name)).unwrap();
    Recorded(ServerEvent::ServerRegistered(ServerRegistered { project_id, server_id, config }))
}

fn test(directory: Arc<dyn ServerDirectory>) -> TestFramework<Server> {
    TestFramework::with(directory)
}

#[tokio::test]
async fn registration_applies_the_documented_defaults() {
    let (project_id, server_id) = (ProjectId::random(), ServerId::random());
    let events = test(directory_with(&[]))
        .given_no_previous_events()
        .when_async(ServerCommand::Register { project_id, server_id, spec: http_spec("Weather") })
        .await
        .inspect_result()
        .unwrap();
    let [Recorded(ServerEvent::ServerRegistered(e))] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(e.config.connection, ConnectionType::Proxy);
    assert_eq!(e.config.proxy_auth_header, "Authorization");
    assert_eq!((e.config.request_timeout_ms, e.config.max_total_timeout_ms), (30_000, 60_000));
    assert_eq!(e.config.oauth_client_secret, Some(sealed("s")));
}

#[tokio::test]
async fn a_name_held_by_another_server_of_the_project_is_refused() {
    let project_id = ProjectId::random();
    test(directory_with(&[(project_id, "weather", ServerId::random())]))
        .given_no_previous_events()
        .when_async(ServerCommand::Register { project_id, server_id: ServerId::random(), spec: http_spec("WEATHER") })
        .await
        .then_expect_error(ServerError::NameTaken("WEATHER".into()));
}

#[tokio::test]
async fn the_same_name_in_another_project_is_free() {
    let (project_id, server_id) = (ProjectId::random(), ServerId::random());
    test(directory_with(&[(ProjectId::random(), "weather", ServerId::random())]))
        .given_no_previous_events()
        .when_async(ServerCommand::Register { project_id, server_id, spec: http_spec("weather") })
        .await
        .then_expect_events(vec![registered(project_id, server_id, "weather")]);
}

#[tokio::test]
async fn http_and_sse_need_a_url_and_stdio_needs_a_command() {
    let project_id = ProjectId::random();
    let mut spec = http_spec("No url");
    spec.url = None;
    test(directory_with(&[]))
        .given_no_previous_events()
        .when_async(ServerCommand::Register { project_id, server_id: ServerId::random(), spec })
        .await
        .then_expect_error(ServerError::Invalid(FieldError::new(
            ServerField::Url,
            "is required when the transport is http",
        )));
    let mut spec = http_spec("No command");
    spec.transport = Transport::Stdio;
    test(directory_with(&[]))
        .given_no_previous_events()
        .when_async(ServerCommand::Register { project_id, server_id: ServerId::random(), spec })
        .await
        .then_expect_error(ServerError::Invalid(FieldError::new(
            ServerField::Command,
            "is required when the transport is stdio",
        )));
}

#[tokio::test]
async fn the_total_timeout_may_not_be_shorter_than_a_request() {
    let mut spec = http_spec("Timeouts");
    spec.request_timeout = Some(TimeoutMs::parse(ServerField::RequestTimeout, 5_000).unwrap());
    spec.max_total_timeout = Some(TimeoutMs::parse(ServerField::MaxTotalTimeout, 4_000).unwrap());
    let result = test(directory_with(&[]))
        .given_no_previous_events()
        .when_async(ServerCommand::Register { project_id: ProjectId::random(), server_id: ServerId::random(), spec })
        .await
        .inspect_result();
    assert!(
        matches!(result, Err(ServerError::Invalid(FieldError { field: ServerField::MaxTotalTimeout, .. }))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_long_request_timeout_alone_raises_the_default_total() {
    let mut spec = http_spec("Slow");
    spec.request_timeout = Some(TimeoutMs::parse(ServerField::RequestTimeout, 90_000).unwrap());
    let config = config_from(spec).unwrap();
    assert_eq!(config.max_total_timeout_ms, 90_000);
}

#[tokio::test]
async fn an_update_records_the_whole_config_and_what_changed() {
    let (project_id, server_id) = (ProjectId::random(), ServerId::random());
    let patch = ServerPatch {
        description: Patch::Set(Text::parse(ServerField::Description, "prod").unwrap()),
        oauth_client_secret: Patch::Clear,
        ..ServerPatch::default()
    };
    let events = test(directory_with(&[]))
        .given(vec![registered(project_id, server_id, "Weather")])
        .when_async(ServerCommand::Update { project_id, patch })
        .await
        .inspect_result()
        .unwrap();
    let [Recorded(ServerEvent::ServerUpdated(e))] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(e.changed, vec!["description", "oauth_client_secret"]);
    assert_eq!(e.config.description.as_deref(), Some("prod"));
    assert_eq!(e.config.oauth_client_secret, None);
    assert_eq!(e.config.name, "Weather");
}

#[tokio::test]
async fn an_update_that_changes_nothing_emits_nothing() {
    let (project_id, server_id) = (ProjectId::random(), ServerId::random());
    test(directory_with(&[(project_id, "weather", server_id)]))
        .given(vec![registered(project_id, server_id, "Weather")])
        .when_async(ServerCommand::Update {
            project_id,
            patch: ServerPatch { name: Some(ServerName::parse("Weather").unwrap()), ..ServerPatch::default() },
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn an_update_is_checked_against_the_resulting_config() {
    let (project_id, server_id) = (ProjectId::random(), ServerId::random());
    test(directory_with(&[]))
        .given(vec![registered(project_id, server_id, "Weather")])
        .when_async(ServerCommand::Update {
            project_id,
            patch: ServerPatch { url: Patch::Clear, ..ServerPatch::default() },
        })
        .await
        .then_expect_error(ServerError::Invalid(FieldError::new(
            ServerField::Url,
            "is required when the transport is http",
        )));
}

#[tokio::test]
async fn renaming_onto_a_taken_name_is_refused() {
    let (project_id, server_id) = (ProjectId::random(), ServerId::random());
    test(directory_with(&[(project_id, "other", ServerId::random())]))
        .given(vec![registered(project_id, server_id, "Weather")])
        .when_async(ServerCommand::Update {
            project_id,
            patch: ServerPatch { name: Some(ServerName::parse("Other").unwrap()), ..ServerPatch::default() },
        })
        .await
        .then_expect_error(ServerError::NameTaken("Other".into()));
}

#[tokio::test]
async fn another_projects_server_is_not_found_for_every_command() {
    let (owner, stranger, server_id) = (ProjectId::random(), ProjectId::random(), ServerId::random());
    for command in [
        ServerCommand::Update { project_id: stranger, patch: ServerPatch::default() },
        ServerCommand::Delete { project_id: stranger },
    ] {
        test(directory_with(&[]))
            .given(vec![registered(owner, server_id, "Weather")])
            .when_async(command)
            .await
            .then_expect_error(ServerError::NotFound);
    }
}

#[tokio::test]
async fn a_deleted_server_is_gone_for_updates_and_deletes() {
    let (project_id, server_id) = (ProjectId::random(), ServerId::random());
    let deleted = Recorded(ServerEvent::ServerDeleted(ServerDeleted { project_id, server_id }));
    test(directory_with(&[]))
        .given(vec![registered(project_id, server_id, "Weather")])
        .when_async(ServerCommand::Delete { project_id })
        .await
        .then_expect_events(vec![deleted.clone()]);
    for command in
        [ServerCommand::Update { project_id, patch: ServerPatch::default() }, ServerCommand::Delete { project_id }]
    {
        test(directory_with(&[]))
            .given(vec![registered(project_id, server_id, "Weather"), deleted.clone()])
            .when_async(command)
            .await
            .then_expect_error(ServerError::NotFound);
    }
}

#[tokio::test]
async fn a_failing_directory_decides_nothing() {
    struct Down;
    #[async_trait::async_trait]
    impl ServerDirectory for Down {
        async fn server_named(&self, _: ProjectId, _: &ServerName) -> Result<Option<ServerId>, LookupFailed> {
            Err(LookupFailed("connection refused".into()))
        }

        async fn unknown_auth_configs(&self, _: ProjectId, _: &[String]) -> Result<Vec<String>, LookupFailed> {
            Err(LookupFailed("connection refused".into()))
        }
    }
    test(Arc::new(Down))
        .given_no_previous_events()
        .when_async(ServerCommand::Register {
            project_id: ProjectId::random(),
            server_id: ServerId::random(),
            spec: http_spec("x"),
        })
        .await
        .then_expect_error(ServerError::Lookup(LookupFailed("connection refused".into())));
}

#[tokio::test]
async fn a_server_may_only_require_auth_configs_of_its_project() {
    let mut spec = http_spec("Composio");
    spec.composio.auth_config_ids = vec!["ac_known_1".into(), "ac_missing_1".into()];
    test(directory_with(&[]))
        .given_no_previous_events()
        .when_async(ServerCommand::Register { project_id: ProjectId::random(), server_id: ServerId::random(), spec })
        .await
        .then_expect_error(ServerError::UnknownAuthConfigs(vec!["ac_missing_1".into()]));
}
