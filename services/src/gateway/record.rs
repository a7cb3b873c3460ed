//! The gateway on the record (see [`crate::gateway_record`]): every message goes through
//! [`Gateway::serve`], which serves it and records what it was.
//!
//! - A `tools/call`: its outcome is read from the answer (a JSON body, or the event of an SSE
//!   stream that answers the call's id) or from the gateway's refusal. The client gets the
//!   answer only once the record is committed: a JSON answer waits whole; a stream flows as it
//!   comes except for the chunk completing the answer, which waits for the commit. A stream
//!   that ends without the answer is an `upstream_error`, and so is one the client abandons.
//! - An `initialize` answered with a new session id: `session.opened`. A `DELETE` answered
//!   with a 2xx: `session.closed`.
//!
//! A record that cannot be committed turns the answer into a JSON-RPC error: no success goes
//! out unrecorded. Arguments and results are never read into a record.

use super::forward::SESSION_HEADER;
use super::message::MAX_ANSWER_BYTES;
use super::message::Message;
use super::session::Scope;
use super::{Gateway, GatewayError, Incoming, Target, sse};
use crate::gateway_record::Recorder;
use crate::gateway_record::store::rfc3339;
use bytes::Bytes;
use events::gateway::{GatewayRecord, Outcome, RecordKind, Target as RecordTarget};
use events::{ProjectId, ServerId};
use futures::{Stream, StreamExt};
use poem::http::Method;
use poem::{Body, Response};
use serde_json::Value;
use std::pin::Pin;
use tokio::time::Instant;

impl Gateway {
    /// Serves one message (see `serve_unrecorded`) and puts it on the record.
    pub(super) async fn serve(
        &self,
        incoming: &Incoming,
        target: &Target,
        message: Option<&Message>,
    ) -> Result<Response, GatewayError> {
        let draft = Draft::of(target);
        let served = self.serve_unrecorded(incoming, target, message).await;
        let Some(draft) = draft else { return served };
        let recorder = &self.inner.recorder;
        if let Some(id) = message.filter(|m| m.method() == Some("tools/call")).and_then(Message::request_id) {
            return record_call(recorder, draft.called(message), id.clone(), served).await;
        }
        let kind = match &served {
            Ok(response) if opens_session(incoming, message, response) => Some(RecordKind::SessionOpened),
            Ok(response) if incoming.method == Method::DELETE && response.status().is_success() => {
                Some(RecordKind::SessionClosed)
            }
            _ => None,
        };
        if let Some(kind) = kind {
            commit(recorder, draft.finish(kind, Outcome::Ok)).await?;
        }
        served
    }
}

/// What a record says, as far as it is known before the message is served.
struct Draft {
    project: ProjectId,
    target: RecordTarget,
    server_name: String,
    tool_name: Option<String>,
    request_id: String,
    time: String,
    started: Instant,
}

impl Draft {
    fn of(target: &Target) -> Option<Self> {
        let (project, target, server_name) = match target {
            Target::Instance(record) => (
                ProjectId::from_uuid(record.project_id),
                RecordTarget::Instance { instance_id: record.instance_id()?, user_id: record.user_id.clone() },
                record.server_name.clone(),
            ),
            Target::Composio(composio) => {
                let (user_id, connected_account_id) = match composio.scope() {
                    Scope::Composio { selector, .. } => selected(&selector),
                    Scope::Instance(_) | Scope::Registered(_) => (None, None),
                };
                let server = &composio.server;
                let target = RecordTarget::ComposioServer {
                    server_id: ServerId::from_uuid(server.server_id),
                    user_id,
                    connected_account_id,
                };
                (ProjectId::from_uuid(server.project_id), target, server.name.clone())
            }
            Target::Registered(registered) => (
                registered.project_id(),
                RecordTarget::RegisteredServer { server_id: registered.server_id() },
                registered.name().to_owned(),
            ),
        };
        Some(Self {
            project,
            target,
            server_name,
            tool_name: None,
            request_id: crate::http::context::current_request_id().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            time: rfc3339(chrono::Utc::now()),
            started: Instant::now(),
        })
    }

    fn called(self, message: Option<&Message>) -> Self {
        Self { tool_name: message.and_then(Message::tool_name).map(str::to_owned), ..self }
    }

    /// The record, its duration measured now (and counted, see [`crate::metrics`]).
    fn finish(&self, kind: RecordKind, outcome: Outcome) -> GatewayRecord {
        let elapsed = self.started.elapsed();
        count(kind, outcome, &self.target, elapsed);
        GatewayRecord {
            record_id: uuid::Uuid::new_v4(),
            kind,
            project: self.project,
            target: self.target.clone(),
            server_name: self.server_name.clone(),
            tool_name: self.tool_name.clone(),
            outcome,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            request_id: self.request_id.clone(),
            time: self.time.clone(),
        }
    }
}

