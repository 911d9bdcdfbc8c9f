//! The forwarder: one client query in, one response out, from the cache or from the upstreams.
//!
//! This module is responsible for the decisions around an exchange: cache lookup and insert
//! (what is cacheable, for how long), the bound on concurrent upstream queries, the order of
//! upstreams and failover between them, and the counters behind [`Forwarder::stats`]. Bytes
//! are the business of [`crate::message`], sockets that of [`crate::upstream`].
//!
//! | response | cached for | CoreDNS `cache` |
//! |---|---|---|
//! | NOERROR with answers | min(TTLs of answer and authority), ≤ `max_ttl` | same, `success` cap 3600 s |
//! | NXDOMAIN, NODATA with SOA | min(SOA TTL, SOA MINIMUM) (and answer TTLs), ≤ `max_negative_ttl` | same, `denial` cap 1800 s |
//! | NXDOMAIN, NODATA without SOA; referrals | not cached (RFC 2308 §5: "SHOULD NOT be cached") | same |
//! | any TTL 0 | not cached | CoreDNS raises it to `MINTTL` (5 s); we never serve longer than the owner allows |
//! | TC (only when TCP failed too) | not cached (never returned: TC over TCP is a failure) | same |
//! | our SERVFAIL after failed attempts | not cached: marked-down upstreams already make repeats cheap | 5 s (`servfail`) |

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rand::seq::SliceRandom;

use crate::cache::{Cache, Entry, Key};
use crate::config::{ForwardConfig, Policy, Result};
use crate::message::{self, BadQuery, ClientQuery, Render, Response, flags, rcode};
use crate::upstream::Upstream;

/// Forwards queries to upstream resolvers, with a cache. Cheap to clone (one `Arc`); clones
/// share cache, health and counters.
#[derive(Clone, Debug)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ForwardConfig,
    upstreams: Vec<Upstream>,
    /// `None` when `cache_capacity` is 0. A plain mutex: every critical section is a hash
    /// lookup and a few index writes; rendering happens outside it on a shared `Arc`.
    cache: Option<Mutex<Cache>>,
    /// Health deadlines are milliseconds since this instant (so they fit an atomic).
    epoch: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Mirrors of the cache's size, so `stats` does not take the lock.
    cache_entries: AtomicUsize,
    cache_bytes: AtomicUsize,
    overloaded: AtomicU64,
    servfails: AtomicU64,
}

/// A snapshot of the forwarder's counters (each read atomically, not all at one instant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardStats {
    /// Queries handed to [`Forwarder::forward`].
    pub requests: u64,
    /// Queries answered from the cache.
    pub cache_hits: u64,
    /// Queries the cache could not answer (includes all queries when the cache is off).
    pub cache_misses: u64,
    /// Entries in the cache (expired ones included until evicted or looked up).
    pub cache_entries: usize,
    /// Bytes charged to the cache.
    pub cache_bytes: usize,
    /// Upstream queries in flight now.
    pub in_flight: usize,
    /// Queries answered SERVFAIL at once because `max_in_flight` was reached.
    pub overloaded: u64,
    /// Queries answered SERVFAIL because every attempt failed (overload not included).
    pub servfails: u64,
    /// Per upstream, in configured order.
    pub upstreams: Vec<UpstreamStats>,
}

/// Counters of one upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamStats {
    /// Its address.
    pub addr: std::net::SocketAddr,
    /// Attempts sent to it.
    pub requests: u64,
    /// Attempts that failed (timeout, network error, malformed answer, SERVFAIL, REFUSED, …).
    pub failures: u64,
    /// Not marked down now.
    pub healthy: bool,
}

// === impl Forwarder ===

