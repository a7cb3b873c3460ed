//! `SecretInput`: a secret field of a request body. It holds a `SecretString` (redacted in
//! Debug, zeroized on drop) from the moment it is parsed, is documented as a write-only
//! password string, and can only ever be written out masked.

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::borrow::Cow;

/// What a set secret looks like in any response.
pub const MASK: &str = "********";

#[derive(Debug, Clone)]
pub struct SecretInput(pub SecretString);

impl SecretInput {
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

/// A secret of at most `domain::limits::SECRET_BYTES`, without NUL.
impl<'de> Deserialize<'de> for SecretInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secret = SecretString::from(String::deserialize(deserializer)?);
        domain::limits::check_secret(secret.expose_secret()).map_err(serde::de::Error::custom)?;
        Ok(Self(secret))
    }
}

impl Type for SecretInput {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string(password)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            write_only: true,
            description: Some("A secret. Encrypted at rest; never returned (shown masked)."),
            ..MetaSchema::new_with_format("string", "password")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

/// Only used for the schema: bodies are parsed with serde (see `JsonBody`).
impl ParseFromJSON for SecretInput {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => Ok(Self(SecretString::from(s))),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for SecretInput {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(MASK.to_owned()))
    }
}

/// A secret JSON object (general auth data: tokens and whatever else a provider needs). Held
/// as its serialised text in a `SecretString` from the moment it is parsed.
#[derive(Debug, Clone)]
pub struct SecretJson(pub SecretString);

/// An object of at most `domain::limits::OBJECT_ENTRIES` entries and
/// `domain::limits::OBJECT_BYTES` serialised (NUL is refused by every body's own check).
impl<'de> Deserialize<'de> for SecretJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use domain::limits::{OBJECT_BYTES, OBJECT_ENTRIES};
        let object = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        if object.len() > OBJECT_ENTRIES {
            return Err(serde::de::Error::custom(format!("must have at most {OBJECT_ENTRIES} entries")));
        }
        let text = SecretString::from(Value::Object(object).to_string());
        if text.expose_secret().len() > OBJECT_BYTES {
            return Err(serde::de::Error::custom(format!("must be at most {OBJECT_BYTES} bytes as JSON")));
        }
        Ok(Self(text))
    }
}

impl Type for SecretJson {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "object(secret)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            write_only: true,
            description: Some("Secret data (tokens). Encrypted at rest; returned only by the auth endpoints."),
            additional_properties: Some(Box::new(MetaSchemaRef::Inline(Box::new(MetaSchema::ANY)))),
            ..MetaSchema::new("object")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for SecretJson {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::Object(object)) => Ok(Self(SecretString::from(Value::Object(object).to_string()))),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for SecretJson {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(MASK.to_owned()))
    }
}

/// A partial update of a secret object's fields: each a new secret value, or `null` to remove
/// the field. The field names are not secret; the values are `SecretString`s from parsing on.
#[derive(Debug, Clone, Default)]
pub struct SecretFieldsPatch(pub std::collections::BTreeMap<String, Option<SecretString>>);

/// At most `domain::limits::OBJECT_ENTRIES` fields, each a string (a [`SecretInput`]) or null,
/// so that a field of the wrong type is named (`val.api_key: must be a string`).
impl<'de> Deserialize<'de> for SecretFieldsPatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use domain::limits::OBJECT_ENTRIES;
        let fields = std::collections::BTreeMap::<String, Option<SecretInput>>::deserialize(deserializer)?;
        if fields.len() > OBJECT_ENTRIES {
            return Err(serde::de::Error::custom(format!("must have at most {OBJECT_ENTRIES} entries")));
        }
        Ok(Self(fields.into_iter().map(|(name, value)| (name, value.map(SecretInput::into_secret))).collect()))
    }
}

impl Type for SecretFieldsPatch {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "object(secret fields patch)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let field = MetaSchema {
            write_only: true,
            nullable: true,
            description: Some("A new secret value, or null to remove the field."),
            ..MetaSchema::new_with_format("string", "password")
        };
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            write_only: true,
            description: Some(
                "Credential fields to change: a string sets a field, null removes it, the fields not sent stay. \
                 Encrypted at rest; never returned.",
            ),
            additional_properties: Some(Box::new(MetaSchemaRef::Inline(Box::new(field)))),
            ..MetaSchema::new("object")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

/// Only used for the schema: bodies are parsed with serde (see `JsonBody`).
impl ParseFromJSON for SecretFieldsPatch {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let value = value.unwrap_or_default();
        serde_json::from_value(value.clone()).map_err(|_| ParseError::expected_type(value))
    }
}

impl ToJSON for SecretFieldsPatch {
    fn to_json(&self) -> Option<Value> {
        Some(Value::Object(self.0.keys().map(|k| (k.clone(), Value::String(MASK.to_owned()))).collect()))
    }
}
