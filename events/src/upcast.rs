//! Versions of event payloads, and upcasting: bringing a payload stored (or published) in an
//! older version to the current shape, so that every reader decodes one shape only.
//!
//! `CURRENT` lists every event type with the version of its current shape; `STEPS` holds
//! one pure function per (event type, old version), each bringing a payload one version
//! forward. [`upcast`] chains them until the current version. A version with no step to
//! follow (a newer one, written by a newer build, or one this crate never knew) is refused:
//! decoding it as the current shape could misread it.

use serde_json::{Map, Value};
use std::fmt;

/// Every event type and the version of its payload's current shape. A type's version is
/// raised when its shape changes, with a step in [`STEPS`] from the version before.
const CURRENT: &[(&str, &str)] = &[
    ("project.created", "1.0"),
    ("project.api_key_issued", "1.0"),
    ("project.api_key_revoked", "1.0"),
    ("project.redirect_hosts_set", "1.0"),
    ("project.rate_limit_set", "1.0"),
    ("server.registered", "1.0"),
    ("server.updated", "1.0"),
    ("server.deleted", "1.0"),
    ("instance.created", "2.0"),
    ("instance.settings_changed", "1.0"),
    ("instance.auth_set", "1.0"),
    ("instance.auth_cleared", "1.0"),
    ("instance.deleted", "1.0"),
    ("instance.user_erased", "1.0"),
    ("instance.credential_refreshed", "1.0"),
    ("instance.credential_expired", "1.0"),
    ("oauth_app.saved", "1.0"),
    ("auth_config.created", "1.0"),
    ("auth_config.updated", "1.0"),
    ("auth_config.status_changed", "1.0"),
    ("auth_config.deleted", "1.0"),
    ("connected_account.initiated", "1.0"),
    ("connected_account.activated", "1.0"),
    ("connected_account.failed", "1.0"),
    ("connected_account.expired", "1.0"),
    ("connected_account.status_changed", "1.0"),
    ("connected_account.revoked", "1.0"),
    ("connected_account.deleted", "1.0"),
    ("connected_account.refreshed", "1.0"),
    ("connected_account.alias_changed", "1.0"),
    ("connected_account.credential_updated", "1.0"),
];

/// One version forward for one event type.
struct Step {
    event_type: &'static str,
    from: &'static str,
    to: &'static str,
    apply: fn(Value) -> Result<Value, String>,
}

const STEPS: &[Step] =
    &[Step { event_type: "instance.created", from: "1.0", to: "2.0", apply: instance_created_settings_nested }];

/// The version of `event_type`'s current payload shape; `None` for a type this crate does not
/// know.
pub fn current_version(event_type: &str) -> Option<&'static str> {
    CURRENT.iter().find(|(name, _)| *name == event_type).map(|(_, version)| *version)
}

/// `payload`, stored as `event_version` of `event_type`, in the current shape; returns the
/// current version with it. A payload already current is returned as it is.
pub fn upcast(event_type: &str, event_version: &str, payload: Value) -> Result<(&'static str, Value), UpcastError> {
    let current = current_version(event_type).ok_or_else(|| UpcastError::UnknownType(event_type.to_owned()))?;
    let (mut version, mut payload) = (event_version, payload);
    while version != current {
        let step = STEPS.iter().find(|s| s.event_type == event_type && s.from == version).ok_or_else(|| {
            UpcastError::UnknownVersion { event_type: event_type.to_owned(), version: version.to_owned(), current }
        })?;
        payload = (step.apply)(payload).map_err(|problem| UpcastError::Malformed {
            event_type: event_type.to_owned(),
            version: version.to_owned(),
            problem,
        })?;
        version = step.to;
    }
    Ok((current, payload))
}

/// Why a payload cannot be brought to the current shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpcastError {
    /// An event type this crate does not know.
    UnknownType(String),
    /// A version with no way to the current one: newer than this crate, or never issued.
    UnknownVersion { event_type: String, version: String, current: &'static str },
    /// The payload does not have the shape its version says.
    Malformed { event_type: String, version: String, problem: String },
}

impl fmt::Display for UpcastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownType(t) => write!(f, "unknown event type `{t}`"),
            Self::UnknownVersion { event_type, version, current } => write!(
                f,
                "`{event_type}` version {version} cannot be read: this build knows versions up to {current} \
                 (a newer version needs a newer build)"
            ),
            Self::Malformed { event_type, version, problem } => {
                write!(f, "`{event_type}` version {version} is malformed: {problem}")
            }
        }
    }
}

impl std::error::Error for UpcastError {}

