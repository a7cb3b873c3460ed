use std::collections::HashMap;

/// Who asked for a change and through which request. Stored beside every event the command
/// emits (postgres-es's `metadata` column), never inside payloads, and never a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandMetadata {
    /// `api_key:<key id>`, `cli`, `oauth-callback`, `system:expiry`, ...
    pub actor: String,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// The W3C trace context of the request (its span when traces are exported, else the
    /// caller's own), published with the event so that a consumer continues the trace.
    pub traceparent: Option<String>,
}

impl CommandMetadata {
    pub fn actor(actor: impl Into<String>) -> Self {
        Self { actor: actor.into(), ..Self::default() }
    }

    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([("actor".to_owned(), self.actor.clone())]);
        for (key, value) in [
            ("request_id", &self.request_id),
            ("client_addr", &self.client_addr),
            ("user_agent", &self.user_agent),
            ("traceparent", &self.traceparent),
        ] {
            if let Some(value) = value {
                map.insert(key.to_owned(), value.clone());
            }
        }
        map
    }
}
