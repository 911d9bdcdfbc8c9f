//! Discovery: the endpoint set of a target over time.
//!
//! This module owns [`Discovery`], a handle on a background task that resolves a target, keeps
//! the current [`EndpointSet`] in a `tokio::sync::watch` channel, and re-resolves:
//!
//! - when the answer's TTL runs out (clamped and jittered by [`RefreshConfig`]);
//! - soon after a caller [reports a failed connection](Discovery::report_failure), at most once
//!   per [`RefreshConfig::failure_refresh_interval`];
//! - [on demand](Discovery::refresh).
//!
//! It is responsible for the rule that *bad input never costs good state*: a failed lookup is
//! logged (`tracing::warn!`), counted in [`DiscoveryStats`], retried with backoff, and the last
//! good set keeps serving; only an answer (NXDOMAIN, NODATA or records) changes the set.
//!
//! Changes are read three ways: the current set ([`Discovery::current`]), the watch channel
//! ([`Discovery::watch`]), or a stream of [`Update`]s ([`Discovery::updates`]), which each
//! subscriber computes by diffing what it last saw against the newest set, so a slow subscriber
//! never misses a change and never sees a stale one. [`DiscoverServices`] adapts the updates to
//! `tower::discover::Discover`.
//!
//! ```text
//!  Source (DNS via Resolver, or your own) ──resolve──▶ refresh loop ──send_if_modified──▶ watch<Arc<EndpointSet>>
//!        ▲                                   │ waits: TTL │ refresh() │ report_failure()         │
//!        └───────────────────────────────────┘                                                  ├─▶ current() / watch()
//!                                                                                               ├─▶ updates(): Reset/Add/Remove/DoesNotExist
//!                                                                                               └─▶ DiscoverServices: tower Change::{Insert,Remove}
//! ```

mod services;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::WatchStream;

pub use self::services::DiscoverServices;
use crate::{Endpoint, EndpointSet, RefreshConfig, Resolution, Resolver, Result, SetState, Target};

/// Where answers come from: DNS through a [`Resolver`] (see [`Discovery::spawn`]), or anything
/// else that can produce a [`Resolution`] (a control plane, a file, a test script).
pub trait Source: Send + Sync + 'static {
    /// Produces the current answer. `Err` means "no answer now" and keeps the last good set.
    fn resolve(&self) -> impl Future<Output = Result<Resolution>> + Send;
}

/// One change of an endpoint set, as a subscriber sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// The complete set: the first update of a subscription, and the first after
    /// [`DoesNotExist`](Self::DoesNotExist). Everything not in it is gone.
    Reset(Vec<Endpoint>),
    /// These endpoints joined (or their hostname or ordinal changed: they were also in the
    /// preceding `Remove`). A change of SRV weight or priority alone is no update (Kubernetes
    /// changes every weight on each scale); [`Discovery::current`] has the new values.
    Add(Vec<Endpoint>),
    /// These endpoints left.
    Remove(Vec<Endpoint>),
    /// NXDOMAIN: the service does not exist or has no ready endpoint; the set is empty.
    DoesNotExist,
}

/// Counters of one discovery, for logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// Lookups made (successful or not).
    pub lookups: u64,
    /// Lookups that failed without an answer (the last good set was kept).
    pub failures: u64,
    /// Failed lookups since the last answer.
    pub consecutive_failures: u32,
    /// Answers that changed the set.
    pub changes: u64,
    /// Calls to [`Discovery::report_failure`].
    pub failure_reports: u64,
    /// Refreshes brought forward by failure reports.
    pub failure_refreshes: u64,
    /// Refreshes asked by [`Discovery::refresh`].
    pub on_demand_refreshes: u64,
    /// The error of the last failed lookup, if the last lookup failed.
    pub last_error: Option<String>,
    /// TTL of the last answer.
    pub last_ttl: Option<Duration>,
    /// The wait chosen after the last lookup.
    pub next_refresh: Option<Duration>,
}

/// A handle on the endpoint set of one target, kept fresh by a background task.
///
/// Cheap to clone. The task stops when the last handle (including those held by [`Updates`],
/// [`DiscoverServices`] and balancers) is dropped.
///
/// ```
/// use podns_client::{Discovery, Endpoint};
/// let discovery = Discovery::fixed([
///     Endpoint::new("10.0.0.1:6379".parse().unwrap()).with_hostname("redis-0"),
///     Endpoint::new("10.0.0.2:6379".parse().unwrap()).with_hostname("redis-1"),
/// ]);
/// assert_eq!(discovery.current().len(), 2);
/// ```
#[derive(Clone)]
pub struct Discovery {
    /// State shared with the refresh task.
    shared: Arc<Shared>,
    /// Aborts the refresh task when the last handle goes; `None` for fixed sets.
    _task: Option<Arc<AbortOnDrop>>,
}

