//! `/api/v1/project/redirect-hosts`: the calling project's redirect allow-list, read (GET),
//! replaced (PUT) or edited (PATCH) with the project's own key. There is no project id in the
//! path: a key only ever reaches its own project.

use crate::caller_extractor;
use crate::error::AppError;
use crate::http::body::JsonBody;
use crate::http::caller::KeySource;
use crate::http::context::RequestContext;
use crate::http::problem::{Issue, Kind, Location, Problem};
use crate::http::service_error::ServiceApiError;
use crate::project::{Caller, Projects};
use domain::project::RedirectHosts;
use domain::project::{InvalidRedirectHost, ProjectError, RedirectHostsChange};
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use serde::Deserialize;

/// Where a caller of the service's own API (`/api/v1`) sends its key: as a bearer token or in
/// `x-api-key`.
pub const KEY_SOURCES: [KeySource; 2] = [KeySource::Bearer, KeySource::Header("x-api-key")];

caller_extractor!(
    /// The caller of a project request (see [`KEY_SOURCES`]).
    ProjectCaller,
    [("ProjectBearer", KEY_SOURCES[0]), ("ProjectApiKey", KEY_SOURCES[1])]
);

#[derive(Tags)]
enum ProjectTags {
    /// Settings of the calling project.
    Project,
}

/// The hosts OAuth flows may send the browser back to.
#[derive(Object, Debug)]
pub struct RedirectHostsResponse {
    project_id: String,
    /// Canonical entries: lower-case ASCII host (IDNA), optional `:port`, optional leading `*.`.
    hosts: Vec<String>,
}

/// `PUT`: the whole new list.
#[derive(Object, Deserialize, Debug)]
pub struct ReplaceRedirectHosts {
    hosts: Vec<String>,
}

/// `PATCH`: hosts to add and hosts to remove.
#[derive(Object, Deserialize, Debug)]
pub struct EditRedirectHosts {
    // Either may be left out (an empty list), in the document too.
    #[serde(default)]
    #[oai(default)]
    add: Vec<String>,
    #[serde(default)]
    #[oai(default)]
    remove: Vec<String>,
}

impl From<AppError<ProjectError>> for ServiceApiError {
    fn from(e: AppError<ProjectError>) -> Self {
        Problem::of_app_error(e, |refusal| match refusal {
            e @ ProjectError::TooManyRedirectHosts { .. } => {
                Problem::invalid(Location::Body(vec!["hosts".into()]), Issue::Rule, e.to_string())
            }
            ProjectError::NotFound => Problem::new(Kind::NotFound, "Project not found"),
            other => Problem::new(Kind::Conflict, other.to_string()),
        })
        .into()
    }
}

/// The entries of the body field `field`, parsed.
fn hosts_of(field: &str, entries: &[String]) -> Result<RedirectHosts, ServiceApiError> {
    RedirectHosts::parse(entries).map_err(|InvalidRedirectHost { index, reason }| {
        Problem::invalid(Location::Body(vec![field.into(), index.to_string()]), Issue::Rule, reason).into()
    })
}

fn answer(caller: &Caller, hosts: &RedirectHosts) -> Json<RedirectHostsResponse> {
    Json(RedirectHostsResponse { project_id: caller.project_id.to_string(), hosts: hosts.entries() })
}

pub struct ProjectApi {
    projects: Projects,
}

impl ProjectApi {
    pub fn new(projects: Projects) -> Self {
        Self { projects }
    }

    async fn change(
        &self,
        caller: &Caller,
        req: &Request,
        change: RedirectHostsChange,
    ) -> Result<Json<RedirectHostsResponse>, ServiceApiError> {
        let meta = RequestContext::of(req).metadata(caller.actor());
        let hosts = self.projects.change_redirect_hosts(caller.project_id, change, &meta).await?;
        Ok(answer(caller, &hosts))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ProjectTags::Project")]
impl ProjectApi {
    /// The hosts the OAuth flows of the caller's project may redirect the browser to (the
    /// authorize `redirect_url`, a connection link's `callback_url`). Empty: no redirect
    /// away from this service; the flow ends on a plain page.
    #[oai(path = "/project/redirect-hosts", method = "get")]
    async fn redirect_hosts(&self, caller: ProjectCaller) -> Result<Json<RedirectHostsResponse>, ServiceApiError> {
        let hosts = self.projects.redirect_hosts(caller.0.project_id).await?;
        Ok(answer(&caller.0, &hosts))
    }

    /// Replace the list. Entries: `app.example.com`, `localhost:3000` (a port; without one,
    /// the scheme's default port only), `*.example.com` (its subdomains, not itself).
    #[oai(path = "/project/redirect-hosts", method = "put")]
    async fn replace_redirect_hosts(
        &self,
        caller: ProjectCaller,
        req: &Request,
        body: JsonBody<ReplaceRedirectHosts>,
    ) -> Result<Json<RedirectHostsResponse>, ServiceApiError> {
        let hosts = hosts_of("hosts", &body.0.hosts)?;
        self.change(&caller.0, req, RedirectHostsChange::Replace(hosts)).await
    }

    /// Add and remove hosts (removing one that is not listed changes nothing).
    #[oai(path = "/project/redirect-hosts", method = "patch")]
    async fn edit_redirect_hosts(
        &self,
        caller: ProjectCaller,
        req: &Request,
        body: JsonBody<EditRedirectHosts>,
    ) -> Result<Json<RedirectHostsResponse>, ServiceApiError> {
        let add = hosts_of("add", &body.0.add)?;
        let remove = hosts_of("remove", &body.0.remove)?;
        self.change(&caller.0, req, RedirectHostsChange::Edit { add, remove }).await
    }
}
