//! Server-sent events as the upstream sends them: the JSON-RPC messages in a buffered stream,
//! a stream with some of them rewritten (every other byte kept as it came), and a stream read
//! event by event as it arrives ([`EventDecoder`]).

use super::message::MAX_ANSWER_BYTES;
use serde_json::Value;

/// The events of a complete SSE text (`\n`, `\r\n` or `\r` line ends).
fn events(text: &str) -> impl Iterator<Item = Vec<&str>> {
    let normalized_lines: Vec<&str> = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)).collect();
    normalized_lines
        .split(|line| line.is_empty())
        .filter(|lines| !lines.is_empty())
        .map(<[&str]>::to_vec)
        .collect::<Vec<_>>()
        .into_iter()
}

/// An event's data: its `data:` lines joined by `\n`.
fn data_of(lines: &[&str]) -> Option<String> {
    let data: Vec<&str> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|value| value.strip_prefix(' ').unwrap_or(value))
        .collect();
    (!data.is_empty()).then(|| data.join("\n"))
}

/// Every JSON message of the stream.
pub fn messages(text: &str) -> Vec<Value> {
    events(text).filter_map(|lines| serde_json::from_str(&data_of(&lines)?).ok()).collect()
}

/// The stream with each JSON message passed through `rewrite`; an event's other fields (`id:`,
/// `event:`, `retry:`, comments) are kept.
pub fn rewrite(text: &str, mut rewrite: impl FnMut(&mut Value)) -> String {
    let mut out = String::with_capacity(text.len());
    for lines in events(text) {
        let message = data_of(&lines).and_then(|data| serde_json::from_str::<Value>(&data).ok());
        match message {
            Some(mut message) => {
                rewrite(&mut message);
                for line in lines.iter().filter(|line| !line.starts_with("data:")) {
                    out.push_str(line);
                    out.push('\n');
                }
                out.push_str("data: ");
                out.push_str(&message.to_string());
                out.push('\n');
            }
            None => {
                for line in &lines {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out.push('\n');
    }
    out
}

/// One event carrying `message`.
pub fn event(message: &Value) -> String {
    format!("event: message\ndata: {message}\n\n")
}

/// One event of a stream: its `event:` name (none means `message`) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    /// The JSON-RPC message of a `message` event.
    pub fn message(&self) -> Option<Value> {
        matches!(self.name.as_deref(), None | Some("message")).then(|| serde_json::from_str(&self.data).ok())?
    }
}

/// A stream read as it arrives: each complete event as soon as its blank line comes, so that
/// progress and server-to-client requests are passed on while a call is still running (a
/// buffered read would hold a sampling request until the call that waits for it times out).
#[derive(Default)]
pub struct EventDecoder {
    /// The current line, not yet ended.
    line: Vec<u8>,
    /// The current event's lines, each ended by `\n`.
    event: String,
}

impl EventDecoder {
    /// The messages of the `message` events that `chunk` completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Value> {
        self.feed_events(chunk).iter().filter_map(Event::message).collect()
    }

    /// The events that `chunk` completes. An event larger than [`MAX_ANSWER_BYTES`] is dropped.
    pub fn feed_events(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for piece in chunk.split_inclusive(|byte| *byte == b'\n') {
            let Some(line) = piece.strip_suffix(b"\n") else {
                self.line.extend_from_slice(piece);
                break;
            };
            self.line.extend_from_slice(line);
            let text = String::from_utf8_lossy(&self.line).trim_end_matches('\r').to_owned();
            self.line.clear();
            if text.is_empty() {
                let lines = std::mem::take(&mut self.event);
                let lines: Vec<&str> = lines.lines().collect();
                if let Some(data) = data_of(&lines) {
                    events.push(Event { name: name_of(&lines), data });
                }
            } else if self.event.len() + text.len() < MAX_ANSWER_BYTES {
                self.event.push_str(&text);
                self.event.push('\n');
            } else {
                self.event.clear();
            }
        }
        if self.line.len() > MAX_ANSWER_BYTES {
            self.line.clear();
        }
        events
    }
}

/// An event's `event:` name.
fn name_of(lines: &[&str]) -> Option<String> {
    let name = lines.iter().rev().find_map(|line| line.strip_prefix("event:"))?;
    Some(name.strip_prefix(' ').unwrap_or(name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_read_and_rewritten_keeping_the_other_fields() {
        let text = "event: message\r\nid: 1\r\ndata: {\"id\":1,\r\ndata: \"result\":{}}\r\n\r\n: keep-alive\n\n";
        assert_eq!(messages(text), vec![json!({"id": 1, "result": {}})]);
        let rewritten = rewrite(text, |m| m["result"] = json!({"x": true}));
        assert_eq!(rewritten, "event: message\nid: 1\ndata: {\"id\":1,\"result\":{\"x\":true}}\n\n: keep-alive\n\n");
        assert_eq!(messages(&event(&json!({"a": 1}))), vec![json!({"a": 1})]);
    }

    #[test]
    fn messages_come_out_as_their_events_end_in_any_chunking() {
        let stream = "event: message\r\nid: 1\r\ndata: {\"id\":1,\r\ndata: \"result\":{}}\r\n\r\n: ping\n\nevent: message\ndata: {\"id\":2}\n\n";
        for size in 1..stream.len() {
            let mut decoder = EventDecoder::default();
            let messages: Vec<Value> = stream.as_bytes().chunks(size).flat_map(|chunk| decoder.feed(chunk)).collect();
            assert_eq!(messages, vec![json!({"id": 1, "result": {}}), json!({"id": 2})], "chunks of {size}");
        }
        let mut decoder = EventDecoder::default();
        assert!(decoder.feed(b"data: {\"id\":3}\n").is_empty(), "not ended yet");
        assert_eq!(decoder.feed(b"\n"), vec![json!({"id": 3})]);
    }

    #[test]
    fn an_events_name_is_kept_and_only_message_events_are_messages() {
        let mut decoder = EventDecoder::default();
        let events = decoder.feed_events(b"event: endpoint\ndata: /messages/?session_id=ab\n\ndata: {\"id\":1}\n\n");
        assert_eq!(events[0], Event { name: Some("endpoint".into()), data: "/messages/?session_id=ab".into() });
        assert_eq!(events[0].message(), None, "an endpoint is no message");
        assert_eq!(events[1].message(), Some(json!({"id": 1})), "an unnamed event is a message");
    }
}