/// Counts a record's call or session: by outcome and kind of target, never by id.
fn count(kind: RecordKind, outcome: Outcome, target: &RecordTarget, elapsed: std::time::Duration) {
    let target = match target {
        RecordTarget::Instance { .. } => "instance",
        RecordTarget::ComposioServer { .. } => "composio_server",
        RecordTarget::RegisteredServer { .. } => "registered_server",
    };
    let session = |event: &'static str| {
        ::metrics::counter!(crate::metrics::GATEWAY_SESSIONS, "event" => event, "target" => target).increment(1);
    };
    match kind {
        RecordKind::ToolCalled => {
            let outcome = outcome.as_str();
            ::metrics::counter!(crate::metrics::GATEWAY_TOOL_CALLS, "outcome" => outcome, "target" => target)
                .increment(1);
            ::metrics::histogram!(crate::metrics::GATEWAY_UPSTREAM_DURATION, "outcome" => outcome, "target" => target)
                .record(elapsed.as_secs_f64());
        }
        RecordKind::SessionOpened => session("opened"),
        RecordKind::SessionClosed => session("closed"),
    }
}

/// The user and account a Composio scope's selector (`user_id=…`, `connected_account_id=…`) names.
fn selected(selector: &str) -> (Option<String>, Option<String>) {
    match selector.split_once('=') {
        Some(("user_id", user)) => (Some(user.to_owned()), None),
        Some(("connected_account_id", account)) => (None, Some(account.to_owned())),
        _ => (None, None),
    }
}

fn opens_session(incoming: &Incoming, message: Option<&Message>, response: &Response) -> bool {
    message.and_then(Message::method) == Some("initialize")
        && response
            .headers()
            .get(SESSION_HEADER)
            .is_some_and(|sealed| incoming.headers.get(SESSION_HEADER) != Some(sealed))
}

async fn commit(recorder: &Recorder, record: GatewayRecord) -> Result<(), GatewayError> {
    recorder.record(record).await.map_err(|e| GatewayError::Unrecorded(e.to_string()))
}

/// A call's outcome from the gateway's own error.
fn outcome_of_error(error: &GatewayError) -> Outcome {
    match error {
        GatewayError::Upstream { .. } | GatewayError::Internal | GatewayError::Unrecorded(_) => Outcome::UpstreamError,
        _ => Outcome::Refused,
    }
}

/// A call's outcome from the JSON-RPC message answering it.
fn outcome_of_answer(answer: &Value) -> Outcome {
    match answer.get("result") {
        Some(result) if result.get("isError").and_then(Value::as_bool) == Some(true) => Outcome::ToolError,
        Some(_) => Outcome::Ok,
        None => Outcome::UpstreamError,
    }
}

/// Records a `tools/call` (answered `served`), then lets the answer go.
async fn record_call(
    recorder: &Recorder,
    draft: Draft,
    id: Value,
    served: Result<Response, GatewayError>,
) -> Result<Response, GatewayError> {
    let response = match served {
        Ok(response) => response,
        Err(e) => {
            // The answer is an error either way; a record that fails is only logged.
            if let Err(unrecorded) = commit(recorder, draft.finish(RecordKind::ToolCalled, outcome_of_error(&e))).await
            {
                tracing::warn!(error = %unrecorded, "a refused tools/call could not be recorded");
            }
            return Err(e);
        }
    };
    let is_stream = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_stream {
        return Ok(hold_answer(recorder.clone(), draft, id, response));
    }
    // Not a stream: the gateway already holds the whole answer in memory.
    let (parts, body) = response.into_parts();
    let bytes = body.into_bytes().await.unwrap_or_default();
    let outcome = serde_json::from_slice::<Value>(&bytes).map_or(Outcome::UpstreamError, |m| outcome_of_answer(&m));
    commit(recorder, draft.finish(RecordKind::ToolCalled, outcome)).await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// The stream, with the chunk that completes the call's answer held until it is recorded.
fn hold_answer(recorder: Recorder, draft: Draft, id: Value, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let held = Held {
        chunks: Box::pin(body.into_bytes_stream()),
        scanner: AnswerScanner { id: id.clone(), buffer: Vec::new() },
        pending: Some((recorder, draft)),
        id,
        done: false,
    };
    let stream = futures::stream::unfold(held, |mut held| async move { held.next().await.map(|item| (item, held)) });
    Response::from_parts(parts, Body::from_bytes_stream(stream))
}

type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A relayed stream whose call is not recorded yet (`pending`).
struct Held {
    chunks: Chunks,
    scanner: AnswerScanner,
    pending: Option<(Recorder, Draft)>,
    id: Value,
    done: bool,
}

impl Held {
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.done {
            return None;
        }
        let chunk = match self.chunks.next().await {
            Some(Ok(chunk)) => chunk,
            other => {
                // Ended (or broke off) without answering the call.
                if let Err(e) = self.commit(Outcome::UpstreamError).await {
                    tracing::warn!(error = %e, "an unanswered tools/call could not be recorded");
                }
                return other;
            }
        };
        if self.pending.is_some()
            && let Some(answer) = self.scanner.feed(&chunk)
            && let Err(e) = self.commit(outcome_of_answer(&answer)).await
        {
            // The answer does not go out unrecorded: the stream ends with the error instead.
            self.done = true;
            return Some(Ok(Bytes::from(format!("\n\n{}", sse::event(&e.message(Some(&self.id)))))));
        }
        Some(Ok(chunk))
    }

    /// Records the call once (nothing if it already is).
    async fn commit(&mut self, outcome: Outcome) -> Result<(), GatewayError> {
        let Some((recorder, draft)) = self.pending.take() else { return Ok(()) };
        commit(&recorder, draft.finish(RecordKind::ToolCalled, outcome)).await
    }
}

