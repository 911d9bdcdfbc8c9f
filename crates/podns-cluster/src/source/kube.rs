//! Kubernetes API source: one kube-runtime watcher per kind, as [`ClusterEvent`]s.
//!
//! This module is responsible for keeping podns's view of a real cluster current: it lists and
//! watches Namespaces, Services, EndpointSlices (`discovery.k8s.io/v1`) and, when pod records
//! need them, Pods, and reports every change as a [`KubeEvent`] on a bounded channel. It leaves
//! storing the objects to [`crate::store::ClusterStore`] and the list/watch protocol itself
//! (pagination, bookmarks, resuming from the last resourceVersion, relisting after `410 Gone`)
//! to [`kube::runtime::watcher()`].
//!
//! ```text
//! spawn_watch ─▶ task per kind: watcher(Api<K>) ─▶ strip ─▶ Init / InitApply / InitDone ─▶ RelistStart / RelistItems / RelistDone
//!                     ▲                    │                 Apply / Delete            ─▶ Apply / Delete
//!                     └── backoff ◀── Err ─┴─▶ KubeEvent::Error, KubeStatus
//! ```
//!
//! Invariants:
//! - a (re)list is streamed as [`ClusterEvent::RelistItems`] that the consumer holds aside and
//!   applies at [`ClusterEvent::RelistDone`], so the live state keeps serving through a relist
//!   and an outage, and no list of every object of a kind is ever held here (the consumer
//!   keeps them in its compact form as they come);
//! - objects arrive without `metadata.managedFields`, the `kubectl.kubernetes.io/last-applied-configuration`
//!   annotation and the [`TRIGGER_TIME_ANNOTATION`] (read into [`KubeEvent::Change::triggered`]
//!   first): none of them decides an answer, and together they are often most of an object;
//! - the event channel is bounded: a slow consumer slows the watchers, it does not grow memory;
//! - after an error a kind waits an exponential, jittered backoff (from [`DEFAULT_BACKOFF_MIN`]
//!   up to [`KubeWatchConfig::backoff_max`]), reset by the next object it receives.

use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::future::Future;
use std::hash::BuildHasher;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Pod, PodStatus, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::object::{Kind, Object};
use crate::source::ClusterEvent;

/// The annotation the EndpointSlice controller sets to when the change that caused this slice
/// version happened (RFC 3339); CoreDNS measures DNS programming latency from it.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The annotation `kubectl apply` keeps a whole copy of the object in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The first delay after an error; it doubles (with jitter) up to [`KubeWatchConfig::backoff_max`].
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(200);

/// Most listed objects per [`ClusterEvent::RelistItems`] (about 0.8 MB of stripped
/// EndpointSlices of 10 endpoints).
const RELIST_CHUNK: usize = 100;

/// Events buffered between the watchers and their consumer before the watchers wait.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1024;

/// What to watch and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeWatchConfig {
    /// Watch Pods (only when pod records need them: a cluster's Pods are most of its objects).
    pub pods: bool,
    /// Watch EndpointSlices; `false` under CoreDNS-style `noendpoints`.
    pub endpoint_slices: bool,
    /// A server-side `labelSelector` for Services (e.g. `app!=legacy,tier`).
    pub service_label_selector: Option<String>,
    /// Objects per list page (`limit`); kube's and client-go's default is 500.
    pub page_size: u32,
    /// The first backoff after an error.
    pub backoff_min: Duration,
    /// The cap of the exponential re-watch backoff. 5 s by default: CoreDNS (client-go) takes
    /// 16–23 s to pick up changes after an API outage, we want faster.
    pub backoff_max: Duration,
    /// Capacity of [`KubeWatch::events`].
    pub channel_capacity: usize,
}

