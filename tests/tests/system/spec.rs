//! Issue 14, item 6: the service's own `/openapi.json` tells the truth. schemathesis (in the
//! test venv, installed by scripts/lib.sh) runs every check it has against the real binary,
//! with the key as a bearer token (Klavis, GAIA, audit, project) and in `x-api-key`
//! (Composio), and finds nothing.

use crate::support::{ServeProcess, TestDatabase, cli_project_key, mcp::python};
use services::secrets::MasterKey;
use std::process::Command;

/// Cases per operation: enough to reach every response shape, few enough for about a minute.
const MAX_EXAMPLES: &str = "8";
/// A fixed seed, so that a failure is the same on every run (`PROVISIONER_SCHEMATHESIS_SEED`
/// picks another, to explore).
const DEFAULT_SEED: &str = "14";

/// Every check schemathesis has (`enabled = true` is the config file's `--checks all`; the
/// file, not the flag, so that the exceptions below apply), and which security scheme of the
/// document gets the key, and how: one per alternative, so that a request carries one key.
const CONFIG: &str = r#"
[checks]
enabled = true

[auth.openapi.HTTPBearer]
bearer = "${PROVISIONER_KEY}"
[auth.openapi.GaiaBearer]
bearer = "${PROVISIONER_KEY}"
[auth.openapi.AuditBearer]
bearer = "${PROVISIONER_KEY}"
[auth.openapi.ProjectBearer]
bearer = "${PROVISIONER_KEY}"
[auth.openapi.ComposioApiKey]
api_key = "${PROVISIONER_KEY}"

# `positive_data_acceptance` (a request the document allows is not refused) cannot hold where
# success needs what the service handed out, which no document can list: an OAuth `state`, a
# list `cursor`, a redirect host on the project's allow-list. Nor where a rule ties fields
# together in a way OpenAPI 3.0 cannot state: `instance_id` or `server_id` (audit calls),
# `authData` with a token or data but not both, the credentials an OAuth2 auth config needs,
# the fields a GAIA server's transport requires (`command` for stdio, `url` for http and sse).
# Every other check still runs on these operations.
[[operations]]
include-path-regex = "^/oauth/\\{provider\\}/callback$"
checks.positive_data_acceptance.enabled = false
[[operations]]
include-path-regex = "^/api/v3(\\.1)?/(auth_configs|connected_accounts|toolkits)$"
include-method = "GET"
checks.positive_data_acceptance.enabled = false
[[operations]]
include-path-regex = "^/api/v3(\\.1)?/(auth_configs|connected_accounts/link)$"
include-method = "POST"
checks.positive_data_acceptance.enabled = false
[[operations]]
include-path-regex = "^/api/mcp/servers(/\\{id\\})?$"
include-method-regex = "^(POST|PATCH)$"
checks.positive_data_acceptance.enabled = false
[[operations]]
include-path = "/api/v1/audit/calls"
checks.positive_data_acceptance.enabled = false
[[operations]]
include-path-regex = "^/(mcp-server/instance|user)/set-auth$"
checks.positive_data_acceptance.enabled = false

# `negative_data_rejection` (a request the document forbids is refused) cannot hold for the
# redirect hosts: the document gives the ASCII grammar, and the service also takes IDNA names
# (`ß` is `xn--zca`), which no pattern can state exactly.
[[operations]]
include-path = "/api/v1/project/redirect-hosts"
checks.negative_data_rejection.enabled = false
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_response_that_contradicts_the_spec() {
    // Arrange: the real binary with a project and its key.
    let db = TestDatabase::create().await;
    let key = cli_project_key(&db.url, "Spec").await;
    let serve =
        ServeProcess::start(&[("DATABASE_URL", &db.url), ("PROVISIONER_MASTER_KEY", &MasterKey::generate_base64())]);
    let config = std::env::temp_dir().join(format!("schemathesis-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&config, CONFIG).unwrap();
    let seed = std::env::var("PROVISIONER_SCHEMATHESIS_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());

    // Act
    let schemathesis = python().with_file_name("schemathesis");
    let spec_url = format!("{}/openapi.json", serve.base_url);
    let args = [
        "--config-file",
        config.to_str().unwrap(),
        "run",
        &spec_url,
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        &seed,
        // The document says so: no request string holds NUL (body.rs refuses it, keys too).
        "--generation-allow-x00",
        "false",
        "--no-color",
    ];
    let args = args.map(str::to_owned);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&schemathesis)
            .args(args)
            // schemathesis keeps a cache in `.schemathesis/` of its working directory: not the clone.
            .current_dir(std::env::temp_dir())
            .env("PROVISIONER_KEY", key)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", schemathesis.display()))
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&config);

    // Assert
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures (seed {seed}):\n{report}\n{}\n--- service log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        serve.output()
    );
    assert!(report.contains("Test cases:"), "schemathesis ran no test:\n{report}");
}
