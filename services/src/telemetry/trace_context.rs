//! W3C Trace Context (`traceparent`): read from a request, written into the metadata of the
//! events it causes, and published with them (see `relay::message`), so that a consumer of
//! the event stream continues the request's trace.
//!
//! When spans are exported the request's span becomes a child of the caller's and the value
//! passed on is the request span's own; when they are not, the caller's value is passed on as
//! it came (checked), which still ties the consumer to the caller's trace.

use opentelemetry::propagation::{Extractor, Injector};
use poem::http::HeaderMap;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const HEADER: &str = "traceparent";

/// `value` if it is a well-formed `traceparent` (version 00's four fields, lower-case hex,
/// neither id all zeros; a later version's first four fields), else `None`.
pub fn checked(value: &str) -> Option<String> {
    let value = value.trim();
    let head = value.get(..55)?;
    let rest = &value[55..];
    let fields: Vec<&str> = head.split('-').collect();
    let [version, trace_id, parent_id, flags] = fields[..] else { return None };
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    let fits = hex(version, 2)
        && version != "ff"
        && (if version == "00" { rest.is_empty() } else { rest.is_empty() || rest.starts_with('-') })
        && hex(trace_id, 32)
        && nonzero(trace_id)
        && hex(parent_id, 16)
        && nonzero(parent_id)
        && hex(flags, 2);
    fits.then(|| head.to_owned())
}

/// The trace context to pass on for a request with these headers, handled in `span`: makes
/// `span` continue the caller's trace when spans are exported.
pub fn continue_request(headers: &HeaderMap, span: &tracing::Span) -> Option<String> {
    let incoming = headers.get(HEADER).and_then(|v| v.to_str().ok()).and_then(checked);
    if !super::exporting() {
        return incoming;
    }
    if incoming.is_some() {
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
        // Fails only when the span is disabled, and then nothing is exported anyway.
        let _ = span.set_parent(parent);
    }
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&span.context(), &mut Carrier(&mut carrier)));
    carrier.remove(HEADER).and_then(|v| checked(&v)).or(incoming)
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct Carrier<'a>(&'a mut HashMap<String, String>);

impl Injector for Carrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_trace_contexts_are_passed_on() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(checked(good).as_deref(), Some(good));
        assert_eq!(checked(&format!("01-{}-future", &good[3..])).as_deref(), Some(&*format!("01-{}", &good[3..])));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(checked(bad), None, "{bad}");
        }
    }
}