/// Building a client failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig file could not be read or parsed.
    #[error("kubeconfig {path}: {source}")]
    ReadKubeconfig {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig (given or found) names no usable context, cluster or user.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// Neither an in-cluster service account nor a kubeconfig was found.
    #[error("no Kubernetes configuration (in-cluster or kubeconfig): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The configuration was found but a client could not be built from it (TLS, auth).
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// One report from the watchers.
#[derive(Debug)]
pub enum KubeEvent {
    /// A change to apply to the store.
    Change {
        /// The change.
        event: ClusterEvent,
        /// When the watcher received it (for latency metrics).
        received: Instant,
        /// For an EndpointSlice `Apply`: its [`TRIGGER_TIME_ANNOTATION`], the start point of
        /// CoreDNS's programming-latency metric. `None` otherwise or when unparseable.
        triggered: Option<SystemTime>,
    },
    /// The first complete list of this kind was applied (sent once per kind, right after that
    /// list's [`ClusterEvent::RelistDone`]).
    Synced(Kind),
    /// A list or watch of this kind failed; the watcher backs off and retries.
    Error {
        /// The kind whose watcher failed.
        kind: Kind,
        /// What failed, for logs.
        message: String,
    },
}

/// The running watchers: their events and status. Dropping it stops them.
#[derive(Debug)]
pub struct KubeWatch {
    /// Every change, in order per kind.
    pub events: mpsc::Receiver<KubeEvent>,
    /// Shared status, for readiness and metrics.
    pub status: KubeStatus,
    /// One task per kind; aborted on drop.
    tasks: Vec<JoinHandle<()>>,
}

/// The watchers' health, cheap to clone and read from any thread.
#[derive(Clone, Debug)]
pub struct KubeStatus {
    inner: Arc<[KindStatus]>,
}

/// One kind's health.
#[derive(Debug)]
struct KindStatus {
    kind: Kind,
    /// A complete list of this kind was applied at least once.
    synced: AtomicBool,
    /// The last list/watch request of this kind was answered with success and no error followed.
    connected: AtomicBool,
    /// Errors, each of which restarted the watcher after a backoff.
    restarts: AtomicU64,
    /// Complete lists after the first (410 Gone, or an error during a list).
    relists: AtomicU64,
}

// === impl KubeWatchConfig ===

impl Default for KubeWatchConfig {
    /// Services, EndpointSlices and Namespaces; no Pods; no selector; pages of 500; backoff
    /// 200 ms … 5 s.
    fn default() -> Self {
        Self {
            pods: false,
            endpoint_slices: true,
            service_label_selector: None,
            page_size: 500,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: Duration::from_secs(5),
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
        }
    }
}

impl KubeWatchConfig {
    /// The kinds this configuration watches, in store order.
    pub fn kinds(&self) -> Vec<Kind> {
        let mut kinds = vec![Kind::Namespace, Kind::Service];
        if self.endpoint_slices {
            kinds.push(Kind::EndpointSlice);
        }
        if self.pods {
            kinds.push(Kind::Pod);
        }
        kinds
    }
}

/// A client for the cluster.
///
/// With `kubeconfig`, that file (and `context`, or its current context). Without it, kube's
/// inference: `$KUBECONFIG` or `~/.kube/config` (with `context` when given), else the in-cluster
/// service account.
pub async fn client(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Client, KubeError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|source| KubeError::ReadKubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            kube::Config::from_custom_kubeconfig(file, &options).await?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer().await?,
    };
    let mut config = config;
    // A hung API server (accepting, never answering) is noticed by this read timeout. Watches
    // ask the server to end them after WATCH_TIMEOUT_SECS (then they resume from the last
    // resourceVersion), so a quiet but healthy watch never runs into it; kube's default (295 s)
    // would leave podns believing a hung server connected for five minutes.
    config.read_timeout = Some(Duration::from_secs(u64::from(WATCH_TIMEOUT_SECS) + 15));
    Ok(Client::try_from(config)?)
}

/// How long the API server keeps one watch open (`timeoutSeconds`) before podns resumes it
/// from the last resourceVersion; the client's read timeout is this plus a margin.
pub const WATCH_TIMEOUT_SECS: u32 = 45;

