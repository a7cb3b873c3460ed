//! Typed ids. Each wraps a UUID and serialises as the plain UUID string, so the wire form is
//! the same as an untyped id while the compiler keeps a server id from being used as a
//! project id.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A string that is not a UUID where one was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdParseError {
    pub input: String,
}

impl fmt::Display for IdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a valid id (expected a UUID)", self.input)
    }
}

impl std::error::Error for IdParseError {}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random id.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s.trim())
                    .map(Self)
                    .map_err(|_| IdParseError { input: s.to_owned() })
            }
        }
    };
}

uuid_id!(
    /// A customer project: the tenant every other aggregate belongs to.
    ProjectId
);
uuid_id!(
    /// An API key of a project. The key itself is never stored; this id names it.
    ApiKeyId
);
uuid_id!(
    /// An MCP server registered by a project.
    ServerId
);
uuid_id!(
    /// An instance: random, never derived, because an MCP URL holding it grants access to the
    /// user's connected account.
    InstanceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_as_a_plain_uuid_string() {
        let id = ServerId::random();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ServerId>(&json).unwrap(), id);
        assert_eq!(id.to_string().parse::<ServerId>().unwrap(), id);
    }

    #[test]
    fn a_malformed_id_is_refused_with_its_input() {
        let err = "mcp_abc123".parse::<ProjectId>().unwrap_err();
        assert_eq!(err.input, "mcp_abc123");
    }
}
