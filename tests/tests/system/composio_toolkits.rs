//! Issue 15, item 6: Composio's toolkits, served from the catalog. Lists with Composio's
//! filters and cursor, one toolkit with its auth schemes and fields, Composio's errors, and
//! Composio's own Python client reading both by changing only its base URL.

use crate::support::composio::composio_error;
use crate::support::mcp::python;
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// The catalog's size (Klavis's 96 server names).
const CATALOG: u64 = 96;

async fn get(app: &TestApp, path: &str) -> Value {
    json_of(app.composio(Method::GET, path, None).await, 200).await
}

fn slugs(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_toolkit_list_pages_the_whole_catalog_by_cursor() {
    let app = TestApp::spawn().await;
    let first = get(&app, "/api/v3/toolkits").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 20, "Composio's default page is 20");
    assert_eq!((first["total_items"].as_u64(), first["total_pages"].as_u64()), (Some(CATALOG), Some(5)));
    assert_eq!(first["current_page"], 1);

    // Every page by its cursor: each toolkit once, then no cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v3/toolkits?limit=30&cursor={}", urlencode(c)),
            None => "/api/v3/toolkits?limit=30".to_owned(),
        };
        let page = get(&app, &path).await;
        pages += 1;
        assert_eq!(page["current_page"], pages, "{page}");
        seen.extend(slugs(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len() as u64, CATALOG);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len() as u64, CATALOG, "no toolkit twice");

    // v3.1 is the same list.
    assert_eq!(
        get(&app, "/api/v3.1/toolkits?limit=30").await["items"],
        get(&app, "/api/v3/toolkits?limit=30").await["items"]
    );
}

