//! Balancing: choosing, for each request, the endpoints to try and in which order.
//!
//! This module owns the [`Policy`] trait, the [`Candidates`] order a policy returns (the first
//! is preferred, the rest are retries), the [`Route`] a request carries (a key, read or write),
//! and [`Balancer`], which joins a [`Discovery`], a policy, outlier ejection
//! ([`eject`](crate::eject)) and retries ([`retry`](crate::retry)).
//!
//! | policy                | first candidate                                   | retries                  |
//! |-----------------------|---------------------------------------------------|--------------------------|
//! | [`First`]             | the first endpoint (ordinal 0, else lowest address) | the next ones in order |
//! | [`Random`]            | uniformly random                                   | the next ones in order   |
//! | [`RoundRobin`]        | the next in turn (exactly even)                    | the next ones in order   |
//! | [`P2c`]               | the less loaded of two random (in-flight count)    | the other, then in order |
//! | [`ConsistentHash`]    | the owner of the key on a hash ring                | the next owner on the ring, then in order |
//! | [`Ordinal`]           | writes: ordinal 0; reads: replicas in turn         | writes: none; reads: other replicas, then ordinal 0 |
//!
//! # Invariants
//! - A pick never blocks and never allocates per candidate: [`Candidates`] is a few integers and
//!   at most two shared index lists, and policy state derived from a set (a ring, the ordinal
//!   index) is built once per set change by [`Policy::prepare`].
//! - [`Pick`] skips ejected endpoints; only if *every* candidate is ejected does it yield them
//!   anyway (Envoy's panic mode), so ejection can never turn a non-empty set into no endpoint.
//! - When a policy's first choice is ejected, the policy is asked again (up to 3 times), so the
//!   ejected endpoint's share spreads as the policy spreads (round-robin stays even over the
//!   healthy endpoints) rather than falling to its neighbour.

mod consistent_hash;
mod first;
mod ordinal;
mod p2c;
mod random;
mod round_robin;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use self::consistent_hash::{ConsistentHash, DEFAULT_VNODES, Ring};
pub use self::first::First;
pub use self::ordinal::{Ordinal, OrdinalIndex};
pub use self::p2c::P2c;
pub use self::random::Random;
pub use self::round_robin::RoundRobin;
use crate::eject::{EndpointHealth, Outliers};
use crate::error::{NoEndpointsReason, StopReason};
use crate::{
    CallError, Classify, Discovery, Endpoint, EndpointSet, OutlierConfig, RetryBudget, RetryPolicy,
    SetState,
};

/// A load-balancing policy: given the endpoints and a route, the order to try them in.
///
/// Implementations hold only what must outlive one endpoint set (a counter, a random
/// generator); what derives from a set goes in [`State`](Self::State), built by
/// [`prepare`](Self::prepare) when the set changes.
pub trait Policy: Send + Sync + 'static {
    /// What the policy derives from one endpoint set (a hash ring, an ordinal index, or `()`).
    type State: Send + Sync + 'static;

    /// Builds the state for a new endpoint set (called once per change, not per request).
    fn prepare(&self, endpoints: &[Endpoint]) -> Self::State;

    /// The candidates for one request, as indices into [`PickContext::endpoints`]: the first is
    /// preferred, the rest are for retries. Ejected endpoints are skipped by the caller.
    fn pick(&self, state: &Self::State, ctx: &PickContext<'_>, route: &Route<'_>) -> Candidates;
}

/// What a policy sees when picking: the endpoints and their load.
#[derive(Clone, Copy, Debug)]
pub struct PickContext<'a> {
    endpoints: &'a [Endpoint],
    health: &'a [Arc<EndpointHealth>],
}

// === impl PickContext ===

impl<'a> PickContext<'a> {
    /// The endpoints, in canonical order.
    pub fn endpoints(&self) -> &'a [Endpoint] {
        self.endpoints
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether there is no endpoint.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Requests in flight to endpoint `index`.
    pub fn in_flight(&self, index: usize) -> u32 {
        self.health.get(index).map_or(0, |h| h.in_flight())
    }
}

/// Whether a request changes state (for [`Ordinal`]: writes go to the primary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Op {
    /// Reads (the default): any replica may serve them.
    #[default]
    Read,
    /// Writes: only the primary (ordinal 0) may serve them.
    Write,
}