/// `instance.created` 1.0 -> 2.0: the flat settings fields move into `settings`; a missing
/// `read_only` was false and a missing `connection_type` was `StreamableHttp`.
///
/// Builds from before 2.0 existed also labelled the nested shape 1.0; such a payload already
/// has `settings` and passes unchanged.
fn instance_created_settings_nested(mut payload: Value) -> Result<Value, String> {
    let body =
        payload.get_mut("InstanceCreated").and_then(Value::as_object_mut).ok_or("no `InstanceCreated` object")?;
    if body.contains_key("settings") {
        return Ok(payload);
    }
    let mut settings = Map::new();
    settings.insert("platform".into(), body.remove("platform").unwrap_or(Value::Null));
    settings.insert("connection_type".into(), body.remove("connection_type").unwrap_or("StreamableHttp".into()));
    settings.insert("legacy".into(), body.remove("legacy").ok_or("no `legacy`")?);
    settings.insert("read_only".into(), body.remove("read_only").unwrap_or(false.into()));
    body.insert("settings".into(), Value::Object(settings));
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InstanceEvent;
    use crate::instance::ConnectionType;
    use serde_json::json;

    fn slot() -> Value {
        json!({"project_id": "0b9d8a4e-9c52-4f55-9a0e-3d1d8bb7e0a1", "server": {"kind": "catalog", "slug": "gmail"},
               "server_name": "Gmail", "user_id": "alice"})
    }

    const INSTANCE_ID: &str = "5d1b3f0e-0a59-4d4e-9d8a-0b5d7e4c1a2f";

    #[test]
    fn a_flat_v1_instance_created_becomes_v2_and_decodes() {
        let v1 = json!({"InstanceCreated": {"slot": slot(), "instance_id": INSTANCE_ID, "platform": "Acme",
                                           "connection_type": "SSE", "legacy": true, "read_only": true}});

        let (version, v2) = upcast("instance.created", "1.0", v1).unwrap();

        assert_eq!(version, "2.0");
        assert_eq!(
            v2,
            json!({"InstanceCreated": {"slot": slot(), "instance_id": INSTANCE_ID,
                   "settings": {"platform": "Acme", "connection_type": "SSE", "legacy": true, "read_only": true}}})
        );
        let InstanceEvent::InstanceCreated(created) = serde_json::from_value(v2).unwrap() else {
            panic!("not created")
        };
        assert_eq!(created.settings.connection_type, ConnectionType::Sse);
    }

    #[test]
    fn absent_v1_fields_take_their_old_defaults() {
        let v1 = json!({"InstanceCreated": {"slot": slot(), "instance_id": INSTANCE_ID, "legacy": false}});

        let (_, v2) = upcast("instance.created", "1.0", v1).unwrap();

        assert_eq!(
            v2["InstanceCreated"]["settings"],
            json!({"platform": null, "connection_type": "StreamableHttp", "legacy": false, "read_only": false})
        );
    }

    #[test]
    fn a_nested_payload_labelled_v1_by_an_older_build_passes_unchanged() {
        let nested = json!({"InstanceCreated": {"slot": slot(), "instance_id": INSTANCE_ID,
            "settings": {"platform": null, "connection_type": "StreamableHttp", "legacy": false, "read_only": false}}});

        assert_eq!(upcast("instance.created", "1.0", nested.clone()).unwrap(), ("2.0", nested));
    }

    #[test]
    fn a_current_payload_is_left_alone() {
        let payload = json!({"ProjectCreated": {"anything": 1}});
        assert_eq!(upcast("project.created", "1.0", payload.clone()).unwrap(), ("1.0", payload));
    }

    #[test]
    fn newer_unknown_and_malformed_payloads_are_refused_not_misread() {
        let newer = upcast("instance.created", "3.0", json!({}));
        assert!(matches!(newer, Err(UpcastError::UnknownVersion { current: "2.0", .. })), "{newer:?}");
        assert!(newer.unwrap_err().to_string().contains("newer build"));
        assert!(matches!(upcast("project.created", "2.0", json!({})), Err(UpcastError::UnknownVersion { .. })));
        assert!(matches!(upcast("instance.created", "0.9", json!({})), Err(UpcastError::UnknownVersion { .. })));
        assert!(matches!(upcast("instance.exploded", "1.0", json!({})), Err(UpcastError::UnknownType(_))));
        let no_legacy = json!({"InstanceCreated": {"slot": slot(), "instance_id": INSTANCE_ID}});
        assert!(matches!(upcast("instance.created", "1.0", no_legacy), Err(UpcastError::Malformed { .. })));
    }

    #[test]
    fn every_step_leads_to_the_current_version() {
        for step in STEPS {
            let current = current_version(step.event_type).expect("a step of a listed type");
            assert_ne!(step.from, current, "{}: a step from the current version", step.event_type);
            assert!(STEPS.iter().any(|s| s.event_type == step.event_type && s.from == step.to) || step.to == current);
        }
    }
}