/// State shared between the handles and the refresh task.
struct Shared {
    /// What is being discovered, for logs.
    label: String,
    /// The current set; written only by the refresh task (or once, for fixed sets).
    tx: watch::Sender<Arc<EndpointSet>>,
    /// Wakes the task for an on-demand refresh.
    refresh: Notify,
    /// Wakes the task because a connection failed.
    failure: Notify,
    /// Counters; locked briefly once per lookup or report.
    stats: Mutex<DiscoveryStats>,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// === impl Discovery ===

impl Discovery {
    /// Starts discovering `target` through `resolver`. Must be called inside a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn run() -> podns_client::Result<()> {
    /// use podns_client::{Discovery, RefreshConfig, Resolver, Target, Update};
    /// use futures_util::StreamExt;
    /// let discovery = Discovery::spawn(
    ///     Resolver::system()?,
    ///     Target::parse("_redis._tcp.redis-headless.default.svc.cluster.local")?,
    ///     RefreshConfig::default(),
    /// );
    /// let mut updates = discovery.updates();
    /// while let Some(update) = updates.next().await {
    ///     println!("{update:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn spawn(resolver: Resolver, target: Target, config: RefreshConfig) -> Self {
        let label = target.to_string();
        Self::from_source(DnsSource { resolver, target }, label, config)
    }

    /// Starts discovering from any [`Source`]. Must be called inside a Tokio runtime.
    pub fn from_source<S: Source>(
        source: S,
        label: impl Into<String>,
        config: RefreshConfig,
    ) -> Self {
        let shared = Arc::new(Shared::new(label.into(), EndpointSet::pending()));
        let task = tokio::spawn(run(source, shared.clone(), config));
        Self {
            shared,
            _task: Some(Arc::new(AbortOnDrop(task.abort_handle()))),
        }
    }

    /// A set that never changes: for tests, benchmarks, and static configuration. Needs no
    /// runtime.
    pub fn fixed(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        let set = EndpointSet::new(endpoints).with_version(1);
        Self {
            shared: Arc::new(Shared::new("fixed".to_owned(), set)),
            _task: None,
        }
    }

    /// What is being discovered (the target as written).
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// The current set.
    pub fn current(&self) -> Arc<EndpointSet> {
        self.shared.tx.borrow().clone()
    }

    /// A watch receiver of the current set; it changes only when the set changes.
    pub fn watch(&self) -> watch::Receiver<Arc<EndpointSet>> {
        self.shared.tx.subscribe()
    }

    /// The stream of changes, starting with the current set as [`Update::Reset`] (or
    /// [`Update::DoesNotExist`]) once the first answer is in.
    pub fn updates(&self) -> Updates {
        Updates {
            rx: WatchStream::new(self.watch()),
            last: None,
            queue: VecDeque::new(),
            _discovery: self.clone(),
        }
    }

    /// Adapts the updates to `tower::discover::Discover`, making one service per endpoint.
    pub fn discover_services<M, S>(&self, make: M) -> DiscoverServices<M, S>
    where
        M: FnMut(&Endpoint) -> S,
    {
        DiscoverServices::new(self, make)
    }

    /// Waits for the first answer and returns the set. Returns at once if there is one.
    pub async fn ready(&self) -> Arc<EndpointSet> {
        let mut rx = self.watch();
        match rx.wait_for(|set| !set.is_pending()).await {
            Ok(set) => set.clone(),
            // The sender lives as long as `self`, so this cannot happen; answer with what we have.
            Err(_) => self.current(),
        }
    }

    /// Asks for a lookup now (coalesced with any pending request).
    pub fn refresh(&self) {
        self.shared.stats().on_demand_refreshes += 1;
        self.shared.refresh.notify_one();
    }

    /// Tells discovery a connection to `addr` failed: the endpoint may be gone, so re-resolve
    /// soon (at most once per [`RefreshConfig::failure_refresh_interval`]).
    pub fn report_failure(&self, addr: SocketAddr) {
        tracing::debug!(target = %self.shared.label, %addr, "connection failure reported");
        self.shared.stats().failure_reports += 1;
        self.shared.failure.notify_one();
    }

    /// A copy of the counters.
    pub fn stats(&self) -> DiscoveryStats {
        self.shared.stats().clone()
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.current();
        f.debug_struct("Discovery")
            .field("label", &self.shared.label)
            .field("state", &set.state())
            .field("endpoints", &set.len())
            .finish()
    }
}

// === impl Shared ===

