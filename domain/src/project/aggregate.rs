use super::{ProjectCommand, ProjectError};
use crate::Recorded;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use events::project::{ApiKeyIssued, ApiKeyRevoked, ProjectCreated};
use events::{ApiKeyId, ProjectEvent, ProjectId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A project and the state of its keys, folded from its events.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Project {
    id: Option<ProjectId>,
    /// Every key ever issued, with whether it is revoked.
    keys: BTreeMap<ApiKeyId, bool>,
}

impl Aggregate for Project {
    const TYPE: &'static str = <ProjectEvent as events::Event>::AGGREGATE_TYPE;
    type Command = ProjectCommand;
    type Event = Recorded<ProjectEvent>;
    type Error = ProjectError;
    type Services = ();

    async fn handle(&mut self, command: ProjectCommand, _: &(), sink: &EventSink<Self>) -> Result<(), ProjectError> {
        let event = match command {
            ProjectCommand::Create { project_id, name } => {
                if self.id.is_some() {
                    return Err(ProjectError::AlreadyExists);
                }
                ProjectEvent::ProjectCreated(ProjectCreated { project_id, name: name.as_str().to_owned() })
            }
            ProjectCommand::IssueApiKey { key_id, name, digest } => {
                let project_id = self.id.ok_or(ProjectError::NotFound)?;
                if self.keys.contains_key(&key_id) {
                    return Err(ProjectError::KeyAlreadyIssued(key_id));
                }
                ProjectEvent::ApiKeyIssued(ApiKeyIssued {
                    project_id,
                    key_id,
                    name,
                    key_sha256: digest.as_str().to_owned(),
                })
            }
            ProjectCommand::RevokeApiKey { key_id } => {
                let project_id = self.id.ok_or(ProjectError::NotFound)?;
                match self.keys.get(&key_id) {
                    None => return Err(ProjectError::KeyNotFound(key_id)),
                    // Revoking twice changes nothing, and says so by emitting nothing.
                    Some(true) => return Ok(()),
                    Some(false) => ProjectEvent::ApiKeyRevoked(ApiKeyRevoked { project_id, key_id }),
                }
            }
        };
        sink.write(Recorded(event), self).await;
        Ok(())
    }

    fn apply(&mut self, Recorded(event): Self::Event) {
        match event {
            ProjectEvent::ProjectCreated(e) => self.id = Some(e.project_id),
            ProjectEvent::ApiKeyIssued(e) => {
                self.keys.insert(e.key_id, false);
            }
            ProjectEvent::ApiKeyRevoked(e) => {
                self.keys.insert(e.key_id, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{KeyDigest, ProjectName};
    use cqrs_es::test::TestFramework;

    type ProjectTest = TestFramework<Project>;

    fn created(project_id: ProjectId) -> Recorded<ProjectEvent> {
        Recorded(ProjectEvent::ProjectCreated(ProjectCreated { project_id, name: "Acme".into() }))
    }

    fn digest() -> KeyDigest {
        KeyDigest::parse(&"ab".repeat(32)).unwrap()
    }

    #[tokio::test]
    async fn a_new_project_is_created_with_its_trimmed_name() {
        let project_id = ProjectId::random();
        ProjectTest::with(())
            .given_no_previous_events()
            .when_async(ProjectCommand::Create { project_id, name: ProjectName::parse("  Acme ").unwrap() })
            .await
            .then_expect_events(vec![created(project_id)]);
    }

    #[tokio::test]
    async fn a_project_cannot_be_created_twice() {
        let project_id = ProjectId::random();
        ProjectTest::with(())
            .given(vec![created(project_id)])
            .when_async(ProjectCommand::Create { project_id, name: ProjectName::parse("Again").unwrap() })
            .await
            .then_expect_error(ProjectError::AlreadyExists);
    }

    #[tokio::test]
    async fn a_key_is_issued_only_for_an_existing_project() {
        let key_id = ApiKeyId::random();
        ProjectTest::with(())
            .given_no_previous_events()
            .when_async(ProjectCommand::IssueApiKey { key_id, name: None, digest: digest() })
            .await
            .then_expect_error(ProjectError::NotFound);
    }

    #[tokio::test]
    async fn an_issued_key_records_only_its_digest() {
        let (project_id, key_id) = (ProjectId::random(), ApiKeyId::random());
        ProjectTest::with(())
            .given(vec![created(project_id)])
            .when_async(ProjectCommand::IssueApiKey { key_id, name: Some("ci".into()), digest: digest() })
            .await
            .then_expect_events(vec![Recorded(ProjectEvent::ApiKeyIssued(ApiKeyIssued {
                project_id,
                key_id,
                name: Some("ci".into()),
                key_sha256: "ab".repeat(32),
            }))]);
    }

    #[tokio::test]
    async fn revoking_twice_emits_one_event() {
        let (project_id, key_id) = (ProjectId::random(), ApiKeyId::random());
        let issued = Recorded(ProjectEvent::ApiKeyIssued(ApiKeyIssued {
            project_id,
            key_id,
            name: None,
            key_sha256: "ab".repeat(32),
        }));
        let revoked = Recorded(ProjectEvent::ApiKeyRevoked(ApiKeyRevoked { project_id, key_id }));
        ProjectTest::with(())
            .given(vec![created(project_id), issued.clone()])
            .when_async(ProjectCommand::RevokeApiKey { key_id })
            .await
            .then_expect_events(vec![revoked.clone()]);
        ProjectTest::with(())
            .given(vec![created(project_id), issued, revoked])
            .when_async(ProjectCommand::RevokeApiKey { key_id })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn an_unknown_key_cannot_be_revoked() {
        let (project_id, key_id) = (ProjectId::random(), ApiKeyId::random());
        ProjectTest::with(())
            .given(vec![created(project_id)])
            .when_async(ProjectCommand::RevokeApiKey { key_id })
            .await
            .then_expect_error(ProjectError::KeyNotFound(key_id));
    }

    #[test]
    fn names_and_digests_are_parsed_at_the_edge() {
        assert!(ProjectName::parse("   ").is_err());
        assert!(ProjectName::parse(&"x".repeat(201)).is_err());
        assert!(ProjectName::parse("a\u{7}b").is_err());
        assert!(KeyDigest::parse("AB").is_err());
        assert!(KeyDigest::parse(&"AB".repeat(32)).is_err());
    }
}
