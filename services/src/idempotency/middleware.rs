//! The middleware. A POST (or PATCH) with an `Idempotency-Key` and a valid API key of its surface:
//! - claims (project, key) before it runs, with a fingerprint of method, path and body;
//! - same key, same request, already answered: the kept response, `Idempotent-Replayed: true`;
//! - same key, another request: 422 in the surface's format, nothing run;
//! - same key, same request, still running: waits for it (bounded), then 409;
//! - its response is kept unless it is a 5xx, which releases the key so that a retry runs again.
//!
//! Anything else (other methods, no key, no valid API key: OAuth callbacks, hosted pages, or a
//! caller the handler refuses in its own words) passes through untouched.

use super::key::{self, BadKey, HEADER, REPLAYED_HEADER};
use super::store::{Claim, IdempotencyStore, StoredResponse};
use crate::http::body::{BodyError, MAX_BODY_BYTES};
use crate::http::caller::{Authenticated, KeySource, authenticate};
use crate::http::context::spawn_in_request;
use crate::http::problem::{Issue, Kind, Location, Problem};
use events::ProjectId;
use poem::error::ReadBodyError;
use poem::http::{HeaderName, HeaderValue, Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What the middleware needs of the surface a path belongs to, given by the router, which
/// knows the surfaces (this module stays below them): where its callers send their API key,
/// and how it renders a problem.
#[derive(Clone, Copy)]
pub struct Surfaces {
    pub key_sources: fn(&str) -> &'static [KeySource],
    pub render: fn(&str, Problem) -> Response,
}

/// Whether a method and path name an operation of the API. The middleware runs before the
/// router: a method the path does not answer must get the router's 405, not a replay or a 422
/// of the key's first use.
pub type Operations = Arc<dyn Fn(&Method, &str) -> bool + Send + Sync>;

/// Applied once, around the surfaces' APIs (see `router::app`).
#[derive(Clone)]
pub struct Idempotency {
    store: IdempotencyStore,
    surfaces: Surfaces,
    operations: Operations,
}

impl Idempotency {
    pub fn new(store: IdempotencyStore, surfaces: Surfaces, operations: Operations) -> Self {
        Self { store, surfaces, operations }
    }
}

impl<E: Endpoint + 'static> Middleware<E> for Idempotency {
    type Output = IdempotentEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        IdempotentEndpoint {
            inner: Arc::new(inner),
            store: self.store.clone(),
            surfaces: self.surfaces,
            operations: self.operations.clone(),
        }
    }
}

pub struct IdempotentEndpoint<E> {
    /// Shared with the task that runs a keyed request (see [`run_and_keep`]).
    inner: Arc<E>,
    store: IdempotencyStore,
    surfaces: Surfaces,
    operations: Operations,
}

/// A keyed request, once its key and caller are known.
struct Keyed {
    /// The request's path, naming its surface.
    path: String,
    render: fn(&str, Problem) -> Response,
    project: ProjectId,
    key: String,
    fingerprint: Vec<u8>,
}

impl<E: Endpoint + 'static> Endpoint for IdempotentEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        // The draft's non-idempotent methods; PUT and DELETE are idempotent already.
        let keyable = matches!(*req.method(), Method::POST | Method::PATCH);
        if !keyable || !(self.operations)(req.method(), req.uri().path()) {
            return pass(&*self.inner, req).await;
        }
        let Some(raw) = req.headers().get(HEADER).map(|v| v.as_bytes().to_vec()) else {
            return pass(&*self.inner, req).await;
        };
        let (path, render) = (req.uri().path().to_owned(), self.surfaces.render);
        let key = match key::parse(&raw) {
            Ok(key) => key,
            Err(BadKey) => return Ok(render(&path, bad_key())),
        };
        // The same resolution as the handler's extractor: a request it would refuse is left to
        // refuse, in its own words, and a request without a project has no key space.
        // Counted against the caller's rate here, once: the extractor takes the caller from here.
        let Ok(caller) = authenticate(&req, (self.surfaces.key_sources)(&path)).await else {
            return pass(&*self.inner, req).await;
        };
        let project = caller.project_id;
        let (mut req, body) = match read_body(req).await {
            Ok(read) => read,
            Err(e) => return Ok(render(&path, Problem::from_poem(e.into()))),
        };
        req.set_data(Authenticated(caller));
        let target = req.uri().path_and_query().map_or_else(|| req.uri().path(), |p| p.as_str()).to_owned();
        let fingerprint = key::fingerprint(req.method().as_str(), &target, &body);
        let keyed = Keyed { path, render, project, key, fingerprint };
        self.keyed(keyed, req).await
    }
}

