//! NATS in production (issue 14, item 9), through the real binary against a real nats-server:
//! TLS with a private CA and client certificates (made here with rcgen), a token, a user and
//! password, an NKey user, a `.creds` user of an operator-mode server; and two deployments
//! sharing one NATS server, each with its own stream and subject prefix. For each credential,
//! `serve` or `relay` publishes the store's events and a consumer reads them; a wrong or
//! missing one stops the start (or fails `relay --status`) naming the setting, never the secret.

use crate::support::nats::NatsServer;
use crate::support::process::binary;
use crate::support::{CliRun, RelayProcess, ServeProcess, TestDatabase, run_cli};
use async_nats::jetstream::{self, consumer::pull};
use base64::Engine;
use futures::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::{Value, json};
use services::secrets::MasterKey;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A directory of the test's own (certificates, keys, seeds), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("nats-production-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `name` and gives its absolute path, as a setting takes it.
    fn write(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One deployment's store, with a few events in it (a project and its API key).
struct Deployment {
    db: TestDatabase,
    /// The message ids of every stored event, as the relay publishes them.
    event_ids: BTreeSet<String>,
}

impl Deployment {
    async fn create(name: &str) -> Self {
        let db = TestDatabase::create().await;
        let env = [("DATABASE_URL", db.url.as_str())];
        let project = run_cli(&["project", "create", name], &env).await;
        assert!(project.success, "{project:?}");
        let key = run_cli(&["key", "create", "--project", project.stdout.trim()], &env).await;
        assert!(key.success, "{key:?}");
        let pool = db.pool().await;
        let stored: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT aggregate_type, aggregate_id, sequence FROM events").fetch_all(&pool).await.unwrap();
        pool.close().await;
        let event_ids = stored.iter().map(|(t, id, seq)| events::envelope::message_id(t, id, *seq)).collect();
        Self { db, event_ids }
    }

    /// `env` plus this deployment's database.
    fn env<'a>(&'a self, env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = vec![("DATABASE_URL", self.db.url.as_str())];
        all.extend_from_slice(env);
        all
    }
}

/// Reads `stream` the way a downstream service does, once it holds `expected` messages: the
/// message id and subject of each.
async fn consume(client: async_nats::Client, stream: &str, expected: usize) -> Vec<(String, String)> {
    let js = jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut handle = loop {
        if let Ok(mut handle) = js.get_stream(stream).await
            && handle.info().await.map(|info| info.state.messages as usize).unwrap_or(0) >= expected
        {
            break handle;
        }
        assert!(Instant::now() < deadline, "the stream {stream} did not get {expected} messages within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Everything the stream holds, so that a message of anyone else's would be read too.
    let held = handle.info().await.unwrap().state.messages as usize;
    let consumer = handle.create_consumer(pull::OrderedConfig::default()).await.unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut read = Vec::new();
    while read.len() < held {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next()).await.unwrap().unwrap().unwrap();
        let id = message.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).unwrap().as_str().to_owned();
        read.push((id, message.subject.to_string()));
    }
    read
}

/// Asserts the consumer got exactly the deployment's events, on subjects under `prefix`.
fn assert_all_events(read: &[(String, String)], deployment: &Deployment, prefix: &str) {
    let ids: BTreeSet<String> = read.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, deployment.event_ids, "the consumer read every event of the store, and no other message");
    for (id, subject) in read {
        assert!(subject.starts_with(&format!("{prefix}.events.")), "{id} on {subject}");
    }
}

