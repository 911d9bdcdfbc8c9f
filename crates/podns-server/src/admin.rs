//! The admin HTTP server: liveness, readiness and Prometheus metrics for probes and scrapers.
//!
//! This module is responsible for three read-only endpoints over HTTP/1.1 (hyper 1), meant
//! for the kubelet's probes and a Prometheus scraper on a port of their own, never for clients:
//!
//! | request | answer |
//! |---|---|
//! | `GET`/`HEAD /health` | 200 `OK`: liveness. It is answered by a task on the server's runtime, so a wedged runtime fails it |
//! | `GET`/`HEAD /ready` | 200 `ready` (plus a `degraded:` note when set) while [`Readiness`] is ready; 503 `not ready: <reason>` otherwise |
//! | `GET`/`HEAD /metrics` | 200, [`crate::metrics::CONTENT_TYPE`], [`Metrics::encode`] |
//! | any other path | 404 |
//! | another method on those paths | 405 with `Allow: GET, HEAD` |
//!
//! Defences ([`AdminConfig`]):
//!
//! | limit | default | against |
//! |---|---|---|
//! | `header_read_timeout` | 5 s | Slowloris-style trickled headers and idle keep-alive connections holding slots |
//! | `max_connections` | 64 | descriptor exhaustion; connections beyond it are closed at once |
//! | `shutdown_grace` | 5 s | a connection keeping shutdown waiting |
//!
//! Request bodies are never read. On shutdown the listener closes at once (new connections are
//! refused), connections finish the request in flight and close.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::metrics::{CONTENT_TYPE, Metrics};

/// Back-off after a failed accept (e.g. EMFILE), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Limits of the admin server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// How long a client may take to send a request's headers, counted from when the server
    /// starts waiting for them (so it also closes idle keep-alive connections). Default 5 s.
    pub header_read_timeout: Duration,
    /// Open connections at most; more are closed at once. Default 64 (probes and a scraper
    /// need a handful).
    pub max_connections: usize,
    /// How long shutdown waits for open connections before closing them. Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            max_connections: 64,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Whether podns should receive traffic, and why not; cheap to clone (all clones share it).
///
/// Starts not ready ("starting"). The serve loop sets it ready once a complete snapshot is
/// published; a *degraded* note (e.g. "serving last known state; API server unreachable for
/// 12 s") is shown in the `/ready` body while it stays 200, because answering from the last
/// good state beats answering nothing.
#[derive(Clone, Debug)]
pub struct Readiness(Arc<ReadinessState>);

#[derive(Debug)]
struct ReadinessState {
    /// Read by every probe without taking the lock.
    ready: AtomicBool,
    notes: Mutex<Notes>,
}

#[derive(Debug, Default)]
struct Notes {
    /// Why not ready (shown in the 503 body).
    reason: String,
    /// Shown in the 200 body while set.
    degraded: Option<String>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

// === impl Readiness ===

impl Readiness {
    /// Not ready, reason "starting".
    pub fn new() -> Self {
        Self(Arc::new(ReadinessState {
            ready: AtomicBool::new(false),
            notes: Mutex::new(Notes {
                reason: "starting".to_owned(),
                degraded: None,
            }),
        }))
    }

    /// Ready to serve (the degraded note, if any, stays).
    pub fn set_ready(&self) {
        let mut notes = self.notes();
        notes.reason.clear();
        self.0.ready.store(true, Ordering::Release);
    }

    /// Not ready, for `reason` (shown in the 503 body).
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        let mut notes = self.notes();
        notes.reason = reason.into();
        self.0.ready.store(false, Ordering::Release);
    }

    /// Whether ready.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    /// Notes a degradation that does not stop serving (shown in the 200 body).
    pub fn set_degraded(&self, note: impl Into<String>) {
        self.notes().degraded = Some(note.into());
    }

    /// Clears the degraded note.
    pub fn clear_degraded(&self) {
        self.notes().degraded = None;
    }

    /// The status and body `/ready` answers with.
    fn report(&self) -> (StatusCode, String) {
        let notes = self.notes();
        // Read the flag under the lock, so reason and flag belong together.
        if self.is_ready() {
            let body = match &notes.degraded {
                Some(note) => format!("ready\ndegraded: {note}\n"),
                None => "ready\n".to_owned(),
            };
            (StatusCode::OK, body)
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {}\n", notes.reason),
            )
        }
    }

    fn notes(&self) -> std::sync::MutexGuard<'_, Notes> {
        self.0.notes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves the admin endpoints on `listener` with [`AdminConfig::default`] until `shutdown`
/// completes; see [`serve_admin_with`].
pub async fn serve_admin(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_admin_with(
        AdminConfig::default(),
        listener,
        metrics,
        readiness,
        shutdown,
    )
    .await
}

/// Serves the admin endpoints on `listener` until `shutdown` completes; then closes the
/// listener, lets open connections finish their request (at most `config.shutdown_grace`),
/// and returns. Must run inside a Tokio runtime (connections are tasks on it).
pub async fn serve_admin_with(
    config: AdminConfig,
    listener: TcpListener,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(addr = ?listener.local_addr().ok(), "serving admin HTTP");
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(%error, "admin accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "admin connection limit reached; closing");
            continue;
        };
        let metrics = metrics.clone();
        let readiness = readiness.clone();
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let response = respond(&request, &metrics, &readiness);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let mut stopping = false;
            loop {
                tokio::select! {
                    done = connection.as_mut() => {
                        if let Err(error) = done {
                            tracing::debug!(%error, %peer, "admin connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.wait_for(|stop| *stop), if !stopping => {
                        // Finish the request in flight, then close.
                        connection.as_mut().graceful_shutdown();
                        stopping = true;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            open = connections.len(),
            "admin shutdown grace over; closing"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// The response to one request (HEAD gets the same head; hyper leaves out the body).
fn respond<B>(
    request: &Request<B>,
    metrics: &Metrics,
    readiness: &Readiness,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(path, "/health" | "/ready" | "/metrics") {
        return text(StatusCode::NOT_FOUND, "not found\n".to_owned());
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".to_owned(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/health" => text(StatusCode::OK, "OK\n".to_owned()),
        "/ready" => {
            let (status, body) = readiness.report();
            text(status, body)
        }
        _ => {
            let mut response = text(StatusCode::OK, metrics.encode());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(CONTENT_TYPE),
            );
            response
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // Probes and scrapes want the state now, never a cached copy.
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