/// What a request tells the policy: an optional affinity key and whether it writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Route<'a> {
    key: Option<&'a [u8]>,
    op: Op,
}

// === impl Route ===

impl<'a> Route<'a> {
    /// A read with no key.
    pub const fn new() -> Self {
        Self {
            key: None,
            op: Op::Read,
        }
    }

    /// A read.
    pub const fn read() -> Self {
        Self::new()
    }

    /// A write.
    pub const fn write() -> Self {
        Self {
            key: None,
            op: Op::Write,
        }
    }

    /// A read with an affinity key (for [`ConsistentHash`]).
    pub fn key<K: AsRef<[u8]> + ?Sized>(key: &'a K) -> Self {
        Self::new().with_key(key)
    }

    /// Returns the route with an affinity key.
    #[must_use]
    pub fn with_key<K: AsRef<[u8]> + ?Sized>(mut self, key: &'a K) -> Self {
        self.key = Some(key.as_ref());
        self
    }

    /// Returns the route with another operation.
    #[must_use]
    pub const fn with_op(mut self, op: Op) -> Self {
        self.op = op;
        self
    }

    /// The affinity key.
    pub fn key_bytes(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The operation.
    pub fn op(&self) -> Op {
        self.op
    }
}

/// An ordered list of candidate endpoint indices, computed lazily.
///
/// It is up to two *preferred* indices, then up to two *walks*: a walk visits `0..n` (or an
/// index list) once, starting at some offset and wrapping, skipping the preferred indices.
/// Walks must not overlap each other. Cloning is cheap (integers and `Arc`s).
///
/// ```
/// use podns_client::Candidates;
/// let order: Vec<usize> = Candidates::prefer(2).then_prefer(0).then_walk(4, 2).collect();
/// assert_eq!(order, [2, 0, 3, 1]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    head: [u32; 2],
    head_len: u8,
    head_pos: u8,
    walks: [Walk; 2],
    walks_len: u8,
    walk_pos: u8,
}

/// One walk of [`Candidates`].
#[derive(Clone, Debug, Default)]
struct Walk {
    /// The indices to visit; `None` means `0..len`.
    list: Option<Arc<[u32]>>,
    len: u32,
    start: u32,
    done: u32,
}

// === impl Candidates ===

impl Candidates {
    /// No candidate.
    pub fn none() -> Self {
        Self::default()
    }

    /// `start, start+1, …` over `0..n`, wrapping.
    pub fn walk(n: usize, start: usize) -> Self {
        Self::none().then_walk(n, start)
    }

    /// `index` first.
    pub fn prefer(index: usize) -> Self {
        Self::none().then_prefer(index)
    }

    /// Adds a preferred index (at most two; further ones are ignored, as are repeats).
    #[must_use]
    pub fn then_prefer(mut self, index: usize) -> Self {
        let index = to_u32(index);
        let len = usize::from(self.head_len);
        if len < 2 && !self.head[..len].contains(&index) {
            self.head[len] = index;
            self.head_len += 1;
        }
        self
    }

    /// Adds a walk over `0..n` from `start` (at most two walks).
    #[must_use]
    pub fn then_walk(self, n: usize, start: usize) -> Self {
        self.push_walk(None, n, start)
    }

    /// Adds a walk over `list` from position `start` (at most two walks).
    #[must_use]
    pub fn then_walk_list(self, list: Arc<[u32]>, start: usize) -> Self {
        let n = list.len();
        self.push_walk(Some(list), n, start)
    }

    fn push_walk(mut self, list: Option<Arc<[u32]>>, n: usize, start: usize) -> Self {
        let slot = usize::from(self.walks_len);
        if slot < 2 && n > 0 {
            let len = to_u32(n);
            self.walks[slot] = Walk {
                list,
                len,
                start: to_u32(start % n),
                done: 0,
            };
            self.walks_len += 1;
        }
        self
    }

    /// The first candidate, without consuming it.
    pub fn peek(&self) -> Option<usize> {
        if self.head_pos < self.head_len {
            return Some(self.head[usize::from(self.head_pos)] as usize);
        }
        self.clone().next()
    }

    fn is_head(&self, index: u32) -> bool {
        self.head[..usize::from(self.head_len)].contains(&index)
    }
}

