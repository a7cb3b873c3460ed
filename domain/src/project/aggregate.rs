use super::{ProjectCommand, ProjectError, RedirectHosts, RedirectHostsChange};
use crate::Recorded;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use events::project::{ApiKeyIssued, ApiKeyRevoked, KeyRateLimit, ProjectCreated, RateLimitSet, RedirectHostsSet};
use events::{ApiKeyId, ProjectEvent, ProjectId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A project and the state of its keys, folded from its events.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Project {
    id: Option<ProjectId>,
    /// Every key ever issued, with whether it is revoked.
    keys: BTreeMap<ApiKeyId, bool>,
    /// The redirect allow-list, as recorded (canonical entries).
    #[serde(default)]
    redirect_hosts: Vec<String>,
    /// The project's own rate per key, if it has one.
    #[serde(default)]
    rate_limit: Option<KeyRateLimit>,
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
            ProjectCommand::ChangeRedirectHosts(change) => {
                let project_id = self.id.ok_or(ProjectError::NotFound)?;
                let current = RedirectHosts::recorded(&self.redirect_hosts);
                let hosts = match change {
                    RedirectHostsChange::Replace(hosts) => hosts,
                    RedirectHostsChange::Edit { add, remove } => current.edited(&add, &remove),
                };
                if hosts.len() > RedirectHosts::MAX_ENTRIES {
                    return Err(ProjectError::TooManyRedirectHosts {
                        given: hosts.len(),
                        max: RedirectHosts::MAX_ENTRIES,
                    });
                }
                // Setting the list it already has changes nothing, and says so by emitting nothing.
                if hosts == current {
                    return Ok(());
                }
                ProjectEvent::RedirectHostsSet(RedirectHostsSet { project_id, hosts: hosts.entries() })
            }
            ProjectCommand::SetRateLimit(limit) => {
                let project_id = self.id.ok_or(ProjectError::NotFound)?;
                let limit = limit.map(|l| l.recorded());
                // Setting the rate it already has changes nothing, and says so by emitting nothing.
                if limit == self.rate_limit {
                    return Ok(());
                }
                ProjectEvent::RateLimitSet(RateLimitSet { project_id, limit })
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
            ProjectEvent::RedirectHostsSet(e) => self.redirect_hosts = e.hosts,
            ProjectEvent::RateLimitSet(e) => self.rate_limit = e.limit,
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

    fn hosts(entries: &[&str]) -> RedirectHosts {
        RedirectHosts::parse(entries).unwrap()
    }

    fn hosts_set(project_id: ProjectId, entries: &[&str]) -> Recorded<ProjectEvent> {
        let hosts = entries.iter().map(|e| e.to_string()).collect();
        Recorded(ProjectEvent::RedirectHostsSet(RedirectHostsSet { project_id, hosts }))
    }

    #[tokio::test]
    async fn redirect_hosts_are_recorded_whole_and_edits_apply_to_the_current_list() {
        let project_id = ProjectId::random();
        ProjectTest::with(())
            .given(vec![created(project_id)])
            .when_async(ProjectCommand::ChangeRedirectHosts(RedirectHostsChange::Replace(hosts(&[
                "B.example.com",
                "a.example.com",
            ]))))
            .await
            .then_expect_events(vec![hosts_set(project_id, &["a.example.com", "b.example.com"])]);
        let edit = RedirectHostsChange::Edit { add: hosts(&["c.example.com"]), remove: hosts(&["a.example.com"]) };
        ProjectTest::with(())
            .given(vec![created(project_id), hosts_set(project_id, &["a.example.com", "b.example.com"])])
            .when_async(ProjectCommand::ChangeRedirectHosts(edit))
            .await
            .then_expect_events(vec![hosts_set(project_id, &["b.example.com", "c.example.com"])]);
    }

    #[tokio::test]
    async fn setting_the_same_redirect_hosts_emits_nothing() {
        let project_id = ProjectId::random();
        let edit = RedirectHostsChange::Edit { add: hosts(&["a.example.com"]), remove: RedirectHosts::default() };
        ProjectTest::with(())
            .given(vec![created(project_id), hosts_set(project_id, &["a.example.com"])])
            .when_async(ProjectCommand::ChangeRedirectHosts(edit))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn redirect_hosts_need_a_project_and_a_bounded_list() {
        ProjectTest::with(())
            .given_no_previous_events()
            .when_async(ProjectCommand::ChangeRedirectHosts(RedirectHostsChange::Replace(hosts(&["a.example.com"]))))
            .await
            .then_expect_error(ProjectError::NotFound);
        let many: Vec<String> = (0..=RedirectHosts::MAX_ENTRIES).map(|i| format!("h{i}.example.com")).collect();
        let project_id = ProjectId::random();
        ProjectTest::with(())
            .given(vec![created(project_id)])
            .when_async(ProjectCommand::ChangeRedirectHosts(RedirectHostsChange::Replace(
                RedirectHosts::parse(&many).unwrap(),
            )))
            .await
            .then_expect_error(ProjectError::TooManyRedirectHosts { given: 101, max: 100 });
    }

    #[test]
    fn names_and_digests_are_parsed_at_the_edge() {
        assert!(ProjectName::parse("   ").is_err());
        assert!(ProjectName::parse(&"x".repeat(201)).is_err());
        assert!(ProjectName::parse("a\u{7}b").is_err());
        assert!(KeyDigest::parse("AB").is_err());
        assert!(KeyDigest::parse(&"AB".repeat(32)).is_err());
    }

    #[tokio::test]
    async fn a_rate_limit_is_set_changed_and_cleared_and_the_same_one_again_emits_nothing() {
        let project_id = ProjectId::random();
        let created = Recorded(ProjectEvent::ProjectCreated(ProjectCreated { project_id, name: "p".into() }));
        let limit = crate::project::RateLimit::new(5, 10).unwrap();
        let set = Recorded(ProjectEvent::RateLimitSet(RateLimitSet { project_id, limit: Some(limit.recorded()) }));
        TestFramework::<Project>::with(())
            .given(vec![created.clone()])
            .when_async(ProjectCommand::SetRateLimit(Some(limit)))
            .await
            .then_expect_events(vec![set.clone()]);
        TestFramework::<Project>::with(())
            .given(vec![created.clone(), set.clone()])
            .when_async(ProjectCommand::SetRateLimit(Some(limit)))
            .await
            .then_expect_events(vec![]);
        TestFramework::<Project>::with(())
            .given(vec![created, set])
            .when_async(ProjectCommand::SetRateLimit(None))
            .await
            .then_expect_events(vec![Recorded(ProjectEvent::RateLimitSet(RateLimitSet { project_id, limit: None }))]);
        TestFramework::<Project>::with(())
            .given_no_previous_events()
            .when_async(ProjectCommand::SetRateLimit(None))
            .await
            .then_expect_error(ProjectError::NotFound);
    }

    #[test]
    fn a_rate_limit_is_at_least_one_request_and_bounded() {
        use crate::project::RateLimit;
        assert!(RateLimit::new(1, 1).is_ok());
        for (rate, burst) in [(0, 1), (1, 0), (RateLimit::MAX + 1, 1), (1, RateLimit::MAX + 1)] {
            assert!(RateLimit::new(rate, burst).is_err(), "{rate}/{burst}");
        }
    }
}
