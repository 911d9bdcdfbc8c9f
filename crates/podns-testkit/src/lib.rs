//! Dev-only test kit: a fake Kubernetes API server that speaks the real list/watch protocol.
//!
//! [`FakeApiServer`] is a real HTTP/1.1 server on `127.0.0.1` that the real `kube` client and
//! `kube::runtime::watcher` talk to unchanged, over plain http. Tests change its objects
//! ([`FakeApiServer::apply`], [`FakeApiServer::delete`]), break it on purpose
//! ([`FakeApiServer::compact`], [`FakeApiServer::drop_watches`], [`FakeApiServer::stop`],
//! [`FakeApiServer::set_hang`], [`FakeApiServer::set_delay`]) and read back what the client
//! asked ([`FakeApiServer::requests`]).
//!
//! ```text
//! kube client ─HTTP─▶ server (accept, hang, delay, record) ─▶ api::State (objects, history,
//!                                                              snapshots, watches)
//!             ◀─chunked JSON lines─ watch body ◀─ WatchMsg ────┘
//! ```
//!
//! What it serves: `GET` of `/api/v1/{namespaces,services,pods,endpoints,configmaps}`,
//! `/apis/discovery.k8s.io/v1/endpointslices`, `/apis/apps/v1/{statefulsets,deployments}`,
//! cluster-wide and namespaced (`/api/v1/namespaces/{ns}/services`), single objects, and
//! `/version`. Lists page with `limit`/`continue` over one snapshot and filter by
//! `labelSelector`; `watch=true` streams events after `resourceVersion` (or the current state
//! for `""`/`"0"`, and a streaming list for `sendInitialEvents=true`), honours `timeoutSeconds`
//! and sends bookmarks only with `allowWatchBookmarks=true`. Not served: writes (objects change
//! only through this API), field selectors (ignored), `resourceVersionMatch=Exact` lists of an
//! old but uncompacted version (answered with the current state), protobuf, TLS and auth (any
//! token is accepted).

mod api;
pub mod prometheus;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

use api::{ApiRequest, Reply, State, WatchMsg};

/// A fake Kubernetes API server; a cheap handle, clone it freely.
///
/// The server runs on the tokio runtime it was started on and stops with it.
#[derive(Clone, Debug)]
pub struct FakeApiServer {
    shared: Arc<Shared>,
}

/// One request as the server received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
}

/// What the accept loop, the connections and the handle share.
#[derive(Debug)]
struct Shared {
    /// Fixed at start; `resume` binds it again.
    addr: SocketAddr,
    state: Mutex<State>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// `true` while the server is hung: requests and watch streams wait for `false`.
    hang: watch::Sender<bool>,
    delay: Mutex<Duration>,
    accept: Mutex<Option<JoinHandle<()>>>,
    connections: Mutex<Vec<AbortHandle>>,
}

/// How long a dropped watch waits before failing, so that what was sent before arrives.
const RESET_GRACE: Duration = Duration::from_millis(50);

/// The response body: a whole JSON document or a watch stream.
type Body = UnsyncBoxBody<Bytes, io::Error>;

// === impl FakeApiServer ===

impl FakeApiServer {
    /// Starts a server on `127.0.0.1` on a free port.
    ///
    /// # Panics
    /// If no port can be bound on loopback, or outside a tokio runtime.
    pub async fn start() -> Self {
        let listener =
            bind("127.0.0.1:0".parse().expect("a valid address")).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a bound address");
        let server = Self {
            shared: Arc::new(Shared {
                addr,
                state: Mutex::new(State::default()),
                requests: Mutex::new(Vec::new()),
                hang: watch::Sender::new(false),
                delay: Mutex::new(Duration::ZERO),
                accept: Mutex::new(None),
                connections: Mutex::new(Vec::new()),
            }),
        };
        server.serve(listener);
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Writes a kubeconfig for `--kubeconfig`: server = [`Self::url`], no TLS, a dummy token,
    /// context `fake` (current) with namespace `default`.
    pub fn write_kubeconfig(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// The kubeconfig [`Self::write_kubeconfig`] writes.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\nusers:\n- name: fake\n  user:\n    token: fake-token\n",
            url = self.url()
        )
    }

    /// Creates or updates an object (by apiVersion, kind, namespace, name; a namespaced object
    /// without a namespace goes to `default`); returns its new resourceVersion. Open watches
    /// that match get ADDED or MODIFIED.
    ///
    /// # Panics
    /// For a kind the server does not serve, or an object without `metadata.name`.
    pub fn apply(&self, object: Value) -> u64 {
        self.state().apply(object)
    }

