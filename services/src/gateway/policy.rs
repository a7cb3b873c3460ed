//! What a client of an instance may see and call.
//!
//! Klavis's `isReadOnly`: only tools whose annotations say `readOnlyHint: true` are listed and
//! callable. A tool without annotations counts as a write (fail closed): an upstream that does
//! not annotate its tools shows none on a read-only instance.

use events::InstanceId;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The policy of one instance, read from its view on every request (a PATCH takes effect on
/// the next request of an open session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub read_only: bool,
}

impl Policy {
    /// Whether a `tools/list` result must be rewritten, and calls checked.
    pub fn restricts_tools(&self) -> bool {
        self.read_only
    }

    /// Whether a tool (a `Tool` object of a `tools/list` result) is shown.
    pub fn shows(&self, tool: &Value) -> bool {
        !self.read_only || tool.pointer("/annotations/readOnlyHint") == Some(&Value::Bool(true))
    }

    /// Drops the hidden tools of a `tools/list` answer, in place; other messages are left alone.
    pub fn filter_list(&self, message: &mut Value) {
        if let Some(tools) = message.pointer_mut("/result/tools").and_then(Value::as_array_mut) {
            tools.retain(|tool| self.shows(tool));
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
    entries: Arc<Mutex<HashMap<InstanceId, CachedTools>>>,
}

/// When the tools were listed, and the read-only ones.
type CachedTools = (Instant, Arc<HashSet<String>>);

const CACHE_TTL: Duration = Duration::from_secs(30);
/// Bounds the cache; past it, the oldest half is dropped.
const CACHE_ENTRIES: usize = 10_000;

impl ToolCache {
    pub fn get(&self, instance_id: InstanceId) -> Option<Arc<HashSet<String>>> {
        let entries = self.entries.lock().expect("the tool cache lock is not poisoned");
        entries.get(&instance_id).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, tools)| tools.clone())
    }

    pub fn put(&self, instance_id: InstanceId, read_only_tools: HashSet<String>) -> Arc<HashSet<String>> {
        let tools = Arc::new(read_only_tools);
        let mut entries = self.entries.lock().expect("the tool cache lock is not poisoned");
        if entries.len() >= CACHE_ENTRIES {
            let mut ages: Vec<Instant> = entries.values().map(|(at, _)| *at).collect();
            ages.sort();
            let cutoff = ages[ages.len() / 2];
            entries.retain(|_, (at, _)| *at > cutoff);
        }
        entries.insert(instance_id, (Instant::now(), tools.clone()));
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
        let policy = Policy { read_only: true };
        let mut message = answer();
        policy.filter_list(&mut message);
        assert_eq!(message["result"]["tools"], json!([{"name": "whoami", "annotations": {"readOnlyHint": true}}]));
        assert_eq!(policy.shown_names(&answer()), vec!["whoami".to_owned()]);
    }

    #[test]
    fn without_read_only_everything_is_shown() {
        let policy = Policy { read_only: false };
        let mut message = answer();
        policy.filter_list(&mut message);
        assert_eq!(message, answer());
        assert!(!policy.restricts_tools());
    }
}