impl Shared {
    fn new(label: String, set: EndpointSet) -> Self {
        Self {
            label,
            tx: watch::Sender::new(Arc::new(set)),
            refresh: Notify::new(),
            failure: Notify::new(),
            stats: Mutex::new(DiscoveryStats::default()),
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, DiscoveryStats> {
        // A panic while holding this lock leaves counters, not invariants: keep going.
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes an answer if it changes the set; returns whether it did.
    fn publish(&self, resolution: Resolution) -> bool {
        let next = if resolution.exists {
            EndpointSet::new(resolution.endpoints)
        } else {
            EndpointSet::does_not_exist()
        };
        self.tx.send_if_modified(|current| {
            if current.same_as(&next) {
                return false;
            }
            let version = current.version() + 1;
            *current = Arc::new(next.with_version(version));
            true
        })
    }
}

/// The refresh loop: resolve, publish, wait for the TTL or a nudge, again.
async fn run<S: Source>(source: S, shared: Arc<Shared>, config: RefreshConfig) {
    let mut consecutive_failures = 0u32;
    loop {
        let started = Instant::now();
        let result = source.resolve().await;
        let wait = match result {
            Ok(resolution) => {
                consecutive_failures = 0;
                let ttl = resolution.ttl;
                let (exists, count) = (resolution.exists, resolution.endpoints.len());
                let changed = shared.publish(resolution);
                let wait = config.refresh_after(ttl, rand::random());
                let mut stats = shared.stats();
                stats.lookups += 1;
                stats.changes += u64::from(changed);
                stats.consecutive_failures = 0;
                stats.last_error = None;
                stats.last_ttl = ttl;
                stats.next_refresh = Some(wait);
                drop(stats);
                if changed {
                    tracing::debug!(target = %shared.label, exists, endpoints = count, "endpoint set changed");
                }
                wait
            }
            Err(error) => {
                consecutive_failures = consecutive_failures.saturating_add(1);
                let wait = config.retry_after(consecutive_failures, rand::random());
                let kept = shared.tx.borrow().len();
                tracing::warn!(
                    target = %shared.label,
                    %error,
                    consecutive_failures,
                    kept_endpoints = kept,
                    retry_in = ?wait,
                    "DNS lookup failed; serving the last good endpoint set"
                );
                let mut stats = shared.stats();
                stats.lookups += 1;
                stats.failures += 1;
                stats.consecutive_failures = consecutive_failures;
                stats.last_error = Some(error.to_string());
                stats.next_refresh = Some(wait);
                wait
            }
        };
        let mut deadline = Instant::now() + wait;
        let earliest_failure_refresh = started + config.failure_refresh_interval;
        let mut failure_pending = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    if failure_pending {
                        shared.stats().failure_refreshes += 1;
                    }
                    break;
                }
                () = shared.refresh.notified() => break,
                () = shared.failure.notified() => {
                    failure_pending = true;
                    deadline = deadline.min(earliest_failure_refresh.max(Instant::now()));
                }
            }
        }
    }
}

/// Resolves a [`Target`] through a [`Resolver`].
struct DnsSource {
    resolver: Resolver,
    target: Target,
}

impl Source for DnsSource {
    async fn resolve(&self) -> Result<Resolution> {
        self.resolver.resolve(&self.target).await
    }
}

/// The stream of [`Update`]s of one subscriber; see [`Discovery::updates`].
///
/// Never ends while the discovery runs (it holds a handle on it).
pub struct Updates {
    /// The set as published.
    rx: WatchStream<Arc<EndpointSet>>,
    /// The set this subscriber last turned into updates; `None` before the first.
    last: Option<Arc<EndpointSet>>,
    /// Updates computed but not yet yielded (a change can be a `Remove` and an `Add`).
    queue: VecDeque<Update>,
    /// Keeps the discovery (and its task) alive.
    _discovery: Discovery,
}

// === impl Updates ===

impl Stream for Updates {
    type Item = Update;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Update>> {
        loop {
            if let Some(update) = self.queue.pop_front() {
                return Poll::Ready(Some(update));
            }
            match Pin::new(&mut self.rx).poll_next(cx) {
                Poll::Ready(Some(next)) => {
                    let updates = updates_between(self.last.as_deref(), &next);
                    if !next.is_pending() {
                        self.last = Some(next);
                    }
                    self.queue.extend(updates);
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updates")
            .field("discovery", &self._discovery.label())
            .field("queued", &self.queue.len())
            .finish()
    }
}

/// The updates that take a subscriber from `last` (`None`: nothing seen yet) to `next`.
fn updates_between(last: Option<&EndpointSet>, next: &EndpointSet) -> Vec<Update> {
    match (last.map(EndpointSet::state), next.state()) {
        (_, SetState::Pending) => vec![],
        (Some(SetState::DoesNotExist), SetState::DoesNotExist) => vec![],
        (_, SetState::DoesNotExist) => vec![Update::DoesNotExist],
        (None | Some(SetState::Pending | SetState::DoesNotExist), SetState::Exists) => {
            vec![Update::Reset(next.endpoints().to_vec())]
        }
        (Some(SetState::Exists), SetState::Exists) => {
            let Some(last) = last else { return vec![] };
            let (added, removed) = last.diff(next);
            let mut out = Vec::with_capacity(2);
            if !removed.is_empty() {
                out.push(Update::Remove(removed));
            }
            if !added.is_empty() {
                out.push(Update::Add(added));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests;