/// Runs `provisioner <args>` until it exits, killing it after `timeout` (a start that should
/// fail but does not would otherwise run for ever).
async fn run_until_exit(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> CliRun {
    let mut command = Command::new(binary());
    command.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    command.envs(env.iter().copied()).env("PROVISIONER_LISTEN", "127.0.0.1:0");
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = child.wait_with_output().unwrap();
    CliRun {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A start that NATS refuses: it exits (within 30 s) with an error naming `setting`, and
/// shows none of `secrets`.
async fn assert_start_refused(command: &[&str], env: &[(&str, &str)], setting: &str, secrets: &[&str]) {
    let run = run_until_exit(command, env, Duration::from_secs(30)).await;
    eprintln!("{command:?} refused:\n{}", run.stderr.trim());
    assert!(!run.success && run.code.is_some(), "{command:?} should stop at start: {run:?}");
    assert!(run.stderr.contains(setting), "{command:?} should name {setting}: {}", run.stderr);
    for secret in secrets {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{command:?} echoed a secret: {run:?}");
    }
}

/// `relay --status` against NATS with `env`: fails naming `setting`, showing none of `secrets`.
async fn assert_status_refused(deployment: &Deployment, env: &[(&str, &str)], setting: &str, secrets: &[&str]) {
    let run = run_cli(&["relay", "--status"], &deployment.env(env)).await;
    eprintln!("relay --status refused:\n{}", run.stderr.trim());
    assert!(!run.success, "relay --status should fail: {run:?}");
    assert!(run.stdout.contains("misconfigured"), "{}", run.stdout);
    assert!(run.stderr.contains(setting), "relay --status should name {setting}: {}", run.stderr);
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "relay --status echoed a secret: {run:?}"
        );
    }
}

/// A CA, a server certificate it signs (for 127.0.0.1 and localhost) and a client
/// certificate it signs, as PEM files; and a second CA that signs nothing here.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    foreign_ca: String,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    (params.self_signed(&key).unwrap(), key)
}

fn leaf(names: &[&str], usage: ExtendedKeyUsagePurpose, ca: &(rcgen::Certificate, KeyPair)) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    (params.signed_by(&key, &ca.0, &ca.1).unwrap().pem(), key.serialize_pem())
}

