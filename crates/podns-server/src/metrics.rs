//! Prometheus metrics: the query path's counters and the control plane's gauges, one registry.
//!
//! This module is responsible for [`Metrics`], the one shared (`Arc`) place every stage reports
//! to, and for its text exposition ([`Metrics::encode`], served by [`crate::admin`]). Two
//! halves with different rules:
//!
//! - **Query path** ([`QueryMetrics`], `metrics/dns.rs`): no lock and no allocation per query
//!   (`tests/no_alloc.rs` counts). Fixed arrays of atomics indexed by small enums, sharded per
//!   thread, summed by a custom prometheus-client [`Collector`] at scrape time.
//! - **Control plane** (zone objects, watches, API connection, programming latency, zone
//!   builds, forwarding): a few calls a second at most, so ordinary prometheus-client metrics
//!   (`Gauge`, `Family`, `Histogram`, which take locks) and a sample callback for forwarding.
//!
//! Names follow CoreDNS's (`coredns_dns_requests_total` → `podns_dns_requests_total`), so
//! existing dashboards need only the prefix changed. Every label takes a bounded set of values;
//! the series count is fixed by configuration, never by traffic:
//!
//! | metric | type | labels (values) | series at most |
//! |---|---|---|---|
//! | `podns_dns_requests_total` | counter | zone (Z), proto (udp, tcp), type (A AAAA SRV PTR TXT SOA NS CNAME ANY other) | Z × 2 × 10 |
//! | `podns_dns_requests_dropped_total` | counter | proto | 2 |
//! | `podns_dns_responses_rate_limited_total` | counter | action (drop, slip) | 2 |
//! | `podns_dns_responses_total` | counter | zone, rcode (NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED BADVERS other) | Z × 8 |
//! | `podns_dns_request_duration_seconds` | histogram | zone, type; 21 buckets 5 µs … 8.192 s | Z × 10 × 24 |
//! | `podns_dns_response_size_bytes` | histogram | zone, proto; CoreDNS's 14 size buckets 0 … 64000 | Z × 2 × 17 |
//! | `podns_dns_udp_batch_datagrams` | histogram | –; 1, 2, 4 … 64 datagrams per `recvmmsg` | 10 |
//! | `podns_zone_{services,endpoints,pods,names,serial}` | gauge | – | 5 |
//! | `podns_zone_last_update_timestamp_seconds` | gauge | – | 1 |
//! | `podns_zone_build_duration_seconds` | histogram | –; 0.1 ms × 2ⁿ … 13.1 s | 21 |
//! | `podns_kubernetes_dns_programming_duration_seconds` | histogram | service_kind (headless_with_selector, headless_without_selector, cluster_ip, other); CoreDNS's 1 ms × 2ⁿ … 524 s | 4 × 23 |
//! | `podns_watch_restarts_total` | counter | kind (at most 16 distinct, then `other`) | 17 |
//! | `podns_kubernetes_api_connected`, `podns_synced` | gauge (0/1) | – | 2 |
//! | `podns_forward_requests_total`, `podns_cache_{hits,misses}_total`, `podns_cache_entries` | counter, gauge | – | 4 |
//! | `podns_forward_upstream_{requests,failures}_total`, `podns_forward_upstream_healthy` | counter, gauge | to (at most 16 upstreams) | 48 |
//! | `podns_build_info` | gauge (1) | version | 1 |
//! | `podns_zone_snapshot_bytes` | gauge | – | 1 |
//! | `podns_process_resident_memory_peak_bytes` | gauge | – | 1 |
//! | `process_{cpu_seconds_total,open_fds,max_fds,virtual_memory_bytes,virtual_memory_max_bytes,resident_memory_bytes,start_time_seconds}` | counter, gauge | – | 7 |
//!
//! Z is the number of served zones plus one: the `zone` label is the served zone a name falls
//! in, or "." for everything else (forwarded or refused), as CoreDNS labels it; at most
//! [`MAX_ZONES`] served zones get their own label. Per-zone series appear on first use, like
//! client_golang's vectors, so an idle server exposes a short page.
//!
//! The `process_*` series are client_golang's, unprefixed, read from `/proc/self` at scrape time
//! (`metrics/process.rs`), as CoreDNS exports them; with the zone's size beside them, an
//! operator sees what the zone holds and what the process costs.
//!
//! The exposition is the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]), which every
//! Prometheus-compatible scraper reads; we do not offer OpenMetrics negotiation.

mod dns;
mod process;
#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use podns_zone::ZoneReader;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use dns::{MAX_ZONES, QueryMetrics, qtype_label, rcode_label};