    /// Deletes an object; whether it was there. Open watches get DELETED with its last state.
    /// `namespace` is ignored for cluster-scoped kinds.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        self.state().delete(api_version, kind, namespace, name)
    }

    /// The last resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.state().resource_version()
    }

    /// Forgets all history, as etcd compaction does: a watch from an older resourceVersion gets
    /// an ERROR event with a `410 Expired` Status, a list `continue` of an older snapshot HTTP
    /// `410`. Open watches keep running.
    pub fn compact(&self) {
        self.state().compact();
    }

    /// Closes every open watch stream abruptly (no final chunk; the connection is dropped).
    pub fn drop_watches(&self) {
        self.state().drop_watches();
    }

    /// A BOOKMARK at the current resourceVersion to every open watch that asked for bookmarks.
    pub fn send_bookmarks(&self) {
        self.state().send_bookmarks();
    }

    /// An outage: stops listening (connections are refused) and closes every connection.
    pub fn stop(&self) {
        if let Some(task) = lock(&self.shared.accept).take() {
            task.abort();
        }
        for connection in lock(&self.shared.connections).drain(..) {
            connection.abort();
        }
        self.state().drop_watches();
    }

    /// Ends an outage: listens again on the same port.
    ///
    /// # Panics
    /// If the port cannot be bound again (another process took it).
    pub async fn resume(&self) {
        let mut last = None;
        // The old socket is closed by an aborted task; give it a moment if it lingers.
        for _ in 0..50 {
            match bind(self.shared.addr) {
                Ok(listener) => {
                    self.serve(listener);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("rebind {}: {last:?}", self.shared.addr);
    }

    /// A hung server: requests are accepted but not answered and open watch streams stall,
    /// until `set_hang(false)`, when everything held goes on.
    pub fn set_hang(&self, hang: bool) {
        self.shared.hang.send_replace(hang);
    }

    /// Answers every request this much later.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.shared.delay) = delay;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Open watch streams whose client is still connected.
    pub fn open_watches(&self) -> usize {
        self.state().open_watches()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Spawns the accept loop on `listener`.
    fn serve(&self, listener: TcpListener) {
        let shared = Arc::clone(&self.shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // As Go's net/http (so kube-apiserver) does: without it a watch event written
                // right after the response headers waits ~40 ms for a delayed ACK (Nagle).
                let _ = stream.set_nodelay(true);
                let conn_shared = Arc::clone(&shared);
                let connection = tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&conn_shared);
                        async move { Ok::<_, Infallible>(shared.handle(request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                let mut connections = lock(&shared.connections);
                connections.retain(|c| !c.is_finished());
                connections.push(connection.abort_handle());
            }
        });
        *lock(&self.shared.accept) = Some(task);
    }
}

// === impl Shared ===

impl Shared {
    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let recorded = RecordedRequest {
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            query: parse_query(request.uri().query().unwrap_or("")),
        };
        lock(&self.requests).push(recorded.clone());
        let _ = self.hang.subscribe().wait_for(|hang| !*hang).await;
        let delay = *lock(&self.delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let reply = lock(&self.state).handle(&ApiRequest {
            method: &recorded.method,
            path: &recorded.path,
            query: &recorded.query,
        });
        match reply {
            Reply::Json(code, value) => {
                let body = serde_json::to_vec(&value).expect("JSON values serialise");
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(
                        Full::new(Bytes::from(body))
                            .map_err(|never| match never {})
                            .boxed_unsync(),
                    )
                    .expect("a valid response")
            }
            Reply::Watch {
                events,
                timeout_seconds,
            } => {
                let deadline = tokio::time::Instant::now()
                    + Duration::from_secs(timeout_seconds.unwrap_or(1800));
                let stream = futures_util::stream::unfold(
                    (events, self.hang.subscribe()),
                    move |(mut events, mut hang)| async move {
                        let msg = tokio::select! {
                            msg = events.recv() => msg?,
                            () = tokio::time::sleep_until(deadline) => return None,
                        };
                        let _ = hang.wait_for(|hang| !*hang).await;
                        match msg {
                            WatchMsg::Line(line) => Some((Ok(Frame::data(line)), (events, hang))),
                            WatchMsg::End => None,
                            WatchMsg::Reset => {
                                // hyper drops its unflushed buffer when a body fails: give the
                                // lines sent before the reset time to reach the client.
                                tokio::time::sleep(RESET_GRACE).await;
                                let reset =
                                    io::Error::new(io::ErrorKind::ConnectionReset, "watch dropped");
                                Some((Err(reset), (events, hang)))
                            }
                        }
                    },
                );
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(StreamBody::new(stream).boxed_unsync())
                    .expect("a valid response")
            }
        }
    }
}

/// A listener with `SO_REUSEADDR`, so `resume` can take the port back right after `stop`.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not hide the real failure.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `a=1&b=x%3Dy` → `[("a","1"),("b","x=y")]`; `+` is a space (form encoding, as kube sends).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_percent_decoded() {
        assert_eq!(
            parse_query("labelSelector=app%3Dweb%2C%21legacy&watch=true&x=a+b&flag&bad=%zz"),
            [
                ("labelSelector".to_owned(), "app=web,!legacy".to_owned()),
                ("watch".to_owned(), "true".to_owned()),
                ("x".to_owned(), "a b".to_owned()),
                ("flag".to_owned(), String::new()),
                ("bad".to_owned(), "%zz".to_owned()),
            ]
        );
        assert_eq!(percent_decode("50%"), "50%");
    }
}