fn urlencode(raw: &str) -> String {
    raw.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

#[tokio::test]
async fn a_list_item_has_composios_shape() {
    let app = TestApp::spawn().await;
    let page = get(&app, "/api/v3/toolkits?search=github").await;
    assert_eq!(slugs(&page), ["github"]);
    let github = &page["items"][0];
    assert_eq!(github["name"], "GitHub");
    assert_eq!(github["auth_schemes"], json!(["OAUTH2"]));
    assert_eq!(github["composio_managed_auth_schemes"], json!(["OAUTH2"]));
    assert_eq!(
        (&github["no_auth"], &github["is_local_toolkit"], &github["type"]),
        (&json!(false), &json!(false), &json!("native"))
    );
    assert!(github["deprecated"]["toolkitId"].as_str().is_some_and(|id| id.len() == 36), "{github}");
    let meta = &github["meta"];
    assert_eq!(meta["categories"], json!([{"id": "developer-tools", "name": "Developer Tools"}]));
    assert_eq!((&meta["tools_count"], &meta["triggers_count"]), (&json!(0), &json!(0)));
    for field in ["created_at", "updated_at", "description", "logo", "version"] {
        assert!(meta[field].is_string(), "meta.{field}: {meta}");
    }
    let exa = &get(&app, "/api/v3/toolkits?search=exa").await["items"][0];
    assert_eq!((&exa["slug"], &exa["auth_schemes"]), (&json!("exa"), &json!(["API_KEY"])));
    let hn = &get(&app, "/api/v3/toolkits?search=hacker").await["items"][0];
    assert_eq!((&hn["no_auth"], &hn["auth_schemes"]), (&json!(true), &json!(["NO_AUTH"])));
}

#[tokio::test]
async fn the_list_filters_by_category_provenance_and_search_and_sorts() {
    let app = TestApp::spawn().await;
    let by_id = get(&app, "/api/v3/toolkits?category=developer-tools&limit=1000").await;
    let by_name = get(&app, "/api/v3/toolkits?category=Developer%20Tools&limit=1000").await;
    assert_eq!(by_id["items"], by_name["items"]);
    let dev = slugs(&by_id);
    assert!(
        dev.contains(&"github".into()) && dev.contains(&"vercel".into()) && !dev.contains(&"gmail".into()),
        "{dev:?}"
    );
    for item in by_id["items"].as_array().unwrap() {
        assert!(item["meta"]["categories"].as_array().unwrap().iter().any(|c| c["id"] == "developer-tools"), "{item}");
    }
    assert_eq!(by_id["total_items"].as_u64(), Some(dev.len() as u64));

    let none = get(&app, "/api/v3/toolkits?category=nothing-like-it").await;
    assert_eq!(
        (none["items"].clone(), none["total_items"].clone(), none["total_pages"].clone()),
        (json!([]), json!(0), json!(1))
    );
    assert_eq!(get(&app, "/api/v3/toolkits?managed_by=project").await["total_items"], 0);
    assert_eq!(get(&app, "/api/v3/toolkits?type=custom").await["total_items"], 0);
    assert_eq!(get(&app, "/api/v3/toolkits?managed_by=composio&include_deprecated=true").await["total_items"], CATALOG);

    let search = slugs(&get(&app, "/api/v3/toolkits?search=calendar&limit=1000").await);
    assert!(search.contains(&"gcalendar".into()) && search.contains(&"mscalendar".into()), "{search:?}");

    let sorted = get(&app, "/api/v3/toolkits?sort_by=alphabetically&limit=1000").await;
    let names: Vec<String> =
        sorted["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_lowercase()).collect();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn bad_list_parameters_are_composios_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    for (query, param) in [
        ("managed_by=me", "managed_by"),
        ("type=local", "type"),
        ("sort_by=popularity", "sort_by"),
        ("include_deprecated=yes", "include_deprecated"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
    ] {
        let response = app.composio(Method::GET, &format!("/api/v3/toolkits?{query}"), None).await;
        let error = composio_error(response, 400, "Request_ValidationError").await;
        let errors = error["errors"].to_string();
        assert!(errors.contains(param), "{query}: {error}");
    }
    // Behind the project's key, as the rest of Composio's surface.
    let anonymous = app.http.get(format!("{}/api/v3/toolkits", app.base_url)).send().await.unwrap();
    composio_error(anonymous, 401, "Auth_MissingApiKey").await;
    let anonymous = app.http.get(format!("{}/api/v3/toolkits/github", app.base_url)).send().await.unwrap();
    composio_error(anonymous, 401, "Auth_MissingApiKey").await;
}

#[tokio::test]
async fn a_toolkit_shows_each_schemes_fields_required_and_secret() {
    let app = TestApp::spawn().await;
    let github = get(&app, "/api/v3/toolkits/github").await;
    assert_eq!(
        (&github["slug"], &github["name"], &github["enabled"]),
        (&json!("github"), &json!("GitHub"), &json!(true))
    );
    assert_eq!(github["composio_managed_auth_schemes"], json!(["OAUTH2"]));
    assert_eq!(github["composio_managed_auth"][0]["mode"], "OAUTH2");
    assert!(github["composio_managed_auth"][0]["scopes"]["available"].as_array().unwrap().contains(&json!("repo")));
    assert_eq!(github["meta"]["categories"], json!([{"name": "Developer Tools", "slug": "developer-tools"}]));
    assert_eq!(github["meta"]["available_versions"], json!([github["meta"]["version"]]));
    let oauth = &github["auth_config_details"][0];
    assert_eq!((&oauth["mode"], &oauth["name"]), (&json!("OAUTH2"), &json!("OAuth 2.0")));
    let fields = |group: &Value| -> Vec<(String, bool, bool)> {
        group
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                assert_eq!(f["type"], "string", "{f}");
                assert!(f["displayName"].is_string() && f["description"].is_string(), "{f}");
                (
                    f["name"].as_str().unwrap().to_owned(),
                    f["required"].as_bool().unwrap(),
                    f["is_secret"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let creation = &oauth["fields"]["auth_config_creation"];
    let owned = |list: &[(&str, bool, bool)]| list.iter().map(|(n, r, s)| (n.to_string(), *r, *s)).collect::<Vec<_>>();
    assert_eq!(fields(&creation["required"]), owned(&[("client_id", true, false), ("client_secret", true, true)]));
    assert_eq!(
        fields(&creation["optional"]),
        owned(&[("scopes", false, false), ("authorization_url", false, false), ("token_url", false, false)])
    );
    assert_eq!(oauth["fields"]["connected_account_initiation"], json!({"required": [], "optional": []}));
    assert_eq!(oauth["deprecated_auth_provider_details"]["token_url"], "https://github.com/login/oauth/access_token");

    let exa = get(&app, "/api/v3/toolkits/exa").await;
    let key = &exa["auth_config_details"][0];
    assert_eq!(key["mode"], "API_KEY");
    assert_eq!(fields(&key["fields"]["connected_account_initiation"]["required"]), owned(&[("api_key", true, true)]));

    // Composio's spelling of a catalog slug finds the same entry; v3.1 answers the same.
    let gcal = get(&app, "/api/v3.1/toolkits/googlecalendar").await;
    assert_eq!((&gcal["slug"], &gcal["name"]), (&json!("gcalendar"), &json!("Google Calendar")));
    assert_eq!(get(&app, "/api/v3/toolkits/GitHub?version=latest").await, github);
}

#[tokio::test]
async fn the_listed_fields_are_the_ones_auth_configs_and_accounts_take() {
    let app = TestApp::spawn().await;
    // A custom OAuth config with exactly the required fields is taken, and the secret one is
    // never shown again.
    let github = get(&app, "/api/v3/toolkits/github").await;
    let required = github["auth_config_details"][0]["fields"]["auth_config_creation"]["required"].clone();
    let mut credentials = serde_json::Map::new();
    for field in required.as_array().unwrap() {
        credentials.insert(field["name"].as_str().unwrap().to_owned(), json!("value-of-a-field"));
    }
    let body = json!({"toolkit": {"slug": "github"},
                      "auth_config": {"type": "use_custom_auth", "authScheme": "OAUTH2", "credentials": credentials}});
    let created = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await, 201).await;
    let id = created["auth_config"]["id"].as_str().unwrap();
    let read = get(&app, &format!("/api/v3/auth_configs/{id}")).await;
    for field in required.as_array().unwrap() {
        let name = field["name"].as_str().unwrap();
        let shown = if field["is_secret"] == true { "REDACTED" } else { "value-of-a-field" };
        assert_eq!(read["credentials"][name], shown, "{name}: {read}");
    }

    // A managed scheme of an API-key toolkit: a managed config, then an account with the
    // required account fields.
    let exa = get(&app, "/api/v3/toolkits/exa").await;
    assert_eq!(exa["composio_managed_auth_schemes"], json!(["API_KEY"]));
    let body = json!({"toolkit": {"slug": "exa"}, "auth_config": {"type": "use_composio_managed_auth"}});
    let created = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await, 201).await;
    assert_eq!(created["auth_config"]["auth_scheme"], "API_KEY");
    let mut val = serde_json::Map::from_iter([("status".to_owned(), json!("ACTIVE"))]);
    for field in exa["auth_config_details"][0]["fields"]["connected_account_initiation"]["required"].as_array().unwrap()
    {
        val.insert(field["name"].as_str().unwrap().to_owned(), json!("exa-key"));
    }
    let connect = json!({"auth_config": {"id": created["auth_config"]["id"]},
                         "connection": {"user_id": "alice", "state": {"authScheme": "API_KEY", "val": val}}});
    let account = json_of(app.composio(Method::POST, "/api/v3/connected_accounts", Some(connect)).await, 201).await;
    assert_eq!(account["status"], "ACTIVE", "{account}");
}

#[tokio::test]
async fn an_unknown_or_malformed_toolkit_is_composios_error_naming_it() {
    let app = TestApp::spawn().await;
    let error = composio_error(
        app.composio(Method::GET, "/api/v3/toolkits/no-such-toolkit", None).await,
        404,
        "Toolkit_NotFound",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("no-such-toolkit"), "{error}");
    assert_eq!(error["errors"], json!(["slug: no toolkit no-such-toolkit"]));
    let error = composio_error(
        app.composio(Method::GET, "/api/v3/toolkits/github?version=20000101_00", None).await,
        404,
        "Toolkit_NotFound",
    )
    .await;
    assert!(error["errors"][0].as_str().unwrap().contains("20000101_00"), "{error}");
    let error = composio_error(
        app.composio(Method::GET, "/api/v3/toolkits/git%20hub", None).await,
        400,
        "Request_ValidationError",
    )
    .await;
    assert!(error["errors"][0].as_str().unwrap().starts_with("slug:"), "{error}");
}

/// tests/upstream/composio_sdk.py: Composio's Python client against `base_url`; its JSON report.
async fn composio_sdk(base_url: &str, key: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("upstream/composio_sdk.py");
    let run = tokio::process::Command::new(python()).arg(script).arg(base_url).arg(key).output();
    let output = tokio::time::timeout(Duration::from_secs(60), run).await.expect("within 60 s").expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!("the SDK script printed no JSON: {stdout} {}", String::from_utf8_lossy(&output.stderr))
    })
}

#[tokio::test]
async fn composio_python_client_lists_and_reads_toolkits_by_changing_only_base_url() {
    let app = TestApp::spawn().await;
    let report = composio_sdk(&app.base_url, &app.key).await;
    assert_eq!(report.get("error"), None, "{report}");
    // The client reads counts as floats: compare them as numbers.
    let first = &report["first"];
    let numbers: Vec<Option<f64>> =
        ["count", "total_items", "total_pages", "current_page"].iter().map(|k| first[k].as_f64()).collect();
    assert_eq!(numbers, [Some(10.0), Some(96.0), Some(10.0), Some(1.0)], "{report}");
    assert_eq!(first["has_next"], true);
    let all: Vec<&str> = report["all"]["slugs"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!((all.len(), report["all"]["pages"].as_u64()), (96, Some(4)), "{report}");
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 96);
    assert!(report["dev"].as_array().unwrap().contains(&json!("github")), "{report}");
    for categories in report["dev_categories"].as_array().unwrap() {
        assert!(categories.as_array().unwrap().contains(&json!("developer-tools")), "{report}");
    }
    assert_eq!(report["search"], json!(["github"]));
    assert_eq!(
        report["github"],
        json!({
            "name": "GitHub", "managed": ["OAUTH2"], "mode": "OAUTH2",
            "creation": [["client_id", true, false], ["client_secret", true, true], ["scopes", false, false],
                         ["authorization_url", false, false], ["token_url", false, false]],
            "initiation": [], "categories": ["developer-tools"], "type": "native",
        })
    );
    assert_eq!(report["exa"], json!({"modes": ["API_KEY"], "initiation": [["api_key", true, true]]}));
    assert_eq!(report["missing"]["status"], 404, "{report}");
    assert_eq!(report["missing"]["body"]["error"]["slug"], "Toolkit_NotFound", "{report}");
}
