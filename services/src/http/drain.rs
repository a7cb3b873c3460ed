//! An early answer leaves the connection usable. A request refused before its body was read
//! (413 past the limit, 415, 401, 404, a malformed body) would otherwise leave the rest of
//! the body unread: the server then closes the connection while the client is still sending,
//! and the client sees a broken pipe or "server disconnected" instead of the answer, or on
//! its next request over the same keep-alive connection.
//!
//! So the body is read through a handle this middleware keeps, and whatever the handler left
//! is read and dropped before the answer goes out, within bounds ([`DRAIN_LIMIT`] bytes,
//! [`DRAIN_TIME`]); past them (or when the client waits for `100 Continue` before sending a
//! body nobody asked for) the answer says `Connection: close`, and the connection ends after it.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use poem::http::{HeaderValue, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The most of an unread body read and dropped to keep the connection.
pub const DRAIN_LIMIT: usize = 32 << 20;
/// The longest spent doing so.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

type Chunks = BoxStream<'static, Result<Bytes, std::io::Error>>;

pub async fn unread_bodies<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let expects_continue = req.headers().get(header::EXPECT).is_some();
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let remaining: Arc<Mutex<Option<Chunks>>> = Arc::new(Mutex::new(Some(req.take_body().into_bytes_stream().boxed())));
    req.set_body(Body::from_bytes_stream(read_through(remaining.clone())));
    let mut response = next.call(req).await.map(IntoResponse::into_response)?;
    let Some(rest) = remaining.lock().await.take() else { return Ok(response) };
    let drained = !expects_continue && declared.is_none_or(|bytes| bytes <= DRAIN_LIMIT) && drain(rest).await;
    if !drained {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// The handler's view of the body: each chunk taken from the shared handle; the stream ends
/// (and the handle is emptied) when the body does.
fn read_through(remaining: Arc<Mutex<Option<Chunks>>>) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(remaining, |remaining| async move {
        let next = {
            let mut guard = remaining.lock().await;
            let next = guard.as_mut()?.next().await;
            if next.is_none() {
                guard.take();
            }
            next
        };
        next.map(|chunk| (chunk, remaining))
    })
}

/// Reads the rest of a body and drops it; true when it ended within the bounds.
async fn drain(mut rest: Chunks) -> bool {
    let read = async {
        let mut total = 0usize;
        while let Some(chunk) = rest.next().await {
            let Ok(chunk) = chunk else { return false };
            total += chunk.len();
            if total > DRAIN_LIMIT {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read).await.unwrap_or(false)
}