/// `Content-Type` of [`Metrics::encode`]'s output: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Most distinct watch kinds counted under their own `kind` label; more count as `other`.
const MAX_WATCH_KINDS: usize = 16;
/// Longest `kind` label value kept (longer ones are cut at a character boundary).
const MAX_KIND_LEN: usize = 64;
/// Most upstreams exposed per scrape (the rest of a sample is ignored).
const MAX_UPSTREAMS: usize = 16;

/// Counts of what the published zone holds, for [`Metrics::set_zone_objects`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneObjects {
    /// Services the zone serves.
    pub services: u64,
    /// Endpoints (addresses) across those services.
    pub endpoints: u64,
    /// Pods known to the cluster state.
    pub pods: u64,
    /// Distinct names in the snapshot.
    pub names: u64,
    /// SOA serial of the published snapshot.
    pub serial: u32,
}

/// The `service_kind` label of `podns_kubernetes_dns_programming_duration_seconds`, with
/// CoreDNS's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKindLabel {
    /// `clusterIP: None` with a selector.
    HeadlessWithSelector,
    /// `clusterIP: None` without a selector (slices managed by someone else).
    HeadlessWithoutSelector,
    /// A Service with a virtual IP.
    ClusterIp,
    /// Anything else (ExternalName).
    Other,
}

impl ServiceKindLabel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeadlessWithSelector => "headless_with_selector",
            Self::HeadlessWithoutSelector => "headless_without_selector",
            Self::ClusterIp => "cluster_ip",
            Self::Other => "other",
        }
    }
}

/// What the forwarder reports at each scrape (plain data; the forwarding crate fills it).
/// Counters are totals since start; the forwarder keeps them, this crate only reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardSample {
    /// Queries forwarded (cache hits included).
    pub requests: u64,
    /// Answered from the cache.
    pub cache_hits: u64,
    /// Not in the cache (sent upstream).
    pub cache_misses: u64,
    /// Entries in the cache now.
    pub cache_entries: u64,
    /// Per upstream server, in configuration order; at most 16 are exposed.
    pub upstreams: Vec<UpstreamSample>,
}

/// One upstream server's totals in a [`ForwardSample`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamSample {
    /// The `to` label, e.g. `10.0.0.10:53` (from configuration, so bounded).
    pub address: String,
    /// Queries sent to it.
    pub requests: u64,
    /// Queries to it that failed (timeout, error, bad response).
    pub failures: u64,
    /// Whether the forwarder currently considers it usable.
    pub healthy: bool,
}

/// The label set of the programming latency histogram: `service_kind`.
type ServiceKindLabels = [(&'static str, &'static str); 1];

/// One per-upstream metric: name, help, type, and how to read it from a sample.
type UpstreamMetric = (
    &'static str,
    &'static str,
    MetricType,
    fn(&UpstreamSample) -> u64,
);

/// The forwarder's sample callback, if one was registered.
type ForwardFn = dyn Fn() -> ForwardSample + Send + Sync;

/// The published zone, for its size at scrape time, once [`Metrics::set_zone`] gave it.
type ZoneSlot = Arc<OnceLock<ZoneReader>>;