impl Pki {
    fn new(scratch: &Scratch) -> Self {
        let authority = ca("provisioner test CA");
        let (server_cert, server_key) =
            leaf(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, &authority);
        let (client_cert, client_key) = leaf(&["provisioner"], ExtendedKeyUsagePurpose::ClientAuth, &authority);
        Self {
            ca: scratch.write("ca.pem", &authority.0.pem()),
            server_cert: scratch.write("server.pem", &server_cert),
            server_key: scratch.write("server-key.pem", &server_key),
            client_cert: scratch.write("client.pem", &client_cert),
            client_key: scratch.write("client-key.pem", &client_key),
            foreign_ca: scratch.write("foreign-ca.pem", &ca("someone else's CA").0.pem()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_private_ca_carries_events_and_a_missing_or_foreign_certificate_stops_the_start() {
    // Arrange: a server that requires TLS and verifies client certificates against the CA.
    let scratch = Scratch::new();
    let pki = Pki::new(&scratch);
    let nats = NatsServer::start_with_config(&format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n",
        pki.server_cert, pki.server_key, pki.ca
    ))
    .await;
    let deployment = Deployment::create("Tls").await;
    let tls_url = format!("tls://127.0.0.1:{}", nats.port());
    let master = MasterKey::generate_base64();
    let tls = [
        ("NATS_URL", tls_url.as_str()),
        ("PROVISIONER_MASTER_KEY", master.as_str()),
        ("PROVISIONER_NATS_CA_FILE", pki.ca.as_str()),
        ("PROVISIONER_NATS_CLIENT_CERT", pki.client_cert.as_str()),
        ("PROVISIONER_NATS_CLIENT_KEY", pki.client_key.as_str()),
    ];

    // Act: serve publishes over mutual TLS; a consumer with its own certificate reads.
    let serve = ServeProcess::start(&deployment.env(&tls));
    let consumer = async_nats::ConnectOptions::new()
        .add_root_certificates(pki.ca.clone().into())
        .add_client_certificate(pki.client_cert.clone().into(), pki.client_key.clone().into())
        .require_tls(true)
        .connect(tls_url.as_str())
        .await
        .unwrap();
    let read = consume(consumer, events::envelope::STREAM, deployment.event_ids.len()).await;

    // Assert
    assert_all_events(&read, &deployment, "provisioner");
    drop(serve);
    // A nats:// URL works as well: the server asks for TLS, the client follows.
    let plain_url = nats.url();
    let status =
        run_cli(&["relay", "--status"], &deployment.env(&[("NATS_URL", &plain_url), tls[2], tls[3], tls[4]])).await;
    assert!(status.success, "{status:?}");
    assert!(status.stdout.contains(&format!("stream last sequence  {}", read.len())), "{}", status.stdout);

    let no_client_cert = deployment.env(&tls[..3]);
    assert_start_refused(&["serve"], &no_client_cert, "asks for a client certificate", &[]).await;
    let foreign_ca = deployment.env(&[tls[0], tls[1], ("PROVISIONER_NATS_CA_FILE", &pki.foreign_ca), tls[3], tls[4]]);
    assert_start_refused(&["serve"], &foreign_ca, "set PROVISIONER_NATS_CA_FILE to the CA that signs it", &[]).await;
    let missing = scratch.0.join("missing.pem");
    let missing_ca = deployment.env(&[tls[0], tls[1], ("PROVISIONER_NATS_CA_FILE", missing.to_str().unwrap())]);
    assert_start_refused(&["serve"], &missing_ca, "PROVISIONER_NATS_CA_FILE", &[]).await;
    // The key is a secret: a file that is not one is named, its content never shown.
    let not_a_key = scratch.write("not-a-key.pem", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n");
    let bad_key = deployment.env(&[tls[0], tls[1], tls[2], tls[3], ("PROVISIONER_NATS_CLIENT_KEY", &not_a_key)]);
    assert_start_refused(&["serve"], &bad_key, "PROVISIONER_NATS_CLIENT_KEY", &["c2VjcmV0LWtleS1ieXRlcw"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_carries_events_and_a_wrong_or_missing_one_is_refused_naming_its_setting() {
    // Arrange
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let nats = NatsServer::start_with_config(&format!("authorization {{\n  token: \"{token}\"\n}}\n")).await;
    let deployment = Deployment::create("Token").await;
    let url = nats.url();
    let with_token = [("NATS_URL", url.as_str()), ("PROVISIONER_NATS_TOKEN", token.as_str())];

    // Act
    let _relay = RelayProcess::start_with(&deployment.db.url, &url, &with_token[1..]);
    let consumer = async_nats::ConnectOptions::with_token(token.clone()).connect(url.as_str()).await.unwrap();
    let read = consume(consumer, events::envelope::STREAM, deployment.event_ids.len()).await;

    // Assert
    assert_all_events(&read, &deployment, "provisioner");
    let status = run_cli(&["relay", "--status"], &deployment.env(&with_token)).await;
    assert!(status.success, "{status:?}");
    let wrong = "tok-wrong-hunter2";
    let wrong_token = [("NATS_URL", url.as_str()), ("PROVISIONER_NATS_TOKEN", wrong)];
    assert_status_refused(&deployment, &wrong_token, "PROVISIONER_NATS_TOKEN", &[wrong, &token]).await;
    assert_start_refused(&["relay"], &deployment.env(&wrong_token), "PROVISIONER_NATS_TOKEN", &[wrong]).await;
    // The token may come in the URL too, and is named (not shown) as such.
    let in_url = format!("nats://{wrong}@127.0.0.1:{}", nats.port());
    assert_status_refused(&deployment, &[("NATS_URL", &in_url)], "the token in NATS_URL", &[wrong]).await;
    assert_status_refused(&deployment, &[("NATS_URL", &url)], "no credential is set", &[&token]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_password_in_the_url_or_the_variables_carry_events_and_a_wrong_password_is_refused() {
    // Arrange
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let nats = NatsServer::start_with_config(&format!(
        "authorization {{\n  users = [\n    {{ user: ann, password: \"{password}\" }}\n  ]\n}}\n"
    ))
    .await;
    let deployment = Deployment::create("Password").await;
    let url_with_user = format!("nats://ann:{password}@127.0.0.1:{}", nats.port());
    let master = MasterKey::generate_base64();

    // Act: serve, with the user in its URL.
    let serve =
        ServeProcess::start(&deployment.env(&[("NATS_URL", &url_with_user), ("PROVISIONER_MASTER_KEY", &master)]));
    let consumer = async_nats::ConnectOptions::with_user_and_password("ann".into(), password.clone())
        .connect(nats.url().as_str())
        .await
        .unwrap();
    let read = consume(consumer, events::envelope::STREAM, deployment.event_ids.len()).await;

    // Assert
    assert_all_events(&read, &deployment, "provisioner");
    assert!(!serve.output().contains(&password), "serve logged the password:\n{}", serve.output());
    drop(serve);
    let url = nats.url();
    let by_variables = [
        ("NATS_URL", url.as_str()),
        ("PROVISIONER_NATS_USER", "ann"),
        ("PROVISIONER_NATS_PASSWORD", password.as_str()),
    ];
    let status = run_cli(&["relay", "--status"], &deployment.env(&by_variables)).await;
    assert!(status.success, "{status:?}");
    let wrong = "pw-wrong-hunter2";
    let wrong_password = [by_variables[0], by_variables[1], ("PROVISIONER_NATS_PASSWORD", wrong)];
    assert_status_refused(&deployment, &wrong_password, "PROVISIONER_NATS_PASSWORD", &[wrong, &password]).await;
    let wrong_in_url = format!("nats://ann:{wrong}@127.0.0.1:{}", nats.port());
    let serve_env = deployment.env(&[("NATS_URL", &wrong_in_url), ("PROVISIONER_MASTER_KEY", &master)]);
    assert_start_refused(&["serve"], &serve_env, "the user and password in NATS_URL", &[wrong]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nkey_user_carries_events_and_another_users_seed_is_refused() {
    // Arrange
    let scratch = Scratch::new();
    let user = nkeys::KeyPair::new_user();
    let nats = NatsServer::start_with_config(&format!(
        "authorization {{\n  users = [\n    {{ nkey: {} }}\n  ]\n}}\n",
        user.public_key()
    ))
    .await;
    let deployment = Deployment::create("NKey").await;
    let seed = user.seed().unwrap();
    let seed_file = scratch.write("provisioner.nk", &format!("{seed}\n"));

    // Act
    let _relay =
        RelayProcess::start_with(&deployment.db.url, &nats.url(), &[("PROVISIONER_NATS_NKEY_SEED_FILE", &seed_file)]);
    let consumer = async_nats::ConnectOptions::with_nkey(seed.clone()).connect(nats.url().as_str()).await.unwrap();
    let read = consume(consumer, events::envelope::STREAM, deployment.event_ids.len()).await;

    // Assert
    assert_all_events(&read, &deployment, "provisioner");
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let stranger_file = scratch.write("stranger.nk", &stranger);
    let url = nats.url();
    let env = [("NATS_URL", url.as_str()), ("PROVISIONER_NATS_NKEY_SEED_FILE", stranger_file.as_str())];
    assert_status_refused(&deployment, &env, "PROVISIONER_NATS_NKEY_SEED_FILE", &[&stranger, &seed]).await;
}

/// A NATS JWT (v2) with `claims` for `subject`, signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: Value) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = b64(json!({"typ": "JWT", "alg": "ed25519-nkey"}).to_string().as_bytes());
    let claims = json!({
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": chrono::Utc::now().timestamp(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signed = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(&signature))
}

/// An operator-mode server configuration (memory resolver, an account with JetStream, a
/// system account) and a `.creds` file of a user of that account, as `nsc` would make them.
fn operator_setup() -> (String, String) {
    let operator = nkeys::KeyPair::new_operator();
    let (account, system) = (nkeys::KeyPair::new_account(), nkeys::KeyPair::new_account());
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "test-operator",
        json!({"type": "operator", "version": 2, "system_account": system.public_key()}),
    );
    let unlimited = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
        "conn": -1, "leaf": -1});
    let mut with_jetstream = unlimited.clone();
    for limit in ["mem_storage", "disk_storage", "streams", "consumer"] {
        with_jetstream[limit] = json!(-1);
    }
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "provisioner",
        json!({"type": "account", "version": 2, "limits": with_jetstream}),
    );
    let system_jwt =
        jwt(&operator, &system.public_key(), "SYS", json!({"type": "account", "version": 2, "limits": unlimited}));
    let config = format!(
        "operator: \"{operator_jwt}\"\nsystem_account: \"{}\"\nresolver: MEMORY\nresolver_preload: {{\n  {}: \"{account_jwt}\"\n  {}: \"{system_jwt}\"\n}}\n",
        system.public_key(),
        account.public_key(),
        system.public_key()
    );
    let user = nkeys::KeyPair::new_user();
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "provisioner",
        json!({"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1}),
    );
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    );
    (config, creds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creds_file_user_of_an_operator_mode_server_carries_events_and_an_unknown_account_is_refused() {
    // Arrange
    let scratch = Scratch::new();
    let (config, creds) = operator_setup();
    let nats = NatsServer::start_with_config(&config).await;
    let deployment = Deployment::create("Creds").await;
    let creds_file = scratch.write("provisioner.creds", &creds);

    // Act
    let _relay =
        RelayProcess::start_with(&deployment.db.url, &nats.url(), &[("PROVISIONER_NATS_CREDS_FILE", &creds_file)]);
    let consumer = async_nats::ConnectOptions::with_credentials_file(&creds_file)
        .await
        .unwrap()
        .connect(nats.url().as_str())
        .await
        .unwrap();
    let read = consume(consumer, events::envelope::STREAM, deployment.event_ids.len()).await;

    // Assert
    assert_all_events(&read, &deployment, "provisioner");
    // A user of another operator's account: the server knows neither.
    let (_, foreign_creds) = operator_setup();
    let foreign_file = scratch.write("foreign.creds", &foreign_creds);
    let url = nats.url();
    let env = [("NATS_URL", url.as_str()), ("PROVISIONER_NATS_CREDS_FILE", foreign_file.as_str())];
    let seed = |creds: &str| creds.lines().find(|l| l.starts_with("SU")).unwrap().to_owned();
    assert_status_refused(&deployment, &env, "PROVISIONER_NATS_CREDS_FILE", &[&seed(&foreign_creds), &seed(&creds)])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_that_does_not_answer_yet_is_waited_for_and_not_a_start_error() {
    // Arrange: a NATS that is down when the service starts.
    let mut nats = NatsServer::start().await;
    nats.stop().await;
    let deployment = Deployment::create("Later").await;
    let (url, master) = (nats.url(), MasterKey::generate_base64());

    // Act: serve and relay start anyway; NATS comes up after them.
    let _serve = ServeProcess::start(&deployment.env(&[("NATS_URL", &url), ("PROVISIONER_MASTER_KEY", &master)]));
    let mut relay = RelayProcess::start(&deployment.db.url, &url);
    relay.wait_for("NATS does not answer yet", Duration::from_secs(30)).await;
    nats.restart().await;

    // Assert
    let client = async_nats::connect(url.as_str()).await.unwrap();
    assert_all_events(
        &consume(client, events::envelope::STREAM, deployment.event_ids.len()).await,
        &deployment,
        "provisioner",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deployments_on_one_nats_each_publish_to_their_own_stream_and_verify_finds_no_strays() {
    // Arrange: one NATS, two stores, each with its own stream and subject prefix.
    let nats = NatsServer::start().await;
    let url = nats.url();
    let (a, b) = (Deployment::create("Alpha").await, Deployment::create("Beta").await);
    let names_a =
        [("PROVISIONER_NATS_STREAM", "ALPHA_EVENTS"), ("PROVISIONER_NATS_SUBJECT_PREFIX", "alpha.provisioner")];
    let names_b = [("PROVISIONER_NATS_STREAM", "BETA_EVENTS"), ("PROVISIONER_NATS_SUBJECT_PREFIX", "beta.provisioner")];

    // Act: a relay each, both running at once.
    let _relay_a = RelayProcess::start_with(&a.db.url, &url, &names_a);
    let _relay_b = RelayProcess::start_with(&b.db.url, &url, &names_b);
    let client = async_nats::connect(url.as_str()).await.unwrap();
    let read_a = consume(client.clone(), "ALPHA_EVENTS", a.event_ids.len()).await;
    let read_b = consume(client, "BETA_EVENTS", b.event_ids.len()).await;

    // Assert: each stream holds its deployment's events, on its prefix, and nothing else.
    assert_all_events(&read_a, &a, "alpha.provisioner");
    assert_all_events(&read_b, &b, "beta.provisioner");
    for (deployment, names, stream) in [(&a, &names_a, "ALPHA_EVENTS"), (&b, &names_b, "BETA_EVENTS")] {
        let verify = run_cli(&["verify"], &deployment.env(&[("NATS_URL", &url), names[0], names[1]])).await;
        assert_eq!(verify.code, Some(0), "{verify:?}");
        assert!(verify.stdout.contains(&format!("stream {stream}: one message per event")), "{}", verify.stdout);
        assert!(!verify.stdout.contains("not an event"), "{}", verify.stdout);
    }
    // A third deployment that kept the other's prefix is told so, not silently mixed in.
    let c = Deployment::create("Gamma").await;
    let clashing = [("PROVISIONER_NATS_STREAM", "GAMMA_EVENTS"), names_a[1]];
    let mut relay_c = RelayProcess::start_with(&c.db.url, &url, &clashing);
    relay_c.wait_for("its own PROVISIONER_NATS_SUBJECT_PREFIX", Duration::from_secs(30)).await;
}
