//! Discovery and client-side load balancing for Kubernetes headless services.
//!
//! A headless service (`clusterIP: None`) has no virtual IP: its DNS name answers with the
//! addresses of its ready pods, and its SRV records name each pod
//! (`redis-0.redis-headless.default.svc.cluster.local`). Spreading requests, following pods as
//! they come and go, and sending writes to the primary are left to the client. This crate does
//! that, on top of `hickory-resolver`, and fits `tower`.
//!
//! # Layout
//!
//! ```text
//!  Target ("redis-headless:6379", "_redis._tcp.redis-headless…")           target.rs
//!    │
//!  Resolver  (resolv.conf search list + ndots, or a given server; A/AAAA/SRV)  resolve.rs
//!    │  Resolution { endpoints, ttl, exists }
//!  Discovery (background refresh: TTL, floor/ceiling/jitter, on failure, on demand)  discover.rs, refresh.rs
//!    │  watch<Arc<EndpointSet>>  ──▶  Updates: Reset / Add / Remove / DoesNotExist
//!    │                           ──▶  DiscoverServices: tower::discover::Discover
//!  Balancer<P: Policy> (First, Random, RoundRobin, P2c, ConsistentHash, Ordinal)   balance.rs, balance/
//!    │  pick(Route) → Pick: ordered Candidates, ejected endpoints skipped
//!    │  call(Route, f): pick, call, record, retry with backoff within a budget     retry.rs
//!    └─ outlier ejection (consecutive failures, base time × ejections, max %)      eject.rs
//! ```
//!
//! Start from [`Discovery::spawn`] (or [`Discovery::fixed`] for a static list), then wrap it in a
//! [`Balancer`] with a [`Policy`]. [`Resolver::resolve`] answers once, for tools that print.
//!
//! # Invariants
//!
//! - **The last good set keeps serving.** A lookup that fails (timeout, SERVFAIL, network)
//!   changes nothing but the counters in [`DiscoveryStats`] and a `tracing` warning. Only an
//!   answer changes the set, and NXDOMAIN *is* an answer: the Kubernetes DNS spec (2.4.1)
//!   answers NXDOMAIN for a headless service with no ready endpoint, so the set becomes empty
//!   and subscribers see [`Update::DoesNotExist`].
//! - **Never staler than the TTL.** Refreshes happen at the answer's TTL or earlier (jitter
//!   only shortens), with a floor so a TTL of 0 is not a query loop, and the resolver's cache is
//!   off.
//! - **Ejection never empties a set.** At most `max_ejection_percent` of the endpoints are
//!   ejected (at least one may be), and if every candidate of a pick is ejected they are tried
//!   anyway.
//! - **Errors say whether to retry.** [`Error::is_retryable`] and [`Error::side`] for discovery;
//!   the [`Classify`] trait for the caller's own errors.
//!
//! # Example: a balancer over a fixed list (no network)
//!
//! ```
//! use podns_client::{Balancer, Discovery, Endpoint, Ordinal, Route};
//!
//! let pod = |ip: &str, host: &str| Endpoint::new(ip.parse().unwrap()).with_hostname(host);
//! let discovery = Discovery::fixed([
//!     pod("10.0.0.1:6379", "redis-0"),
//!     pod("10.0.0.2:6379", "redis-1"),
//!     pod("10.0.0.3:6379", "redis-2"),
//! ]);
//! let balancer = Balancer::new(discovery, Ordinal::new());
//!
//! // Writes go to the primary, and only to it.
//! let writes: Vec<_> = balancer.pick(Route::write()).map(|c| c.endpoint().to_string()).collect();
//! assert_eq!(writes, ["10.0.0.1:6379 (redis-0)"]);
//!
//! // Reads go to the replicas in turn; the primary is the last fallback.
//! let read: Vec<_> = balancer.pick(Route::read()).map(|c| c.endpoint().ordinal).collect();
//! assert_eq!(read, [Some(1), Some(2), Some(0)]);
//! let read: Vec<_> = balancer.pick(Route::read()).map(|c| c.endpoint().ordinal).collect();
//! assert_eq!(read, [Some(2), Some(1), Some(0)]);
//! ```
//!
//! # Example: watching a service (needs DNS)
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use podns_client::{Discovery, RefreshConfig, Resolver, Target, Update};
//!
//! # async fn run() -> podns_client::Result<()> {
//! let resolver = Resolver::builder()
//!     .server("127.0.0.1:5353".parse().unwrap())
//!     .pod_search("default", "cluster.local")
//!     .build()?;
//! let target = Target::parse("_redis._tcp.redis-headless.default.svc.cluster.local")?;
//! let discovery = Discovery::spawn(resolver, target, RefreshConfig::default());
//! let mut updates = discovery.updates();
//! while let Some(update) = updates.next().await {
//!     match update {
//!         Update::Reset(all) => println!("now {} endpoints", all.len()),
//!         Update::Add(new) => new.iter().for_each(|e| println!("+ {e}")),
//!         Update::Remove(gone) => gone.iter().for_each(|e| println!("- {e}")),
//!         Update::DoesNotExist => println!("no such service, or no ready endpoint"),
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod balance;
pub mod discover;
pub mod eject;
pub mod endpoint;
pub mod error;
pub mod refresh;
pub mod resolve;
pub mod retry;
pub mod target;

pub use balance::{
    Balancer, BalancerBuilder, BalancerStats, Candidate, Candidates, ConsistentHash,
    EndpointStatus, First, InFlight, Op, Ordinal, OrdinalIndex, P2c, Pick, PickContext, Policy,
    Random, Ring, RoundRobin, Route,
};
pub use discover::{DiscoverServices, Discovery, DiscoveryStats, Source, Update, Updates};
pub use eject::{EndpointHealth, OutlierConfig};
pub use endpoint::{Endpoint, EndpointSet, SetState, is_dashed_address, ordinal_of, pod_hostname};
pub use error::{CallError, Error, NoEndpointsReason, Result, Side, StopReason};
pub use refresh::RefreshConfig;
pub use resolve::{Resolution, Resolver, ResolverBuilder, candidate_names};
pub use retry::{Backoff, BudgetConfig, Classify, RetryBudget, RetryPolicy};
pub use target::{LookupKind, Target};