/// All of podns's metrics. Share it in an `Arc`; every method takes `&self`.
pub struct Metrics {
    /// Owns the metric descriptions and the collectors; encoded on each scrape.
    registry: Registry,
    /// The unprefixed `process_*` series, encoded after `registry`.
    process: Registry,
    /// Shared with the zone-size collector.
    zone: ZoneSlot,
    /// The query path's counters (also held by the registry's collector).
    query: Arc<QueryMetrics>,
    zone_services: Gauge,
    zone_endpoints: Gauge,
    zone_pods: Gauge,
    zone_names: Gauge,
    zone_serial: Gauge,
    last_update: Gauge<f64, AtomicU64>,
    zone_build: Histogram,
    programming: Family<ServiceKindLabels, Histogram, fn() -> Histogram>,
    watch_restarts: Family<[(&'static str, String); 1], Counter>,
    /// Distinct kinds with their own label (`other` not counted); held while deciding whether
    /// a new kind still gets one, so the cap is exact.
    watch_kinds: Mutex<usize>,
    api_connected: Gauge,
    synced: Gauge,
    /// Shared with the registry's forward collector.
    forward: Arc<Mutex<Option<Arc<ForwardFn>>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

fn programming_histogram() -> Histogram {
    // CoreDNS's buckets for dns_programming_duration_seconds: 1 ms × 2ⁿ, 20 buckets (~17 min).
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

// === impl Metrics ===

impl Metrics {
    /// Metrics for a server answering `zones` (e.g. `["cluster.local.", "in-addr.arpa.",
    /// "ip6.arpa."]`); names outside them count under zone ".". At most [`MAX_ZONES`] zones
    /// get their own label.
    pub fn new(zones: &[&str]) -> Self {
        let query = Arc::new(QueryMetrics::new(zones));
        let forward: Arc<Mutex<Option<Arc<ForwardFn>>>> = Arc::default();
        let mut registry = Registry::with_prefix("podns");
        let m = Self {
            query: query.clone(),
            zone_services: Gauge::default(),
            zone_endpoints: Gauge::default(),
            zone_pods: Gauge::default(),
            zone_names: Gauge::default(),
            zone_serial: Gauge::default(),
            last_update: Gauge::default(),
            zone_build: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            programming: Family::new_with_constructor(programming_histogram),
            watch_restarts: Family::default(),
            watch_kinds: Mutex::new(0),
            api_connected: Gauge::default(),
            synced: Gauge::default(),
            forward: forward.clone(),
            registry: Registry::default(),
            process: Registry::default(),
            zone: ZoneSlot::default(),
        };
        registry.register(
            "build",
            "A metric with a constant '1' value labeled by the version podns was built from",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(dns::DnsCollector(query)));
        let gauges = [
            (
                "zone_services",
                "Services in the published zone",
                &m.zone_services,
            ),
            (
                "zone_endpoints",
                "Endpoint addresses in the published zone",
                &m.zone_endpoints,
            ),
            ("zone_pods", "Pods in the cluster state", &m.zone_pods),
            (
                "zone_names",
                "Distinct names in the published zone",
                &m.zone_names,
            ),
            (
                "zone_serial",
                "SOA serial of the published zone",
                &m.zone_serial,
            ),
            (
                "kubernetes_api_connected",
                "1 while the Kubernetes API server is reachable, else 0",
                &m.api_connected,
            ),
            (
                "synced",
                "1 once the cluster state is complete (every initial list done), else 0",
                &m.synced,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "zone_last_update_timestamp_seconds",
            "When the cluster state last changed the published zone (Unix time)",
            m.last_update.clone(),
        );
        registry.register(
            "zone_build_duration_seconds",
            "Histogram of the time (in seconds) to rebuild and publish a zone snapshot",
            m.zone_build.clone(),
        );
        registry.register(
            "kubernetes_dns_programming_duration_seconds",
            "Histogram of the time (in seconds) from an endpoint change in the cluster to its answer being served",
            m.programming.clone(),
        );
        registry.register(
            "watch_restarts",
            "Counter of watch restarts (relists) per watched kind",
            m.watch_restarts.clone(),
        );
        registry.register_collector(Box::new(ForwardCollector(forward)));
        registry.register_collector(Box::new(ZoneSizeCollector(m.zone.clone())));
        let mut process = Registry::default();
        process.register_collector(Box::new(process::ProcessCollector));
        Self {
            registry,
            process,
            ..m
        }
    }

    /// The query path's counters, for the UDP and TCP loops.
    pub fn query(&self) -> &QueryMetrics {
        &self.query
    }

    /// Everything, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        // prometheus-client appends "." to the help of registered metrics (not of collectors'),
        // which is why their help strings above have none.
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail, and our collectors return errors only from it.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        // The text format has no end marker, so a second registry's text simply follows.
        let _ = prometheus_text::encode(&mut out, &self.process);
        out
    }

    /// Sets the zone object gauges after a publish.
    pub fn set_zone_objects(&self, z: ZoneObjects) {
        let set = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.zone_services, z.services);
        set(&self.zone_endpoints, z.endpoints);
        set(&self.zone_pods, z.pods);
        set(&self.zone_names, z.names);
        set(&self.zone_serial, u64::from(z.serial));
    }

    /// Counts a restart (relist) of the watch on `kind` (e.g. "services", "endpointslices").
    /// The first 16 distinct kinds get their own label; later ones count as `other`.
    pub fn watch_restart(&self, kind: &str) {
        let kind = truncate(kind, MAX_KIND_LEN);
        let mut kinds = self
            .watch_kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut labels = [("kind", kind.to_owned())];
        if self.watch_restarts.get(&labels).is_none() {
            if *kinds >= MAX_WATCH_KINDS {
                labels = [("kind", "other".to_owned())];
            } else {
                *kinds += 1;
            }
        }
        self.watch_restarts.get_or_create(&labels).inc();
    }

    /// Whether the Kubernetes API server is reachable now.
    pub fn set_api_connected(&self, connected: bool) {
        self.api_connected.set(i64::from(connected));
    }

    /// Whether the cluster state is complete (initial lists done).
    pub fn set_synced(&self, synced: bool) {
        self.synced.set(i64::from(synced));
    }

    /// When the cluster state last changed the published zone.
    pub fn set_last_update(&self, at: SystemTime) {
        let secs = at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_update.set(secs);
    }

    /// Observes the time from a change in the cluster (the EndpointSlice's
    /// `endpoints.kubernetes.io/last-change-trigger-time`) to its answer being published.
    pub fn observe_programming_latency(&self, service_kind: ServiceKindLabel, seconds: f64) {
        self.programming
            .get_or_create(&[("service_kind", service_kind.as_str())])
            .observe(seconds);
    }

    /// Observes the time to rebuild and publish one zone snapshot.
    pub fn observe_zone_build(&self, seconds: f64) {
        self.zone_build.observe(seconds);
    }

    /// Gives the published zone, whose size each scrape reports (`podns_zone_snapshot_bytes`);
    /// the first zone given is the one read.
    pub fn set_zone(&self, zone: ZoneReader) {
        let _ = self.zone.set(zone);
    }

    /// Registers the forwarder's sample callback, called once per scrape (replacing any earlier
    /// one). It should only read counters: it runs on the admin server's task.
    pub fn register_forward_stats(&self, f: impl Fn() -> ForwardSample + Send + Sync + 'static) {
        *self.forward.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
    }
}

/// `s` cut to at most `max` octets, at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Encodes the published zone's heap size, taken at scrape time.
struct ZoneSizeCollector(ZoneSlot);

impl std::fmt::Debug for ZoneSizeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneSizeCollector").finish_non_exhaustive()
    }
}

impl Collector for ZoneSizeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(zone) = self.0.get() else {
            return Ok(());
        };
        let bytes = zone.load_full().heap_size() as u64;
        encoder
            .encode_descriptor(
                "zone_snapshot_bytes",
                "Heap bytes held by the published zone snapshot (its names and precomputed answers).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&bytes)
    }
}