impl Iterator for Candidates {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.head_pos < self.head_len {
            let index = self.head[usize::from(self.head_pos)];
            self.head_pos += 1;
            return Some(index as usize);
        }
        while self.walk_pos < self.walks_len {
            let walk = &mut self.walks[usize::from(self.walk_pos)];
            if walk.done >= walk.len {
                self.walk_pos += 1;
                continue;
            }
            let pos = (u64::from(walk.start) + u64::from(walk.done)) % u64::from(walk.len);
            walk.done += 1;
            let index = match &walk.list {
                Some(list) => list[pos as usize],
                None => pos as u32,
            };
            if !self.is_head(index) {
                return Some(index as usize);
            }
        }
        None
    }
}

/// How many times [`Balancer::pick`] asks the policy again when its first choice is ejected.
const REDRAWS: usize = 3;

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A load balancer over a [`Discovery`]: picks endpoints with a [`Policy`], skips ejected ones,
/// and runs calls with retries ([`call`](Self::call)).
///
/// Cheap to clone; clones share the health records, the retry budget and the policy.
///
/// ```
/// use podns_client::{Balancer, Discovery, Endpoint, RoundRobin, Route};
/// let discovery = Discovery::fixed((1..=3).map(|i| Endpoint::new(format!("10.0.0.{i}:80").parse().unwrap())));
/// let balancer = Balancer::new(discovery, RoundRobin::new());
/// let firsts: Vec<String> = (0..6)
///     .map(|_| balancer.pick(Route::new()).next().unwrap().endpoint().addr.to_string())
///     .collect();
/// assert_eq!(firsts, ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
/// ```
pub struct Balancer<P: Policy> {
    shared: Arc<Shared>,
    policy: Arc<P>,
    /// The policy state for the newest set seen; rebuilt when discovery publishes a new set.
    prepared: Arc<RwLock<Arc<Prepared<P::State>>>>,
}

/// Configures a [`Balancer`].
#[derive(Debug)]
pub struct BalancerBuilder<P> {
    discovery: Discovery,
    policy: P,
    outlier: OutlierConfig,
    retry: RetryPolicy,
    ready_timeout: Duration,
}

/// What every clone of a balancer shares, whatever the policy.
#[derive(Debug)]
struct Shared {
    discovery: Discovery,
    outliers: Outliers,
    retry: RetryPolicy,
    budget: RetryBudget,
    /// How long [`Balancer::call`] waits for discovery's first answer.
    ready_timeout: Duration,
    /// Health by address, for the addresses of the newest set.
    registry: Mutex<HashMap<SocketAddr, Arc<EndpointHealth>>>,
    stats: Counters,
}

/// One endpoint set with the health record of each endpoint, index for index.
#[derive(Debug)]
struct Members {
    set: Arc<EndpointSet>,
    health: Vec<Arc<EndpointHealth>>,
}

/// Members plus the policy's state for them.
struct Prepared<S> {
    members: Arc<Members>,
    state: S,
}

/// Counters of a balancer; see [`BalancerStats`].
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    budget_exhausted: AtomicU64,
    ejections: AtomicU64,
    no_endpoints: AtomicU64,
}

/// Counters of a balancer, for logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BalancerStats {
    /// Calls to [`Balancer::call`].
    pub calls: u64,
    /// Attempts made by those calls.
    pub attempts: u64,
    /// Retries made (attempts after the first).
    pub retries: u64,
    /// Retries refused by the budget.
    pub budget_exhausted: u64,
    /// Endpoints ejected.
    pub ejections: u64,
    /// Calls that found no endpoint.
    pub no_endpoints: u64,
}

/// The health of one endpoint, as [`Balancer::status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Requests in flight.
    pub in_flight: u32,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// How much longer the endpoint stays ejected, if it is.
    pub ejected_for: Option<Duration>,
    /// Times ejected (less those forgiven).
    pub ejections: u32,
    /// Successes recorded.
    pub successes: u64,
    /// Endpoint failures recorded.
    pub failures: u64,
}

// === impl BalancerBuilder ===

impl<P: Policy> BalancerBuilder<P> {
    /// Sets outlier ejection (default: [`OutlierConfig::default`]).
    #[must_use]
    pub fn outlier(mut self, config: OutlierConfig) -> Self {
        self.outlier = config;
        self
    }

