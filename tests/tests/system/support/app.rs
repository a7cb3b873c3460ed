use super::{TestDatabase, init_logs};
use events::ProjectId;
use reqwest::{Method, Response};
use secrecy::ExposeSecret;
use serde_json::Value;
use services::project::Projects;
use services::projection::Projector;
use services::secrets::MasterKey;
use services::startup::{self, Application, Settings};
use services::store::CommandMetadata;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The application, running in this process on a random port, over its own database, with
/// one project and API key ready.
pub struct TestApp {
    pub base_url: String,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub project_id: ProjectId,
    pub key: String,
    projects: Projects,
    settings: Settings,
    stop: Option<oneshot::Sender<()>>,
    _server: JoinHandle<anyhow::Result<()>>,
    _db: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with settings adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        init_logs();
        let db = TestDatabase::create().await;
        let master_key = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let mut settings = Settings {
            database_url: db.url.clone(),
            relay: None,
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            master_key: master_key.clone(),
            max_view_lag: std::time::Duration::from_secs(10),
            read_your_writes_timeout: std::time::Duration::from_secs(5),
            oauth_allow_loopback_http: true,
            oauth_state_ttl: std::time::Duration::from_secs(600),
            pending_connection_ttl: std::time::Duration::from_secs(600),
            max_event_bytes: services::store::DEFAULT_MAX_EVENT_BYTES,
            gateway: Default::default(),
            rate_limits: Default::default(),
            request_timeout: std::time::Duration::from_secs(60),
            server: services::http::server::ServerLimits {
                header_read_timeout: std::time::Duration::from_secs(30),
                shutdown_grace: std::time::Duration::from_secs(10),
            },
            idempotency: Default::default(),
            metrics_listen: None,
        };
        adjust(&mut settings);
        let application = Application::build(&settings).await.expect("the application builds");
        let replica_settings = settings.clone();
        let base_url = format!("http://{}", application.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let pool = db.pool().await;
        // Projects and keys are made the way the CLI makes them: projecting inline.
        let projector = Projector::new(pool.clone(), Projector::VIEWS, startup::views());
        let projects = Projects::new(startup::command_bus(&pool, Arc::new(projector)), pool.clone());
        let mut app = Self {
            base_url,
            pool,
            http: reqwest::Client::new(),
            project_id: ProjectId::random(),
            key: String::new(),
            projects,
            settings: replica_settings,
            stop: Some(stop),
            _server: server,
            _db: db,
        };
        (app.project_id, app.key) = app.new_project("Test project").await;
        app
    }

    /// A second replica in this process, over the same database with the same settings (no
    /// relay); its base URL. It runs until the test ends.
    pub async fn replica(&self) -> String {
        let mut settings = self.settings.clone();
        settings.relay = None;
        let application = Application::build(&settings).await.expect("the replica builds");
        let base_url = format!("http://{}", application.local_addr());
        tokio::spawn(application.run_until_stopped(std::future::pending::<()>()));
        base_url
    }

    /// The URL of the app's own database, for other processes (a relay) to use.
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    /// Another project with a key of its own.
    pub async fn new_project(&self, name: &str) -> (ProjectId, String) {
        let meta = CommandMetadata::actor("test");
        let project_id = self.projects.create(domain::project::ProjectName::parse(name).unwrap(), &meta).await.unwrap();
        let issued = self.projects.issue_key(project_id, Some("test".into()), &meta).await.unwrap();
        (project_id, issued.key.expose_secret().to_owned())
    }

    /// The id of an API key (what the audit names as `api_key:<id>`).
    pub async fn key_id(&self, key: &str) -> events::ApiKeyId {
        self.projects.resolve_key(key).await.unwrap().expect("a live key").key_id
    }

    pub async fn revoke(&self, project_id: ProjectId, key: &str) {
        let caller = self.projects.resolve_key(key).await.unwrap().expect("a live key");
        self.projects.revoke_key(project_id, caller.key_id, &CommandMetadata::actor("test")).await.unwrap();
    }

    /// Lets the project's OAuth flows redirect to these hosts (PUT /api/v1/project/redirect-hosts).
    pub async fn allow_redirects_to(&self, hosts: &[&str]) {
        let body = serde_json::json!({ "hosts": hosts });
        let response = self.call(Method::PUT, "/api/v1/project/redirect-hosts", Some(body)).await;
        json_of(response, 200).await;
    }

    /// A request with the app's own key.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.call_as(&self.key, method, path, body).await
    }

    pub async fn call_as(&self, key: &str, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the request is answered")
    }

    /// A Composio request (`x-api-key`) with the app's own key.
    pub async fn composio(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.composio_as(&self.key, method, path, body).await
    }

    pub async fn composio_as(&self, key: &str, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url)).header("x-api-key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the request is answered")
    }

    /// Registers a server through the GAIA surface and returns its id.
    pub async fn register_server(&self, name: &str) -> String {
        let response = self.call(Method::POST, "/api/mcp/servers", Some(self.http_server(name))).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json::<Value>().await.unwrap()["serverId"].as_str().unwrap().to_owned()
    }

    /// The smallest valid registration body for an http server.
    pub fn http_server(&self, name: &str) -> Value {
        serde_json::json!({
            "projectId": self.project_id.to_string(),
            "name": name,
            "transportType": "http",
            "url": "https://mcp.example.com/mcp",
        })
    }

    /// Waits until the live projector has handled every committed event; returns its position.
    pub async fn settled(&self) -> services::feed::Position {
        self.caught_up(Projector::VIEWS).await
    }

    /// Waits until the relay has published every committed event; returns its position.
    pub async fn relayed(&self) -> services::feed::Position {
        self.caught_up(services::relay::Relay::SUBSCRIBER).await
    }

    async fn caught_up(&self, subscriber: &str) -> services::feed::Position {
        use services::feed::{Checkpoints, lag_after};
        for _ in 0..1000 {
            let at = Checkpoints::peek(&self.pool, subscriber).await.unwrap().unwrap_or_default();
            if lag_after(&self.pool, at).await.unwrap().events == 0 {
                return at;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{subscriber} did not catch up");
    }

    pub async fn secret_key_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM secret_keys").fetch_one(&self.pool).await.unwrap()
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&self.pool).await.unwrap()
    }

    /// Sabotages the store: from now on, appending an event whose payload mentions `marker`
    /// fails inside Postgres (the way zero2prod drops a column), and nothing else does.
    pub async fn fail_events_mentioning(&self, marker: &str) {
        let marker = marker.replace('\'', "''");
        sqlx::raw_sql(&format!(
            "CREATE FUNCTION explode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.payload::text LIKE '%{marker}%' THEN RAISE EXCEPTION 'sabotaged'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER explode BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION explode();"
        ))
        .execute(&self.pool)
        .await
        .unwrap();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts the status and returns the JSON body.
pub async fn json_of(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