impl<E: Endpoint + 'static> IdempotentEndpoint<E> {
    async fn keyed(&self, keyed: Keyed, req: Request) -> poem::Result<Response> {
        let deadline = Instant::now() + self.store.settings().wait;
        let mut pause = Duration::from_millis(5);
        loop {
            let claim = match self.store.claim(keyed.project, &keyed.key, &keyed.fingerprint).await {
                Ok(claim) => claim,
                Err(e) => {
                    // Running it anyway could run it twice: the caller retries later instead.
                    tracing::error!(error = %e, "cannot claim an idempotency key");
                    let problem = Problem::new(Kind::Unavailable, "The service is temporarily unavailable; try again");
                    return Ok((keyed.render)(&keyed.path, problem));
                }
            };
            match claim {
                Claim::Owned(claim) => return Ok(self.run_and_keep(keyed, claim, req).await),
                Claim::Done(stored) => return Ok(replay(stored)),
                Claim::Mismatch => return Ok((keyed.render)(&keyed.path, reused_key())),
                Claim::Vanished => continue,
                Claim::InFlight if Instant::now() >= deadline => return Ok((keyed.render)(&keyed.path, in_flight())),
                Claim::InFlight => {
                    tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        }
    }

    /// Runs the request in a task of its own, so that a client that goes away mid-request
    /// does not stop it between its commit and the keeping of its answer (the retry would
    /// then run it again); keeps the answer, or releases the key on a 5xx.
    async fn run_and_keep(&self, keyed: Keyed, claim: Uuid, req: Request) -> Response {
        let (inner, store) = (self.inner.clone(), self.store.clone());
        let Keyed { project, key, path, render, .. } = keyed;
        let task = spawn_in_request(async move {
            let response = match inner.call(req).await {
                Ok(response) => response.into_response(),
                Err(e) => e.into_response(),
            };
            let (kept, response) = buffered(response).await;
            let stored = match kept {
                Some(stored) => store.complete(project, &key, claim, &stored).await.map(|_| ()),
                None => store.release(project, &key, claim).await,
            };
            if let Err(e) = stored {
                // The answer stands; only its retry may run again (or wait for the lease).
                tracing::warn!(error = %e, "cannot keep or release an idempotency key");
            }
            response
        });
        match task.await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(error = %e, "a keyed request failed");
                render(&path, Problem::new(Kind::Internal, "Internal server error"))
            }
        }
    }
}

async fn pass<E: Endpoint>(inner: &E, req: Request) -> poem::Result<Response> {
    inner.call(req).await.map(IntoResponse::into_response)
}

/// Reads the body (within the limit every body has) to fingerprint it, and puts it back.
async fn read_body(mut req: Request) -> Result<(Request, Vec<u8>), BodyError> {
    let body = req.take_body().into_bytes_limit(MAX_BODY_BYTES).await.map_err(|e| match e {
        ReadBodyError::PayloadTooLarge => BodyError::TooLarge { limit: MAX_BODY_BYTES },
        other => BodyError::Unreadable(other.to_string()),
    })?;
    req.set_body(body.clone());
    Ok((req, body.to_vec()))
}

/// Headers that belong to one transmission, not to the answer: recomputed or set afresh on a
/// replay (`x-request-id` is the retry's own).
const UNKEPT_HEADERS: [&str; 5] = ["content-length", "transfer-encoding", "connection", "date", "x-request-id"];

/// The response, whole, and what to keep of it: nothing for a 5xx (the retry runs again) or a
/// stream (not an answer that can be kept).
async fn buffered(response: Response) -> (Option<StoredResponse>, Response) {
    let streamed = response.content_type().is_some_and(|t| t.starts_with("text/event-stream"));
    if response.status().is_server_error() || streamed {
        return (None, response);
    }
    let (parts, body) = response.into_parts();
    let bytes = match body.into_bytes().await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "cannot read a keyed request's response");
            return (None, StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !UNKEPT_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let stored = StoredResponse { status: parts.status.as_u16(), headers, body: bytes.to_vec() };
    (Some(stored), Response::from_parts(parts, Body::from(bytes)))
}

/// The kept response, as it was first sent.
fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::builder().status(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK));
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_bytes(&value)) {
            response = response.header(name, value);
        }
    }
    response.header(REPLAYED_HEADER, "true").body(stored.body)
}

fn header_problem(message: &str) -> Problem {
    Problem::invalid(Location::Header("Idempotency-Key".into()), Issue::Rule, message)
}

/// Refused as each surface refuses a bad header (Klavis and GAIA 422, Composio 400).
fn bad_key() -> Problem {
    header_problem(&BadKey.to_string())
}

/// The draft's 422: the key was used for another request.
fn reused_key() -> Problem {
    header_problem("was already used for a different request (method, path or body); use a new key for a new request")
        .with_kind(Kind::IdempotencyKeyReused)
}

/// The draft's 409: the first request with this key has not finished.
fn in_flight() -> Problem {
    Problem::new(Kind::Conflict, "The Idempotency-Key is in use by a request still running; retry once it has finished")
}