    /// Sets retries (default: [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets how long [`Balancer::call`] waits for discovery's first answer (default 5 s).
    #[must_use]
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Builds the balancer.
    pub fn build(self) -> Balancer<P> {
        let shared = Arc::new(Shared {
            discovery: self.discovery,
            outliers: Outliers::new(self.outlier),
            budget: RetryBudget::new(self.retry.budget.clone()),
            retry: self.retry,
            ready_timeout: self.ready_timeout,
            registry: Mutex::new(HashMap::new()),
            stats: Counters::default(),
        });
        let set = shared.discovery.current();
        let health = shared.health_for(&set);
        let state = self.policy.prepare(set.endpoints());
        let prepared = Prepared {
            members: Arc::new(Members { set, health }),
            state,
        };
        Balancer {
            shared,
            policy: Arc::new(self.policy),
            prepared: Arc::new(RwLock::new(Arc::new(prepared))),
        }
    }
}

// === impl Balancer ===

impl<P: Policy> Balancer<P> {
    /// A balancer with default ejection and retries.
    pub fn new(discovery: Discovery, policy: P) -> Self {
        Self::builder(discovery, policy).build()
    }

    /// A builder, to configure ejection, retries and the ready timeout.
    pub fn builder(discovery: Discovery, policy: P) -> BalancerBuilder<P> {
        BalancerBuilder {
            discovery,
            policy,
            outlier: OutlierConfig::default(),
            retry: RetryPolicy::default(),
            ready_timeout: Duration::from_secs(5),
        }
    }

