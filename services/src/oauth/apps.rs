use crate::error::AppError;
use crate::feed::FeedEvent;
use crate::project::Caller;
use crate::projection::Projection;
use crate::secrets::{Credential, Vault};
use crate::store::{CommandBus, CommandMetadata};
use chrono::{DateTime, Utc};
use domain::oauth_app::{OAuthApp, OAuthAppCommand, OAuthAppError, OAuthAppSpec, app_id};
use events::{OAuthAppEvent, ProjectId};
use secrecy::SecretString;
use sqlx::{PgConnection, PgPool};

pub type AppResult<T> = Result<T, AppError<OAuthAppError>>;

/// An OAuth app as stored in the view: everything but its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthAppRecord {
    pub app_id: String,
    pub client_id: String,
    pub provider: String,
    pub server_name: String,
    pub callback_url: Option<String>,
    pub account_id: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct OAuthApps {
    bus: CommandBus,
    vault: Vault,
    pool: PgPool,
}

const COLUMNS: &str = "app_id, client_id, provider, server_name, callback_url, account_id, authorize_url, token_url, \
    scopes, created_at, updated_at";

impl OAuthApps {
    pub fn new(bus: CommandBus, vault: Vault, pool: PgPool) -> Self {
        Self { bus, vault, pool }
    }

    /// Saves (creates or replaces) an app of the caller's project.
    pub async fn save(
        &self,
        caller: &Caller,
        spec: OAuthAppSpec<SecretString>,
        meta: &CommandMetadata,
    ) -> AppResult<OAuthAppRecord> {
        let id = app_id(caller.project_id, &spec.client_id);
        let key = self.vault.data_key(&Credential::OAuthApp(id.clone()).owner()).await?;
        let spec = spec.try_seal(|secret| Ok::<_, AppError<OAuthAppError>>(key.seal(&secret)))?;
        let client_id = spec.client_id.clone();
        self.bus.oauth_app(&id, OAuthAppCommand::Save { project_id: caller.project_id, spec }, meta).await?;
        self.get(caller.project_id, &client_id)
            .await?
            .ok_or_else(|| AppError::Failed(anyhow::anyhow!("app {id} missing after save")))
    }

    pub async fn get(&self, project_id: ProjectId, client_id: &str) -> AppResult<Option<OAuthAppRecord>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM view_oauth_apps WHERE project_id = $1 AND client_id = $2"))
            .bind(project_id.as_uuid())
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The app to use for `provider` in a project: the one named by `client_id`, or the most
    /// recently saved one for the provider.
    pub async fn for_provider(
        &self,
        project_id: ProjectId,
        provider: &str,
        client_id: Option<&str>,
    ) -> AppResult<Option<OAuthAppRecord>> {
        if let Some(client_id) = client_id {
            return Ok(self.get(project_id, client_id).await?.filter(|app| app.provider == provider));
        }
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM view_oauth_apps WHERE project_id = $1 AND provider = $2 ORDER BY updated_at DESC LIMIT 1"
        ))
        .bind(project_id.as_uuid())
        .bind(provider)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The app's client secret, opened: read from its events, never from a view.
    pub async fn client_secret(&self, project_id: ProjectId, app: &OAuthAppRecord) -> AppResult<SecretString> {
        let aggregate: OAuthApp = self.bus.load(&app.app_id).await?;
        let saved = aggregate.saved_in(project_id).ok_or(AppError::Rejected(OAuthAppError::NotFound))?;
        self.vault.open(&saved.client_secret).await.map_err(|e| AppError::Failed(e.into()))
    }
}

/// The OAuth apps of every project, without their secrets.
pub struct OAuthAppsView;

#[async_trait::async_trait]
impl Projection for OAuthAppsView {
    fn name(&self) -> &'static str {
        "oauth_apps"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["view_oauth_apps"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &FeedEvent) -> anyhow::Result<()> {
        let Some(OAuthAppEvent::OAuthAppSaved(e)) = event.decode::<OAuthAppEvent>()? else { return Ok(()) };
        sqlx::query(
            "INSERT INTO view_oauth_apps (project_id, client_id, app_id, provider, server_name, callback_url, account_id, \
                authorize_url, token_url, scopes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
             ON CONFLICT (project_id, client_id) DO UPDATE SET provider = EXCLUDED.provider, \
                server_name = EXCLUDED.server_name, callback_url = EXCLUDED.callback_url, account_id = EXCLUDED.account_id, \
                authorize_url = EXCLUDED.authorize_url, token_url = EXCLUDED.token_url, scopes = EXCLUDED.scopes, \
                updated_at = EXCLUDED.updated_at",
        )
        .bind(e.project_id.as_uuid())
        .bind(&e.client_id)
        .bind(&event.aggregate_id)
        .bind(&e.provider)
        .bind(&e.server_name)
        .bind(&e.callback_url)
        .bind(&e.account_id)
        .bind(&e.authorize_url)
        .bind(&e.token_url)
        .bind(&e.scopes)
        .bind(event.recorded_at)
        .execute(conn)
        .await?;
        Ok(())
    }
}