impl Drop for Held {
    /// The client left before the answer: the call is on the record all the same.
    fn drop(&mut self) {
        if let Some((recorder, draft)) = self.pending.take() {
            recorder.record_later(draft.finish(RecordKind::ToolCalled, Outcome::UpstreamError));
        }
    }
}

/// Finds the message answering `id` in a stream read chunk by chunk.
struct AnswerScanner {
    id: Value,
    /// What came after the last complete event.
    buffer: Vec<u8>,
}

impl AnswerScanner {
    /// The answer, if `chunk` completes the event carrying it.
    fn feed(&mut self, chunk: &[u8]) -> Option<Value> {
        self.buffer.extend_from_slice(chunk);
        let Some(end) = last_event_end(&self.buffer) else {
            if self.buffer.len() > MAX_ANSWER_BYTES {
                // An event larger than any answer read into memory is not an answer looked for.
                self.buffer.clear();
            }
            return None;
        };
        let complete: Vec<u8> = self.buffer.drain(..end).collect();
        sse::messages(&String::from_utf8_lossy(&complete))
            .into_iter()
            .find(|m| m.get("id") == Some(&self.id) && (m.get("result").is_some() || m.get("error").is_some()))
    }
}

/// Where the last blank line (`\n\n` or `\n\r\n`) of `bytes` ends.
fn last_event_end(bytes: &[u8]) -> Option<usize> {
    (1..bytes.len())
        .rev()
        .find(|&i| {
            bytes[i] == b'\n' && (bytes[i - 1] == b'\n' || (i >= 2 && bytes[i - 1] == b'\r' && bytes[i - 2] == b'\n'))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_answer_is_found_only_once_its_event_is_complete_whatever_the_chunks() {
        let stream = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n\
                      event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"sampling/createMessage\"}\r\n\r\n\
                      event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"isError\":true}}\r\n\r\n";
        for size in [1, 5, 64, stream.len()] {
            let mut scanner = AnswerScanner { id: json!(7), buffer: Vec::new() };
            let found: Vec<(usize, Value)> = stream
                .as_bytes()
                .chunks(size)
                .enumerate()
                .filter_map(|(i, chunk)| scanner.feed(chunk).map(|answer| (i, answer)))
                .collect();
            assert_eq!(found.len(), 1, "chunks of {size}");
            let (at, answer) = &found[0];
            assert!((at + 1) * size >= stream.len(), "found with the last chunk (chunks of {size})");
            assert_eq!(outcome_of_answer(answer), Outcome::ToolError);
        }
    }

    #[test]
    fn outcomes_of_answers_and_refusals() {
        assert_eq!(outcome_of_answer(&json!({"id": 1, "result": {"content": []}})), Outcome::Ok);
        assert_eq!(outcome_of_answer(&json!({"id": 1, "error": {"code": -32602}})), Outcome::UpstreamError);
        assert_eq!(outcome_of_error(&GatewayError::HiddenTool("x".into())), Outcome::Refused);
        assert_eq!(
            outcome_of_error(&GatewayError::NotAuthenticated { server_name: "G".into(), oauth_url: None }),
            Outcome::Refused
        );
        let down = GatewayError::Upstream { server_name: "G".into(), problem: "is unreachable".into() };
        assert_eq!(outcome_of_error(&down), Outcome::UpstreamError);
        assert_eq!(selected("user_id=a=b"), (Some("a=b".into()), None));
        assert_eq!(selected("connected_account_id=ca_1"), (None, Some("ca_1".into())));
    }
}