    /// The discovery this balancer follows.
    pub fn discovery(&self) -> &Discovery {
        &self.shared.discovery
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The candidates for one request, ejected endpoints skipped. Does not wait for discovery:
    /// before the first answer the pick is empty.
    pub fn pick(&self, route: Route<'_>) -> Pick {
        let prepared = self.prepared();
        let members = &prepared.members;
        let ctx = PickContext {
            endpoints: members.set.endpoints(),
            health: &members.health,
        };
        let mut order = self.policy.pick(&prepared.state, &ctx, &route);
        // When the first choice is ejected, ask the policy again, so the ejected endpoint's
        // share spreads the way the policy spreads (a new random draw, the next turn) instead
        // of all falling to its neighbour in the walk.
        if let Some(now) = self.shared.outliers.ejection_clock() {
            for _ in 0..REDRAWS {
                match order.peek() {
                    Some(first) if members.health.get(first).is_some_and(|h| h.is_ejected(now)) => {
                        order = self.policy.pick(&prepared.state, &ctx, &route);
                    }
                    _ => break,
                }
            }
        }
        Pick {
            shared: self.shared.clone(),
            members: members.clone(),
            fallback: Some(order.clone()),
            order,
            yielded: false,
            panic: false,
        }
    }

    /// Runs `f` on the picked endpoints until one succeeds: picks, calls, records the outcome
    /// (success, or a failure that counts toward ejection and makes discovery re-resolve), and
    /// retries [retryable](Classify::is_retryable) errors on the next candidate, after a
    /// jittered backoff and within the retry budget.
    ///
    /// Waits up to the ready timeout for discovery's first answer.
    ///
    /// ```
    /// use podns_client::{Balancer, Discovery, Endpoint, First, Route};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let discovery = Discovery::fixed([
    ///     Endpoint::new("10.0.0.1:80".parse().unwrap()),
    ///     Endpoint::new("10.0.0.2:80".parse().unwrap()),
    /// ]);
    /// let balancer = Balancer::new(discovery, First);
    /// // The first endpoint refuses connections; the call is retried on the second.
    /// let served_by = balancer
    ///     .call(Route::new(), |endpoint| async move {
    ///         if endpoint.addr.to_string() == "10.0.0.1:80" {
    ///             Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    ///         } else {
    ///             Ok(endpoint.addr)
    ///         }
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(served_by.to_string(), "10.0.0.2:80");
    /// # });
    /// ```
    pub async fn call<F, Fut, T, E>(&self, route: Route<'_>, mut f: F) -> Result<T, CallError<E>>
    where
        F: FnMut(Endpoint) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let shared = &*self.shared;
        shared.stats.calls.fetch_add(1, Ordering::Relaxed);
        let no_endpoints = |reason| {
            shared.stats.no_endpoints.fetch_add(1, Ordering::Relaxed);
            Err(CallError::NoEndpoints { reason })
        };
        if shared.discovery.current().is_pending()
            && tokio::time::timeout(shared.ready_timeout, shared.discovery.ready())
                .await
                .is_err()
        {
            return no_endpoints(NoEndpointsReason::NotResolved);
        }
        let mut pick = self.pick(route);
        if pick.members.set.is_empty() {
            return no_endpoints(match pick.members.set.state() {
                SetState::Pending => NoEndpointsReason::NotResolved,
                SetState::Exists | SetState::DoesNotExist => NoEndpointsReason::NoService,
            });
        }
        shared.budget.deposit();
        let max_attempts = shared.retry.max_attempts.max(1);
        let mut attempts = 0u32;
        let mut last = None;
        let stopped = loop {
            let Some(candidate) = pick.next() else {
                break StopReason::NoMoreCandidates;
            };
            if attempts > 0 {
                if !shared.budget.try_withdraw() {
                    shared
                        .stats
                        .budget_exhausted
                        .fetch_add(1, Ordering::Relaxed);
                    break StopReason::BudgetExhausted;
                }
                shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                let delay = shared.retry.backoff.delay(attempts, rand::random());
                tokio::time::sleep(delay).await;
            }
            attempts += 1;
            shared.stats.attempts.fetch_add(1, Ordering::Relaxed);
            let endpoint = candidate.endpoint().clone();
            let in_flight = candidate.start();
            match f(endpoint).await {
                Ok(value) => {
                    in_flight.success();
                    return Ok(value);
                }
                Err(error) => {
                    if error.is_endpoint_failure() {
                        in_flight.failure();
                    } else {
                        // The endpoint answered; the request was at fault (a 404, a bad key).
                        in_flight.success();
                    }
                    let retryable = error.is_retryable();
                    last = Some(error);
                    if !retryable {
                        break StopReason::NotRetryable;
                    }
                    if attempts >= max_attempts {
                        break StopReason::MaxAttempts;
                    }
                }
            }
        };
        match last {
            Some(error) => Err(CallError::Failed {
                error,
                attempts,
                stopped,
            }),
            None => no_endpoints(NoEndpointsReason::NoCandidate),
        }
    }

    /// The health of each endpoint of the current set.
    pub fn status(&self) -> Vec<EndpointStatus> {
        let prepared = self.prepared();
        let now = self.shared.outliers.now();
        let members = &prepared.members;
        members
            .set
            .endpoints()
            .iter()
            .zip(&members.health)
            .map(|(endpoint, health)| {
                let (successes, failures) = health.totals();
                EndpointStatus {
                    endpoint: endpoint.clone(),
                    in_flight: health.in_flight(),
                    consecutive_failures: health.consecutive_failures(),
                    ejected_for: health.ejected_for(now),
                    ejections: health.ejections(),
                    successes,
                    failures,
                }
            })
            .collect()
    }

    /// The addresses ejected now.
    pub fn ejected(&self) -> Vec<SocketAddr> {
        self.status()
            .into_iter()
            .filter(|s| s.ejected_for.is_some())
            .map(|s| s.endpoint.addr)
            .collect()
    }

    /// A copy of the counters.
    pub fn stats(&self) -> BalancerStats {
        let c = &self.shared.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BalancerStats {
            calls: get(&c.calls),
            attempts: get(&c.attempts),
            retries: get(&c.retries),
            budget_exhausted: get(&c.budget_exhausted),
            ejections: get(&c.ejections),
            no_endpoints: get(&c.no_endpoints),
        }
    }

    /// The prepared state for the newest set, rebuilding it if discovery published a new one.
    fn prepared(&self) -> Arc<Prepared<P::State>> {
        let set = self.shared.discovery.current();
        {
            let current = self
                .prepared
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if Arc::ptr_eq(&current.members.set, &set) {
                return current.clone();
            }
        }
        let mut current = self
            .prepared
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if Arc::ptr_eq(&current.members.set, &set) {
            return current.clone();
        }
        let health = self.shared.health_for(&set);
        let state = self.policy.prepare(set.endpoints());
        let prepared = Arc::new(Prepared {
            members: Arc::new(Members { set, health }),
            state,
        });
        *current = prepared.clone();
        prepared
    }
}

impl<P: Policy> Clone for Balancer<P> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            policy: self.policy.clone(),
            prepared: self.prepared.clone(),
        }
    }
}

impl<P: Policy + std::fmt::Debug> std::fmt::Debug for Balancer<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("discovery", &self.shared.discovery)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

// === impl Shared ===