impl Forwarder {
    /// A forwarder for `config`; fails only on out-of-range values (see [`ForwardConfig`]).
    pub fn new(config: ForwardConfig) -> Result<Self> {
        config.validate()?;
        let upstreams = config
            .upstreams
            .iter()
            .copied()
            .map(Upstream::new)
            .collect();
        let cache = (config.cache_capacity > 0)
            .then(|| Mutex::new(Cache::new(config.cache_capacity, config.cache_max_bytes)));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                upstreams,
                cache,
                epoch: Instant::now(),
                in_flight: AtomicUsize::new(0),
                requests: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                cache_misses: AtomicU64::new(0),
                cache_entries: AtomicUsize::new(0),
                cache_bytes: AtomicUsize::new(0),
                overloaded: AtomicU64::new(0),
                servfails: AtomicU64::new(0),
            }),
        })
    }

    /// Answers `query`, the client's complete message (already validated by the caller: one
    /// question, QR = 0, OPCODE QUERY), from the cache or the upstreams.
    ///
    /// The response carries the client's ID and its question bytes (case preserved), an OPT
    /// only if the query had one, and fits `max_response_len` (additional records dropped
    /// first, then TC = 1 with no records, so the client retries over TCP). When every
    /// attempt failed, or `max_in_flight` upstream queries are already running, it is
    /// SERVFAIL. A query the caller should not have passed gets FORMERR (header readable) or
    /// an empty vector (send nothing: shorter than a header, or a response).
    ///
    /// Cancel-safe: dropping the future releases its in-flight slot.
    pub async fn forward(&self, query: &[u8], max_response_len: usize) -> Vec<u8> {
        let inner = &*self.inner;
        inner.requests.fetch_add(1, Ordering::Relaxed);
        let q = match ClientQuery::parse(query) {
            Ok(q) => q,
            Err(BadQuery::Drop) => return Vec::new(),
            Err(BadQuery::Malformed) => return message::formerr(query),
        };
        let key = inner.cache.as_ref().map(|_| key_of(&q));
        if let Some(key) = &key
            && let Some(entry) = inner.cache_get(key)
        {
            inner.cache_hits.fetch_add(1, Ordering::Relaxed);
            let age = Instant::now()
                .saturating_duration_since(entry.stored)
                .as_secs();
            let how = Render {
                age: u32::try_from(age).unwrap_or(u32::MAX),
                ttl_cap: entry.ttl_cap,
                udp_payload: inner.config.udp_payload,
                max_len: max_response_len,
            };
            return message::render(&entry.response, &q, how);
        }
        inner.cache_misses.fetch_add(1, Ordering::Relaxed);

        let Some(_slot) = InFlight::acquire(&inner.in_flight, inner.config.max_in_flight) else {
            inner.overloaded.fetch_add(1, Ordering::Relaxed);
            return message::error_response(&q, rcode::SERVFAIL, inner.config.udp_payload);
        };
        let Some(response) = inner.resolve(&q).await else {
            inner.servfails.fetch_add(1, Ordering::Relaxed);
            return message::error_response(&q, rcode::SERVFAIL, inner.config.udp_payload);
        };
        let lifetime = inner.lifetime(&response);
        let how = Render {
            age: 0,
            ttl_cap: lifetime.unwrap_or(u32::MAX),
            udp_payload: inner.config.udp_payload,
            max_len: max_response_len,
        };
        let out = message::render(&response, &q, how);
        if let (Some(key), Some(secs)) = (key, lifetime)
            && secs > 0
        {
            let stored = Instant::now();
            inner.cache_insert(
                key,
                Entry {
                    response: Arc::new(response),
                    stored,
                    expires: stored + std::time::Duration::from_secs(secs.into()),
                    ttl_cap: secs,
                },
            );
        }
        out
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ForwardStats {
        let i = &*self.inner;
        let now_ms = i.now_ms();
        ForwardStats {
            requests: i.requests.load(Ordering::Relaxed),
            cache_hits: i.cache_hits.load(Ordering::Relaxed),
            cache_misses: i.cache_misses.load(Ordering::Relaxed),
            cache_entries: i.cache_entries.load(Ordering::Relaxed),
            cache_bytes: i.cache_bytes.load(Ordering::Relaxed),
            in_flight: i.in_flight.load(Ordering::Relaxed),
            overloaded: i.overloaded.load(Ordering::Relaxed),
            servfails: i.servfails.load(Ordering::Relaxed),
            upstreams: i
                .upstreams
                .iter()
                .map(|u| UpstreamStats {
                    addr: u.addr,
                    requests: u.requests.load(Ordering::Relaxed),
                    failures: u.failures.load(Ordering::Relaxed),
                    healthy: u.healthy(now_ms),
                })
                .collect(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &ForwardConfig {
        &self.inner.config
    }
}

// === impl Inner ===

impl Inner {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Tries up to `max_attempts` upstreams in order; `None` when all failed.
    async fn resolve(&self, q: &ClientQuery<'_>) -> Option<Response> {
        let order = self.order();
        for &i in order.iter().cycle().take(self.config.max_attempts) {
            let up = &self.upstreams[i];
            match up
                .exchange(q, self.config.udp_payload, self.config.timeout)
                .await
            {
                Ok(r) => {
                    up.record_success();
                    return Some(r);
                }
                Err(e) => {
                    let down = up.record_failure(
                        self.config.max_fails,
                        self.config.fail_cooldown,
                        self.now_ms(),
                    );
                    tracing::debug!(upstream = %up.addr, error = %e, "upstream attempt failed");
                    if down {
                        tracing::warn!(
                            upstream = %up.addr,
                            error = %e,
                            cooldown = ?self.config.fail_cooldown,
                            "upstream marked down"
                        );
                    }
                }
            }
        }
        None
    }

    /// Upstream indices by policy, healthy ones first. Never empty: a marked-down upstream is
    /// tried later, not skipped, so an outage of all of them still gets attempts.
    fn order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.upstreams.len()).collect();
        if self.config.policy == Policy::Random {
            order.shuffle(&mut rand::rng());
        }
        let now = self.now_ms();
        // Stable: keeps the policy's order within each group.
        order.sort_by_key(|&i| !self.upstreams[i].healthy(now));
        order
    }

    /// How long `r` may be cached, in seconds; `None` when it must not be.
    fn lifetime(&self, r: &Response) -> Option<u32> {
        let cap = |d: std::time::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        if r.rcode == rcode::NOERROR && r.ancount > 0 {
            return r.min_ttl.map(|t| t.min(cap(self.config.max_ttl)));
        }
        // NXDOMAIN or NODATA (RFC 2308 §2.1, §2.2): only with an SOA (§5).
        let neg = r.soa_negative_ttl?;
        let neg = r.min_ttl.map_or(neg, |t| t.min(neg));
        Some(neg.min(cap(self.config.max_negative_ttl)))
    }

    fn cache_get(&self, key: &Key) -> Option<Entry> {
        let mut cache = self
            .cache
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let hit = cache.get(key, Instant::now());
        self.cache_entries.store(cache.len(), Ordering::Relaxed);
        self.cache_bytes.store(cache.bytes(), Ordering::Relaxed);
        hit
    }

    fn cache_insert(&self, key: Key, entry: Entry) {
        let Some(cache) = &self.cache else { return };
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(key, entry);
        self.cache_entries.store(cache.len(), Ordering::Relaxed);
        self.cache_bytes.store(cache.bytes(), Ordering::Relaxed);
    }
}

/// The cache key of a query: what changes the upstream's answer.
fn key_of(q: &ClientQuery<'_>) -> Key {
    let (qtype, qclass) = q.type_class();
    Key {
        name: q.lower_name(),
        qtype,
        qclass,
        dnssec_ok: q.dnssec_ok(),
        checking_disabled: q.flags & flags::CD != 0,
    }
}

/// One of `max_in_flight` slots, released on drop (also when the query's future is dropped).
struct InFlight<'a>(&'a AtomicUsize);

// === impl InFlight ===

impl<'a> InFlight<'a> {
    fn acquire(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