/// Encodes a [`ForwardSample`] taken at scrape time.
struct ForwardCollector(Arc<Mutex<Option<Arc<ForwardFn>>>>);

impl std::fmt::Debug for ForwardCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardCollector").finish_non_exhaustive()
    }
}

impl Collector for ForwardCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        // Take the callback out of the lock before calling it, so a slow forwarder does not
        // hold the lock against `register_forward_stats`.
        let source = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(source) = source else {
            return Ok(());
        };
        let s = source();
        let plain = [
            (
                "forward_requests",
                "Counter of queries forwarded (cache hits included).",
                MetricType::Counter,
                s.requests,
            ),
            (
                "cache_hits",
                "Counter of forwarded queries answered from the cache.",
                MetricType::Counter,
                s.cache_hits,
            ),
            (
                "cache_misses",
                "Counter of forwarded queries not in the cache.",
                MetricType::Counter,
                s.cache_misses,
            ),
            (
                "cache_entries",
                "Entries in the forwarding cache.",
                MetricType::Gauge,
                s.cache_entries,
            ),
        ];
        for (name, help, kind, value) in plain {
            let mut e = encoder.encode_descriptor(name, help, None, kind)?;
            match kind {
                MetricType::Counter => e.encode_counter::<NoLabelSet, u64, u64>(&value, None)?,
                _ => e.encode_gauge(&value)?,
            }
        }
        let upstreams = &s.upstreams[..s.upstreams.len().min(MAX_UPSTREAMS)];
        let per_upstream: [UpstreamMetric; 3] = [
            (
                "forward_upstream_requests",
                "Counter of queries sent to each upstream.",
                MetricType::Counter,
                |u| u.requests,
            ),
            (
                "forward_upstream_failures",
                "Counter of failed queries to each upstream.",
                MetricType::Counter,
                |u| u.failures,
            ),
            (
                "forward_upstream_healthy",
                "1 while the forwarder considers the upstream usable, else 0.",
                MetricType::Gauge,
                |u| u64::from(u.healthy),
            ),
        ];
        for (name, help, kind, value) in per_upstream {
            let mut e = encoder.encode_descriptor(name, help, None, kind)?;
            for u in upstreams {
                let labels = [("to", u.address.as_str())];
                let mut f = e.encode_family(&labels)?;
                let v = value(u);
                match kind {
                    MetricType::Counter => f.encode_counter::<NoLabelSet, u64, u64>(&v, None)?,
                    _ => f.encode_gauge(&v)?,
                }
            }
        }
        Ok(())
    }
}