impl Shared {
    /// The health records for `set`, index for index; forgets addresses that left.
    fn health_for(&self, set: &EndpointSet) -> Vec<Arc<EndpointHealth>> {
        let mut registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = HashMap::with_capacity(set.len());
        let health = set
            .endpoints()
            .iter()
            .map(|e| {
                let h = registry.remove(&e.addr).unwrap_or_default();
                next.insert(e.addr, h.clone());
                h
            })
            .collect();
        *registry = next;
        health
    }
}

/// The candidates of one request, as [`Candidate`]s; see [`Balancer::pick`].
pub struct Pick {
    shared: Arc<Shared>,
    members: Arc<Members>,
    order: Candidates,
    /// The order again, for panic mode (every candidate ejected).
    fallback: Option<Candidates>,
    /// Whether a candidate was yielded.
    yielded: bool,
    /// Whether ejection is being ignored.
    panic: bool,
}

// === impl Pick ===

impl Pick {
    /// The set this pick chose from.
    pub fn set(&self) -> &EndpointSet {
        &self.members.set
    }
}

impl Iterator for Pick {
    type Item = Candidate;

    fn next(&mut self) -> Option<Candidate> {
        loop {
            match self.order.next() {
                Some(index) if index < self.members.health.len() => {
                    let ejected = !self.panic
                        && self
                            .shared
                            .outliers
                            .ejection_clock()
                            .is_some_and(|now| self.members.health[index].is_ejected(now));
                    if !ejected {
                        self.yielded = true;
                        return Some(Candidate {
                            shared: self.shared.clone(),
                            members: self.members.clone(),
                            index,
                        });
                    }
                }
                Some(_) => {}
                None => {
                    let fallback = self.fallback.take()?;
                    if self.yielded {
                        return None;
                    }
                    // Every candidate is ejected: use them anyway rather than none.
                    self.panic = true;
                    self.order = fallback;
                }
            }
        }
    }
}

impl std::fmt::Debug for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pick")
            .field("order", &self.order)
            .field("panic", &self.panic)
            .finish_non_exhaustive()
    }
}

/// One endpoint of a [`Pick`]. [`start`](Self::start) it to send a request.
pub struct Candidate {
    shared: Arc<Shared>,
    members: Arc<Members>,
    index: usize,
}

// === impl Candidate ===

impl Candidate {
    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.members.set.endpoints()[self.index]
    }

    /// Counts a request in flight to this endpoint until the guard is dropped; report the
    /// outcome with [`InFlight::success`] or [`InFlight::failure`].
    pub fn start(self) -> InFlight {
        self.members.health[self.index].start();
        InFlight {
            shared: self.shared,
            members: self.members,
            index: self.index,
        }
    }
}

impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Candidate").field(self.endpoint()).finish()
    }
}

/// A request in flight to one endpoint. Dropping it without a report (a cancelled request)
/// only ends the in-flight count.
pub struct InFlight {
    shared: Arc<Shared>,
    members: Arc<Members>,
    index: usize,
}

// === impl InFlight ===

impl InFlight {
    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.members.set.endpoints()[self.index]
    }

    /// The request succeeded: resets the endpoint's failure count.
    pub fn success(self) {
        self.members.health[self.index].record_success();
    }

    /// The endpoint failed (refused, reset, timed out, answered 5xx): counts toward ejection,
    /// and asks discovery to re-resolve (the pod may be gone).
    pub fn failure(self) {
        let addr = self.endpoint().addr;
        if let Some(duration) = self
            .shared
            .outliers
            .on_failure(self.index, &self.members.health)
        {
            self.shared.stats.ejections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target = %self.shared.discovery.label(),
                endpoint = %self.endpoint(),
                ejected_for = ?duration,
                "endpoint ejected after consecutive failures"
            );
        }
        self.shared.discovery.report_failure(addr);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.members.health[self.index].finish();
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("InFlight").field(self.endpoint()).finish()
    }
}

/// A lock-free, seedable generator (SplitMix64) for the random policies: one atomic add per
/// draw, reproducible from a seed on one thread.
#[derive(Debug)]
pub(crate) struct SplitMix(AtomicU64);

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }

    pub(crate) fn next_u64(&self) -> u64 {
        let state = self.0.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed);
        mix64(state.wrapping_add(GOLDEN_GAMMA))
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; `n > 0`).
    pub(crate) fn below(&self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The SplitMix64 finaliser: a bijective mix with full avalanche.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
