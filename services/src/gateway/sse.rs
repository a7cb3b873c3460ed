//! Server-sent events as the upstream sends them: the JSON-RPC messages in a buffered stream,
//! and a stream with some of them rewritten (every other byte kept as it came).

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
}
