//! An upstream's event stream read as it arrives: each complete event's JSON-RPC message as
//! soon as its blank line comes, so that progress and server-to-client requests reach the
//! legacy client while a call is still running (a buffered read would hold a sampling request
//! until the call that waits for it times out).

use super::super::forward::MAX_ANSWER_BYTES;
use super::super::sse;
use serde_json::Value;

#[derive(Default)]
pub struct EventDecoder {
    /// The current line, not yet ended.
    line: Vec<u8>,
    /// The current event's lines, each ended by `\n`.
    event: String,
}

impl EventDecoder {
    /// The messages of the events that `chunk` completes. An event larger than
    /// [`MAX_ANSWER_BYTES`] is dropped.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Value> {
        let mut messages = Vec::new();
        for piece in chunk.split_inclusive(|byte| *byte == b'\n') {
            let Some(line) = piece.strip_suffix(b"\n") else {
                self.line.extend_from_slice(piece);
                break;
            };
            self.line.extend_from_slice(line);
            let text = String::from_utf8_lossy(&self.line).trim_end_matches('\r').to_owned();
            self.line.clear();
            if text.is_empty() {
                messages.extend(sse::messages(&std::mem::take(&mut self.event)));
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
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
