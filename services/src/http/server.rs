//! The HTTP server: hyper's connection builder driven directly, for the limits poem 3.1's
//! `Server` does not expose. poem builds hyper's connections without a timer, so hyper's header
//! read timeout never fires: a client that sends a request head one byte a minute (slowloris)
//! holds its connection and task for ever. Here every connection gets:
//!
//! - a header read timeout ([`ServerLimits::header_read_timeout`]): the first bytes, the whole
//!   head of a request, and the wait for the next one on a kept-alive connection, must each come
//!   within it, else the connection is closed (no surface can be named before the head is read);
//!   HTTP/2 connections are pinged at that interval instead;
//! - a bound on the head's size ([`MAX_HEADER_BYTES`]), answered 431 by hyper past it;
//! - TCP_NODELAY, for the gateway's SSE answers (a small event must not wait for Nagle);
//! - a bounded graceful shutdown: on the signal no connection is accepted, each open one ends
//!   after the request it is serving, and those still busy after the grace period are dropped.
//!
//! The body of a request is bounded by the request deadline (`deadline.rs`), which runs while
//! the handler reads it.

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, EndpointExt, Response};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The largest request head (request line and headers) read: past it, 431. hyper's own default
/// is about 400 KiB; no client of these APIs sends more than a few KiB.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// The most headers one request may have (hyper's default, said here to be known).
pub const MAX_HEADERS: usize = 100;

/// How long connections are given, and how long a shutdown waits for them.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// The body type poem converts its responses into.
type Body = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

type SharedEndpoint = Arc<dyn poem::endpoint::DynEndpoint<Output = Response>>;

/// Serves `endpoint` on `listener` until `shutdown` completes, then shuts down gracefully
/// within `limits.shutdown_grace`.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let local = LocalAddr(poem::Addr::SocketAddr(listener.local_addr()?));
    let endpoint: SharedEndpoint = Arc::new(poem::endpoint::ToDynEndpoint(endpoint.map_to_response()));
    let stopping = CancellationToken::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let connection = Connection { endpoint: endpoint.clone(), local: local.clone(), remote, limits };
                    connections.spawn(connection.serve(stream, stopping.clone()));
                }
                // A full file table or an aborted handshake: this connection fails, not the server.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections as they go, so that the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    shut_down(connections, stopping, limits.shutdown_grace).await;
    Ok(())
}

/// Asks every open connection to end after its current request and waits for them, at most
/// `grace`; those still open then are dropped.
async fn shut_down(mut connections: JoinSet<()>, stopping: CancellationToken, grace: Duration) {
    stopping.cancel();
    let open = connections.len();
    if open > 0 {
        tracing::info!(open, "waiting for open connections to finish their requests");
    }
    let finished = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!(
            still_open = connections.len(),
            grace_secs = grace.as_secs(),
            "connections still busy after the shutdown grace period are dropped"
        );
        connections.shutdown().await;
    }
}

struct Connection {
    endpoint: SharedEndpoint,
    local: LocalAddr,
    remote: SocketAddr,
    limits: ServerLimits,
}

impl Connection {
    async fn serve(self, stream: TcpStream, stopping: CancellationToken) {
        without_nagle(&stream);
        // hyper's header timer runs only once the protocol is known, from the first bytes.
        if !protocol_known(&stream, self.limits.header_read_timeout).await {
            return;
        }
        let builder = builder(&self.limits);
        let (endpoint, local, remote) = (self.endpoint, self.local, self.remote);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let (endpoint, local) = (endpoint.clone(), local.clone());
            let remote = RemoteAddr(poem::Addr::SocketAddr(remote));
            async move {
                let request = poem::Request::from((request, local, remote, poem::http::uri::Scheme::HTTP));
                let response: hyper::Response<Body> = endpoint.get_response(request).await.into();
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(connection);
        tokio::select! {
            // A closed connection, a timed-out head or a protocol error: nothing to answer.
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = stopping.cancelled() => connection.as_mut().graceful_shutdown(),
        }
        // The request in progress is finished (the caller of `shut_down` bounds the wait).
        let _ = connection.await;
    }
}

/// The start of HTTP/2's connection preface (prior knowledge): as many of its bytes as have
/// come decide nothing while they match.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether, within `limit`, enough bytes came to tell HTTP/1 from HTTP/2. hyper-util's
/// protocol detection has no timeout, and hyper's header timer starts after it: a client that
/// sends nothing, or a part of the preface, would hold its connection for ever.
async fn protocol_known(stream: &TcpStream, limit: Duration) -> bool {
    let decided = async {
        let mut first = [0u8; 24];
        loop {
            let seen = match stream.peek(&mut first).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            if seen >= H2_PREFACE.len() || first[..seen] != H2_PREFACE[..seen] {
                return true;
            }
            // A prefix of the preface: `peek` returns the same bytes until more come.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(limit, decided).await.unwrap_or(false)
}

/// Without `TCP_NODELAY`, a streamed answer (the gateway's SSE relay: headers, then each event
/// as its own write) waits for the client's delayed ACK (Nagle), about 40 ms per answer on
/// Linux; measured: 48 ms p50 through the gateway against 1.8 ms direct.
fn without_nagle(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// HTTP/1.1 and HTTP/2 (prior knowledge), with a timer so that the header read timeout fires.
fn builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    // HTTP/2 has no header timer between requests: pings find the dead or silent peers.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's SSE answers depend on it (see [`without_nagle`]); checked on the socket
    /// itself rather than by timing answers on a shared machine.
    #[tokio::test]
    async fn accepted_connections_have_tcp_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        without_nagle(&accepted);
        assert!(accepted.nodelay().unwrap());
    }
}