/// Starts one watcher task per kind of `config` on the current tokio runtime.
///
/// # Panics
/// Outside a tokio runtime.
pub fn spawn_watch(client: Client, config: KubeWatchConfig) -> KubeWatch {
    let kinds = config.kinds();
    let status = KubeStatus::new(&kinds);
    let (tx, events) = mpsc::channel(config.channel_capacity.max(1));
    // Every request goes through `Observe`, so a watch that resumes silently after an outage
    // (no event to see) still marks its kind connected.
    let default_namespace = client.default_namespace().to_owned();
    let client = Client::new(
        Observe {
            client,
            status: status.clone(),
        },
        default_namespace,
    );
    let service_label_selector = config.service_label_selector;
    let base = watcher::Config::default()
        .page_size(config.page_size.max(1))
        .timeout(WATCH_TIMEOUT_SECS);
    let tasks = kinds
        .iter()
        .map(|&kind| {
            let watch = KindWatch {
                kind,
                tx: tx.clone(),
                status: status.clone(),
                backoff: Backoff::new(config.backoff_min, config.backoff_max),
            };
            match kind {
                Kind::Namespace => tokio::spawn(watch.run(
                    Api::<Namespace>::all(client.clone()),
                    base.clone(),
                    Object::from,
                )),
                Kind::Service => {
                    let mut wc = base.clone();
                    if let Some(selector) = &service_label_selector {
                        wc = wc.labels(selector);
                    }
                    tokio::spawn(watch.run(Api::<Service>::all(client.clone()), wc, Object::from))
                }
                Kind::EndpointSlice => tokio::spawn(watch.run(
                    Api::<EndpointSlice>::all(client.clone()),
                    base.clone(),
                    Object::from,
                )),
                Kind::Pod => tokio::spawn(watch.run(
                    Api::<Pod>::all(client.clone()),
                    base.clone(),
                    Object::from,
                )),
                other => unreachable!("KubeWatchConfig::kinds never lists {other}"),
            }
        })
        .collect();
    KubeWatch {
        events,
        status,
        tasks,
    }
}

// === impl KubeWatch ===

impl Drop for KubeWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

// === impl KubeStatus ===

