//! `Allow` on a 405: RFC 9110 (15.5.6) requires the methods the resource supports, and poem's
//! router answers 405 without it. The methods are the document's own, so the header and the
//! spec cannot disagree.

use poem::http::StatusCode;
use poem::http::header::{ALLOW, HeaderValue};
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::Value;
use std::sync::Arc;

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// One documented path template and the methods it answers.
struct Resource {
    /// `None` for a `{parameter}` segment.
    segments: Vec<Option<String>>,
    /// As the document writes it: `/mcp-server/instance/{instanceId}`.
    template: Arc<str>,
    /// Upper case, as `Method::as_str` gives them.
    methods: Vec<String>,
    allow: HeaderValue,
}

impl Resource {
    /// How well it matches: the number of literal segments, as the router prefers
    /// `/mcp/servers` to `/mcp/{id}`.
    fn fit(&self, segments: &[&str]) -> Option<usize> {
        if self.segments.len() != segments.len() {
            return None;
        }
        let mut literal = 0;
        for (expected, actual) in self.segments.iter().zip(segments) {
            match expected {
                Some(text) if text == actual => literal += 1,
                Some(_) => return None,
                None => {}
            }
        }
        Some(literal)
    }
}

pub struct AllowedMethods {
    resources: Vec<Resource>,
}

impl AllowedMethods {
    pub fn of(spec: &Value) -> Self {
        let paths = spec.get("paths").and_then(Value::as_object);
        let resources = paths.into_iter().flatten().filter_map(|(path, item)| resource(path, item)).collect();
        Self { resources }
    }

    /// The resource the router picks for a path: the template with the most literal segments.
    fn resource(&self, path: &str) -> Option<&Resource> {
        let segments: Vec<&str> = split(path).collect();
        let fits = self.resources.iter().filter_map(|r| Some((r.fit(&segments)?, r)));
        fits.max_by_key(|(literal, _)| *literal).map(|(_, r)| r)
    }

    fn allow(&self, path: &str) -> Option<&HeaderValue> {
        self.resource(path).map(|r| &r.allow)
    }

    /// The document's template of the path, when it has one.
    pub fn template(&self, path: &str) -> Option<Arc<str>> {
        self.resource(path).map(|r| r.template.clone())
    }

    /// Whether the document has this operation (the router answers it rather than 404 or 405).
    pub fn answers(&self, method: &poem::http::Method, path: &str) -> bool {
        self.resource(path).is_some_and(|r| r.methods.iter().any(|m| m == method.as_str()))
    }

    /// Middleware: a 405 (an answer or an error) gets the path's `Allow`.
    pub async fn add_to_405<E: Endpoint>(self: Arc<Self>, next: E, req: Request) -> poem::Result<Response> {
        let allow = self.allow(req.uri().path()).cloned();
        let mut response = match next.call(req).await {
            Ok(response) => response.into_response(),
            Err(error) if error.status() == StatusCode::METHOD_NOT_ALLOWED => error.into_response(),
            Err(error) => return Err(error),
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = allow
        {
            response.headers_mut().insert(ALLOW, allow);
        }
        Ok(response)
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn resource(path: &str, item: &Value) -> Option<Resource> {
    let methods: Vec<String> = METHODS.iter().filter(|m| item.get(**m).is_some()).map(|m| m.to_uppercase()).collect();
    let allow = HeaderValue::from_str(&methods.join(", ")).ok()?;
    let segments = split(path).map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned())).collect();
    Some(Resource { segments, template: path.into(), methods, allow })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_most_literal_template_gives_the_methods() {
        let allowed = AllowedMethods::of(&json!({"paths": {
            "/api/v3/mcp/{id}": {"get": {}, "patch": {}, "delete": {}},
            "/api/v3/mcp/servers": {"get": {}, "post": {}}
        }}));
        assert_eq!(allowed.allow("/api/v3/mcp/servers").unwrap(), "GET, POST");
        assert_eq!(allowed.allow("/api/v3/mcp/0f0e").unwrap(), "GET, DELETE, PATCH");
        assert!(allowed.allow("/elsewhere").is_none());
        assert!(allowed.answers(&poem::http::Method::POST, "/api/v3/mcp/servers"));
        assert!(!allowed.answers(&poem::http::Method::PATCH, "/api/v3/mcp/servers"));
        assert!(allowed.answers(&poem::http::Method::PATCH, "/api/v3/mcp/0f0e"));
        assert!(!allowed.answers(&poem::http::Method::POST, "/elsewhere"));
        assert_eq!(allowed.template("/api/v3/mcp/0f0e").as_deref(), Some("/api/v3/mcp/{id}"));
        assert_eq!(allowed.template("/elsewhere"), None);
    }
}
