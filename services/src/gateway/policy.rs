//! What a client of an instance (or a Composio server) may see and call: a tool filter.
//!
//! Klavis's `isReadOnly`: only tools whose annotations say `readOnlyHint: true` are listed and
//! callable. A tool without annotations counts as a write (fail closed): an upstream that does
//! not annotate its tools shows none on a read-only instance.
//!
//! Composio's `allowed_tools`: only the tools named are listed and callable (none named: all).
//! A name matches ignoring case, alone or after the toolkit's slug (`GITHUB_CREATE_ISSUE`
//! names the tool `create_issue` of an upstream bound to `github`), as Composio's tool slugs go.

use super::session::Scope;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The policy of one instance or server, read from its view on every request (a PATCH takes
/// effect on the next request of an open session).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub read_only: bool,
    /// The allowed tools' names, lowercased; empty: every tool.
    allowed: HashSet<String>,
    /// The toolkit's slug, lowercased, that may prefix an allowed name.
    toolkit: String,
}

impl Policy {
    pub fn read_only(read_only: bool) -> Self {
        Self { read_only, ..Self::default() }
    }

    /// Only `tools` (empty: all) of the upstream bound to `toolkit`.
    pub fn allowing(tools: &[String], toolkit: &str) -> Self {
        let allowed = tools.iter().map(|tool| tool.to_lowercase()).collect();
        Self { read_only: false, allowed, toolkit: toolkit.to_lowercase() }
    }

    /// Whether a `tools/list` result must be rewritten, and calls checked.
    pub fn restricts_tools(&self) -> bool {
        self.read_only || !self.allowed.is_empty()
    }

    /// Whether the tool's name passes the allow-list (read-only is checked on its annotations).
    pub fn allows_name(&self, name: &str) -> bool {
        if self.allowed.is_empty() {
            return true;
        }
        let name = name.to_lowercase();
        self.allowed.contains(&name) || self.allowed.contains(&format!("{}_{name}", self.toolkit))
    }

    /// Whether a tool (a `Tool` object of a `tools/list` result) is shown.
    pub fn shows(&self, tool: &Value) -> bool {
        let named = tool.get("name").and_then(Value::as_str).is_some_and(|name| self.allows_name(name));
        named && (!self.read_only || tool.pointer("/annotations/readOnlyHint") == Some(&Value::Bool(true)))
    }

    /// Drops the hidden tools of a `tools/list` answer, in place; other messages are left alone.
    pub fn filter_list(&self, message: &mut Value) {
        if let Some(tools) = message.pointer_mut("/result/tools").and_then(Value::as_array_mut) {
            tools.retain(|tool| self.shows(tool));
        }
        // A list filtered for one instance is that instance's: no shared cache may hand it to
        // another (2026-07-28 results say how they may be cached).
        if let Some(scope) = message.pointer_mut("/result/cacheScope") {
            *scope = Value::from("private");
        }
    }

    /// The names of the tools a `tools/list` answer shows under this policy.
    pub fn shown_names(&self, message: &Value) -> Vec<String> {
        let tools = message.pointer("/result/tools").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        tools
            .iter()
            .filter(|tool| self.shows(tool))
            .filter_map(|tool| tool.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }
}

/// The read-only tools of each instance's upstream, as last listed, for checking calls
/// without listing on every call. Entries are short-lived: an upstream's tools can change.
#[derive(Clone, Default)]
pub struct ToolCache {
    entries: Arc<Mutex<HashMap<Scope, CachedTools>>>,
}

/// When the tools were listed, and the read-only ones.
type CachedTools = (Instant, Arc<HashSet<String>>);

const CACHE_TTL: Duration = Duration::from_secs(30);
/// Bounds the cache; past it, the oldest half is dropped.
const CACHE_ENTRIES: usize = 10_000;

impl ToolCache {
    pub fn get(&self, scope: &Scope) -> Option<Arc<HashSet<String>>> {
        let entries = self.entries.lock().expect("the tool cache lock is not poisoned");
        entries.get(scope).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, tools)| tools.clone())
    }

    pub fn put(&self, scope: Scope, read_only_tools: HashSet<String>) -> Arc<HashSet<String>> {
        let tools = Arc::new(read_only_tools);
        let mut entries = self.entries.lock().expect("the tool cache lock is not poisoned");
        if entries.len() >= CACHE_ENTRIES {
            let mut ages: Vec<Instant> = entries.values().map(|(at, _)| *at).collect();
            ages.sort();
            let cutoff = ages[ages.len() / 2];
            entries.retain(|_, (at, _)| *at > cutoff);
        }
        entries.insert(scope, (Instant::now(), tools.clone()));
        tools
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer() -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
            {"name": "whoami", "annotations": {"readOnlyHint": true}},
            {"name": "delete_everything", "annotations": {"readOnlyHint": false, "destructiveHint": true}},
            {"name": "unannotated"},
            {"name": "hinted_as_string", "annotations": {"readOnlyHint": "true"}},
        ]}})
    }

    #[test]
    fn read_only_keeps_only_tools_hinted_read_only() {
        let policy = Policy::read_only(true);
        let mut message = answer();
        policy.filter_list(&mut message);
        assert_eq!(message["result"]["tools"], json!([{"name": "whoami", "annotations": {"readOnlyHint": true}}]));
        assert_eq!(policy.shown_names(&answer()), vec!["whoami".to_owned()]);
    }

    #[test]
    fn without_read_only_everything_is_shown() {
        let policy = Policy::read_only(false);
        let mut message = answer();
        policy.filter_list(&mut message);
        assert_eq!(message, answer());
        assert!(!policy.restricts_tools());
    }

    #[test]
    fn allowed_tools_keep_only_the_named_ones_in_either_spelling() {
        let policy = Policy::allowing(&["GITHUB_WHOAMI".into(), "Fail".into()], "github");
        assert!(policy.restricts_tools());
        let mut message = answer();
        message["result"]["tools"].as_array_mut().unwrap().push(json!({"name": "fail"}));
        policy.filter_list(&mut message);
        let names: Vec<&str> =
            message["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["whoami", "fail"]);
        assert!(!policy.allows_name("delete_everything"));
        assert!(!Policy::allowing(&["SLACK_WHOAMI".into()], "github").allows_name("whoami"), "another toolkit's");
        let everything = Policy::allowing(&[], "github");
        assert!(!everything.restricts_tools() && everything.allows_name("delete_everything"));
    }
}