impl KubeStatus {
    fn new(kinds: &[Kind]) -> Self {
        Self {
            inner: kinds
                .iter()
                .map(|&kind| KindStatus {
                    kind,
                    synced: AtomicBool::new(false),
                    connected: AtomicBool::new(false),
                    restarts: AtomicU64::new(0),
                    relists: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    fn of(&self, kind: Kind) -> Option<&KindStatus> {
        self.inner.iter().find(|k| k.kind == kind)
    }

    /// The watched kinds, in store order.
    pub fn kinds(&self) -> Vec<Kind> {
        self.inner.iter().map(|k| k.kind).collect()
    }

    /// Whether every watched kind was listed completely at least once.
    ///
    /// This is set when a watcher *sends* its first list; the consumer may not have applied it
    /// yet. Gate serving on having received [`KubeEvent::Synced`] of every kind instead.
    pub fn synced(&self) -> bool {
        self.inner.iter().all(|k| k.synced.load(Ordering::Relaxed))
    }

    /// Whether `kind` was listed completely at least once (false if it is not watched).
    pub fn is_synced(&self, kind: Kind) -> bool {
        self.of(kind)
            .is_some_and(|k| k.synced.load(Ordering::Relaxed))
    }

    /// Whether the last list/watch request of every watched kind succeeded and no error has
    /// happened since. A server that hangs is not noticed until a watch times out.
    pub fn connected(&self) -> bool {
        self.inner
            .iter()
            .all(|k| k.connected.load(Ordering::Relaxed))
    }

    /// Whether the last list/watch request of `kind` succeeded (false if it is not watched).
    pub fn is_connected(&self, kind: Kind) -> bool {
        self.of(kind)
            .is_some_and(|k| k.connected.load(Ordering::Relaxed))
    }

    /// How often `kind`'s watcher failed and restarted.
    pub fn restarts(&self, kind: Kind) -> u64 {
        self.of(kind)
            .map_or(0, |k| k.restarts.load(Ordering::Relaxed))
    }

    /// Restarts of all kinds.
    pub fn total_restarts(&self) -> u64 {
        self.inner
            .iter()
            .map(|k| k.restarts.load(Ordering::Relaxed))
            .sum()
    }

    /// How often `kind` was listed completely again after its first list (410 Gone, or a list
    /// that failed half-way).
    pub fn relists(&self, kind: Kind) -> u64 {
        self.of(kind)
            .map_or(0, |k| k.relists.load(Ordering::Relaxed))
    }

    fn set_connected(&self, kind: Kind, connected: bool) {
        if let Some(k) = self.of(kind) {
            k.connected.store(connected, Ordering::Relaxed);
        }
    }
}

// === the per-kind task ===

/// What one kind's task owns.
struct KindWatch {
    kind: Kind,
    tx: mpsc::Sender<KubeEvent>,
    status: KubeStatus,
    backoff: Backoff,
}

impl KindWatch {
    /// Runs the watcher until the receiver is gone.
    async fn run<K>(mut self, api: Api<K>, config: watcher::Config, wrap: fn(K) -> Object)
    where
        K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let stream = watcher(api, config);
        let mut stream = std::pin::pin!(stream);
        let mut listed = 0usize;
        // A list was asked for and its `RelistStart` is not sent yet: it goes out just before
        // the list's first items (or its `RelistDone`), so a list request that never answers
        // is no event at all.
        let mut start_pending = false;
        // Listed objects not sent yet: they go in chunks, one event per chunk rather than
        // per object (a wake-up of the consumer per object cost ~35 µs each at 20k objects).
        let mut chunk: Vec<Object> = Vec::new();
        while let Some(item) = stream.next().await {
            let received = Instant::now();
            let change = |event| KubeEvent::Change {
                event,
                received,
                triggered: None,
            };
            if start_pending
                && matches!(
                    item,
                    Ok(watcher::Event::InitApply(_) | watcher::Event::InitDone)
                )
            {
                start_pending = false;
                if self
                    .tx
                    .send(change(ClusterEvent::RelistStart(self.kind)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let event = match item {
                Ok(watcher::Event::Init) => {
                    // Not a success yet: the list request comes after this marker.
                    listed = 0;
                    start_pending = true;
                    chunk.clear();
                    continue;
                }
                Ok(watcher::Event::InitApply(object)) => {
                    self.succeeded();
                    listed += 1;
                    chunk.push(strip(wrap(object)).0);
                    if chunk.len() < RELIST_CHUNK {
                        continue;
                    }
                    change(ClusterEvent::RelistItems(std::mem::take(&mut chunk)))
                }
                Ok(watcher::Event::InitDone) => {
                    self.succeeded();
                    if !chunk.is_empty() {
                        let rest = change(ClusterEvent::RelistItems(std::mem::take(&mut chunk)));
                        if self.tx.send(rest).await.is_err() {
                            return;
                        }
                    }
                    let first = !self.status.is_synced(self.kind);
                    tracing::debug!(kind = %self.kind, objects = listed, first, "listed");
                    if self
                        .tx
                        .send(change(ClusterEvent::RelistDone(self.kind)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if let Some(k) = self.status.of(self.kind) {
                        if first {
                            k.synced.store(true, Ordering::Relaxed);
                        } else {
                            k.relists.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if !first {
                        continue;
                    }
                    KubeEvent::Synced(self.kind)
                }
                Ok(watcher::Event::Apply(object)) => {
                    self.succeeded();
                    let (object, triggered) = strip(wrap(object));
                    KubeEvent::Change {
                        event: ClusterEvent::Apply(object),
                        received,
                        triggered,
                    }
                }
                Ok(watcher::Event::Delete(object)) => {
                    self.succeeded();
                    KubeEvent::Change {
                        event: ClusterEvent::Delete(wrap(object).object_ref()),
                        received,
                        triggered: None,
                    }
                }
                Err(error) => {
                    self.status.set_connected(self.kind, false);
                    if let Some(k) = self.status.of(self.kind) {
                        k.restarts.fetch_add(1, Ordering::Relaxed);
                    }
                    let delay = self.backoff.next_delay();
                    tracing::warn!(kind = %self.kind, %error, retry_in = ?delay, "watch failed");
                    let message = error.to_string();
                    if self
                        .tx
                        .send(KubeEvent::Error {
                            kind: self.kind,
                            message,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            if self.tx.send(event).await.is_err() {
                return;
            }
        }
    }

    /// An object or a list arrived: the kind is connected and the backoff starts over.
    fn succeeded(&mut self) {
        self.status.set_connected(self.kind, true);
        self.backoff.reset();
    }
}

/// Drops what podns never reads and what makes objects large, reading the trigger time first.
///
/// Every kind loses `managedFields`, owner references and finalizers (bookkeeping of the
/// cluster's controllers), the `kubectl apply` copy and the trigger-time annotation. Beyond
/// that each kind keeps only what [`crate::view`] reads in cluster mode:
/// - EndpointSlice endpoints lose `hints` and `deprecatedTopology`, and their `targetRef` keeps
///   only `kind` and `name` (the namespace is the slice's; uid and resourceVersion name a Pod
///   version nothing here looks up);
/// - Services lose `status` (load-balancer ingress);
/// - Namespaces keep only metadata (labels decide `namespace_labels`);
/// - Pods keep metadata and `status.phase`/`podIP`/`podIPs` (what `pods verified` reads); the
///   spec and container statuses are most of a Pod and decide no answer.
///
/// `uid`, `resourceVersion`, `generation` and `creationTimestamp` stay: they are small, and
/// they are what one reads in logs to tell object versions apart.
pub fn strip(mut object: Object) -> (Object, Option<SystemTime>) {
    let meta = object.metadata_mut();
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    let mut triggered = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        triggered = annotations
            .remove(TRIGGER_TIME_ANNOTATION)
            .and_then(|t| parse_time(&t));
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
    // Fresh from the watcher, so `make_mut` copies nothing.
    match &mut object {
        Object::EndpointSlice(slice) => {
            for endpoint in &mut Arc::make_mut(slice).endpoints {
                endpoint.hints = None;
                endpoint.deprecated_topology = None;
                if let Some(target) = endpoint.target_ref.as_mut() {
                    *target = ObjectReference {
                        kind: target.kind.take(),
                        name: target.name.take(),
                        ..ObjectReference::default()
                    };
                }
            }
        }
        Object::Service(service) => Arc::make_mut(service).status = None,
        Object::Namespace(namespace) => {
            let namespace = Arc::make_mut(namespace);
            namespace.spec = None;
            namespace.status = None;
        }
        Object::Pod(pod) => {
            let pod = Arc::make_mut(pod);
            pod.spec = None;
            pod.status = pod.status.take().map(|status| PodStatus {
                phase: status.phase,
                pod_ip: status.pod_ip,
                pod_ips: status.pod_ips,
                ..PodStatus::default()
            });
        }
        _ => {}
    }
    (object, triggered)
}

/// An RFC 3339 time (`2026-11-03T10:00:00Z`, fractions allowed) as a `SystemTime`.
fn parse_time(text: &str) -> Option<SystemTime> {
    let ts: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    let nanos = u64::try_from(ts.as_nanosecond()).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_nanos(nanos))
}

// === backoff ===

/// Exponential backoff with jitter: the n-th delay is `min·2ⁿ⁻¹` scaled by a random factor in
/// [0.75, 1.25), never above `max`. Jitter keeps many podns replicas from retrying in step
/// against an API server that just came back.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    /// The un-jittered delay of the last retry; `None` after a success.
    current: Option<Duration>,
    /// Jitter source: std's randomly keyed hasher over a counter (no RNG dependency for this).
    random: RandomState,
    draws: u64,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min: min.min(max),
            max,
            current: None,
            random: RandomState::new(),
            draws: 0,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let base = self
            .current
            .map_or(self.min, |d| d.saturating_mul(2).min(self.max));
        self.current = Some(base);
        self.draws += 1;
        // 0.75 + [0, 0.5): a factor from 16 random bits.
        let bits = self.random.hash_one(self.draws) & 0xffff;
        let factor = 0.75 + (bits as f64) / f64::from(1u32 << 17);
        base.mul_f64(factor).min(self.max)
    }

    fn reset(&mut self) {
        self.current = None;
    }
}

// === request observer ===

/// A client service that records, per kind, whether its last request got a success answer.
#[derive(Clone)]
struct Observe {
    client: Client,
    status: KubeStatus,
}

impl tower::Service<http::Request<kube::client::Body>> for Observe {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        let client = self.client.clone();
        let status = self.status.clone();
        Box::pin(async move {
            let kind = kind_of_path(request.uri().path());
            let result = client.send(request).await;
            if let Some(kind) = kind {
                let ok = matches!(&result, Ok(r) if r.status().is_success());
                status.set_connected(kind, ok);
            }
            result
        })
    }
}

/// The watched kind a list/watch path is for, by its last segment.
fn kind_of_path(path: &str) -> Option<Kind> {
    match path.trim_end_matches('/').rsplit('/').next()? {
        "namespaces" => Some(Kind::Namespace),
        "services" => Some(Kind::Service),
        "endpointslices" => Some(Kind::EndpointSlice),
        "pods" => Some(Kind::Pod),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use super::*;

    #[test]
    fn backoff_grows_with_jitter_to_the_cap_and_resets() {
        let min = Duration::from_millis(200);
        let max = Duration::from_secs(5);
        let mut b = Backoff::new(min, max);
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        for (n, d) in delays.iter().enumerate() {
            let base = min.saturating_mul(1 << n).min(max);
            assert!(*d >= base.mul_f64(0.75) && *d <= max, "delay {n}: {d:?}");
            assert!(*d < base.mul_f64(1.25), "delay {n}: {d:?}");
        }
        assert!(delays[9] >= max.mul_f64(0.75), "capped, not stuck low");
        assert!(
            delays.windows(2).any(|w| w[0] != w[1]),
            "jittered: {delays:?}"
        );
        b.reset();
        assert!(b.next_delay() < min.mul_f64(1.25));
    }

    #[test]
    fn strip_keeps_what_answers_need() {
        let mut slice = EndpointSlice::default();
        slice.metadata.name = Some("web-abc".to_owned());
        slice.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        slice.metadata.annotations = Some(BTreeMap::from([
            (LAST_APPLIED_ANNOTATION.to_owned(), "{}".to_owned()),
            (
                TRIGGER_TIME_ANNOTATION.to_owned(),
                "2026-11-03T10:00:01.5Z".to_owned(),
            ),
        ]));
        let (object, triggered) = strip(Object::from(slice.clone()));
        assert_eq!(object.metadata().managed_fields, None);
        assert_eq!(object.metadata().annotations, None);
        assert_eq!(
            triggered,
            Some(UNIX_EPOCH + Duration::from_millis(1_793_700_001_500))
        );

        slice.metadata.annotations = Some(BTreeMap::from([
            ("team".to_owned(), "dns".to_owned()),
            (TRIGGER_TIME_ANNOTATION.to_owned(), "yesterday".to_owned()),
        ]));
        let (object, triggered) = strip(Object::from(slice));
        assert_eq!(triggered, None, "unparseable: no time, no error");
        assert_eq!(
            object.metadata().annotations,
            Some(BTreeMap::from([("team".to_owned(), "dns".to_owned())]))
        );
    }

    /// What `strip` drops decides no answer: the views of stripped objects are the views of
    /// the objects as the API server sent them, pods included.
    #[test]
    fn strip_changes_no_view() {
        let json = serde_json::json!([
            {"kind": "Namespace", "metadata": {"name": "prod", "labels": {"env": "prod"},
                "finalizers": ["x"]}, "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}},
            {"kind": "Service", "metadata": {"name": "web", "namespace": "prod", "uid": "u1",
                "labels": {"app": "web"}},
                "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}},
            {"kind": "EndpointSlice", "metadata": {"name": "web-1", "namespace": "prod",
                "labels": {"kubernetes.io/service-name": "web"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web",
                    "uid": "u1"}]},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.1"], "hostname": "web-0",
                    "conditions": {"ready": false}, "nodeName": "n1", "zone": "z",
                    "hints": {"forZones": [{"name": "z"}]},
                    "deprecatedTopology": {"a": "b"},
                    "targetRef": {"kind": "Pod", "namespace": "prod", "name": "web-0",
                        "uid": "p1", "resourceVersion": "7"}}],
                "ports": [{"name": "http", "port": 8080}]},
            {"kind": "Pod", "metadata": {"name": "web-0", "namespace": "prod",
                "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "i"}], "hostname": "web-0"},
                "status": {"phase": "Running", "podIP": "10.0.0.1",
                    "podIPs": [{"ip": "10.0.0.1"}], "hostIP": "192.168.0.1",
                    "conditions": [{"type": "Ready", "status": "True"}]}},
        ]);
        let objects: Vec<Object> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|v| match v["kind"].as_str().unwrap() {
                "Namespace" => {
                    Object::from(serde_json::from_value::<Namespace>(v.clone()).unwrap())
                }
                "Service" => Object::from(serde_json::from_value::<Service>(v.clone()).unwrap()),
                "EndpointSlice" => {
                    Object::from(serde_json::from_value::<EndpointSlice>(v.clone()).unwrap())
                }
                _ => Object::from(serde_json::from_value::<Pod>(v.clone()).unwrap()),
            })
            .collect();
        let stripped: Vec<Object> = objects.iter().map(|o| strip(o.clone()).0).collect();
        assert_ne!(stripped, objects, "something was dropped");
        let view = |objects: Vec<Object>| {
            let store = crate::store::ClusterStore::from_objects(objects);
            crate::view::cluster_view(
                &crate::controller::observed(&store),
                &crate::view::ViewConfig::default(),
            )
        };
        let full = view(objects);
        assert_eq!(full.pods.len(), 1);
        assert_eq!(
            full.services[0].endpoints[0].target_pod.as_deref(),
            Some("web-0")
        );
        assert_eq!(view(stripped), full);
    }

    #[test]
    fn paths_name_their_kind() {
        assert_eq!(kind_of_path("/api/v1/namespaces"), Some(Kind::Namespace));
        assert_eq!(kind_of_path("/api/v1/services"), Some(Kind::Service));
        assert_eq!(
            kind_of_path("/api/v1/namespaces/a/services"),
            Some(Kind::Service)
        );
        assert_eq!(
            kind_of_path("/apis/discovery.k8s.io/v1/endpointslices"),
            Some(Kind::EndpointSlice)
        );
        assert_eq!(kind_of_path("/api/v1/pods"), Some(Kind::Pod));
        assert_eq!(kind_of_path("/version"), None);
    }

    #[test]
    fn default_watches_services_slices_namespaces() {
        let config = KubeWatchConfig::default();
        assert_eq!(
            config.kinds(),
            [Kind::Namespace, Kind::Service, Kind::EndpointSlice]
        );
        let config = KubeWatchConfig {
            pods: true,
            endpoint_slices: false,
            ..config
        };
        assert_eq!(config.kinds(), [Kind::Namespace, Kind::Service, Kind::Pod]);
    }
}
