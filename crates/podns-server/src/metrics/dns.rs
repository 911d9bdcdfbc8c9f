//! Query-path counters: fixed arrays of atomics, sharded per thread, summed at scrape.
//!
//! This module is responsible for [`QueryMetrics`]: what the UDP/TCP loops call once per
//! message. Everything a label can take is fixed when [`QueryMetrics`] is built (served zones)
//! or at compile time (transport, the QTYPE and RCODE buckets, the histogram bounds), so a
//! recording is an index computation and a few relaxed `fetch_add`s into one flat slice: no
//! lock, no allocation, no hashing (unlike `Family::get_or_create`, which takes a read lock and
//! may insert). [`DnsCollector`] turns the cells into text at scrape time.
//!
//! Why shards: the UDP workers run one per core and every query touches the same few counters;
//! a single set of atomics would bounce those cache lines between cores on every query. Each
//! thread picks a shard once (round robin, in a `const` thread-local, which allocates nothing)
//! and writes only there; a scrape sums the shards. Shards are separated by a 128-octet guard so
//! no two share a cache line (or an adjacent-line prefetch pair).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::query::Transport;

/// Most served zones that get their own `zone` label; names in further zones count under ".".
pub const MAX_ZONES: usize = 16;
/// Most shards, whatever the core count (memory: about 9 KiB per shard with 3 zones).
const MAX_SHARDS: usize = 16;
/// Unused cells before each shard: 16 × 8 = 128 octets, two cache lines.
const GUARD: usize = 16;

/// The `type` label values, in bucket order; anything else is `other`.
const QTYPES: [(u16, &str); 9] = [
    (1, "A"),
    (28, "AAAA"),
    (33, "SRV"),
    (12, "PTR"),
    (16, "TXT"),
    (6, "SOA"),
    (2, "NS"),
    (5, "CNAME"),
    (255, "ANY"),
];
const QTYPE_BUCKETS: usize = QTYPES.len() + 1;

/// The `rcode` label values, in bucket order (RFC 1035 §4.1.1, RFC 6891 §9); anything else is
/// `other`.
const RCODES: [(u16, &str); 7] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
];
const RCODE_BUCKETS: usize = RCODES.len() + 1;

const TRANSPORTS: [&str; 2] = ["udp", "tcp"];

/// Request duration bucket bounds in nanoseconds: 5 µs … 100 µs (we answer in microseconds, so
/// CoreDNS's smallest bucket would hold nearly everything), then CoreDNS's
/// `plugin.TimeBuckets`, 0.25 ms × 2ⁿ up to 8.192 s.
pub(crate) const DURATION_BOUNDS_NS: [u64; 21] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_000_000,
    4_000_000,
    8_000_000,
    16_000_000,
    32_000_000,
    64_000_000,
    128_000_000,
    256_000_000,
    512_000_000,
    1_024_000_000,
    2_048_000_000,
    4_096_000_000,
    8_192_000_000,
];
/// Finite buckets plus +Inf.
const DURATION_CELLS: usize = DURATION_BOUNDS_NS.len() + 1;

/// Response size bucket bounds in octets: CoreDNS's `plugin.SizeBuckets`.
pub(crate) const SIZE_BOUNDS: [u64; 14] = [
    0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000,
];
const SIZE_CELLS: usize = SIZE_BOUNDS.len() + 1;

/// UDP receive batch size bucket bounds in datagrams, powers of two up to the batch of 64.
pub(crate) const BATCH_BOUNDS: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];
/// Finite buckets plus +Inf (never used while batches are at most 64).
const BATCH_CELLS: usize = BATCH_BOUNDS.len() + 1;

/// The `type` label for a QTYPE: one of A, AAAA, SRV, PTR, TXT, SOA, NS, CNAME, ANY, or
/// `other`.
pub fn qtype_label(qtype: u16) -> &'static str {
    label(&QTYPES, qtype)
}

/// The `rcode` label for a (possibly extended) RCODE: one of NOERROR, FORMERR, SERVFAIL,
/// NXDOMAIN, NOTIMP, REFUSED, BADVERS, or `other`.
pub fn rcode_label(rcode: u16) -> &'static str {
    label(&RCODES, rcode)
}

fn label(table: &[(u16, &'static str)], value: u16) -> &'static str {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or("other", |(_, name)| name)
}

fn bucket(table: &[(u16, &str)], value: u16) -> usize {
    table
        .iter()
        .position(|(v, _)| *v == value)
        .unwrap_or(table.len())
}

fn transport_index(transport: Transport) -> usize {
    match transport {
        Transport::Udp => 0,
        Transport::Tcp => 1,
    }
}

/// Per-query counters. Reached through [`crate::Metrics::query`]; every method is lock-free
/// and allocation-free.
pub struct QueryMetrics {
    /// Served zones in lower-cased wire form, in the order given; an invalid name is empty and
    /// never matches.
    zones: Box<[Box<[u8]>]>,
    /// The `zone` label of each index: the zones as given (lower-cased, with a final dot),
    /// then ".".
    zone_labels: Box<[String]>,
    layout: Layout,
    /// Number of shards; `cells` holds `shards × layout.stride` counters.
    shards: usize,
    cells: Box<[AtomicU64]>,
}

impl std::fmt::Debug for QueryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryMetrics")
            .field("zones", &self.zone_labels)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// Where each counter lives inside one shard (offsets in cells, after the guard).
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Zone indices, including the final ".".
    zones: usize,
    /// `[zone][transport][qtype]` request counts.
    requests: usize,
    /// `[zone][rcode]` response counts.
    responses: usize,
    /// `[transport]` dropped messages.
    dropped: usize,
    /// `[drop, slip]` UDP responses suppressed by response-rate limiting.
    rate_limited: usize,
    /// `[zone][qtype][bucket]` duration counts (non-cumulative; the last bucket is +Inf).
    duration: usize,
    /// `[zone][qtype]` duration sums in nanoseconds.
    duration_sum: usize,
    /// `[zone][transport][bucket]` response size counts (non-cumulative).
    size: usize,
    /// `[zone][transport]` response size sums in octets.
    size_sum: usize,
    /// `[bucket]` UDP receive batch sizes (non-cumulative), then their sum.
    udp_batch: usize,
    /// Cells per shard, guard included.
    stride: usize,
}

impl Layout {
    fn new(zones: usize) -> Self {
        let requests = GUARD;
        let responses = requests + zones * 2 * QTYPE_BUCKETS;
        let dropped = responses + zones * RCODE_BUCKETS;
        let rate_limited = dropped + 2;
        let duration = rate_limited + 2;
        let duration_sum = duration + zones * QTYPE_BUCKETS * DURATION_CELLS;
        let size = duration_sum + zones * QTYPE_BUCKETS;
        let size_sum = size + zones * 2 * SIZE_CELLS;
        let udp_batch = size_sum + zones * 2;
        let stride = udp_batch + BATCH_CELLS + 1;
        Self {
            zones,
            requests,
            responses,
            dropped,
            rate_limited,
            duration,
            duration_sum,
            size,
            size_sum,
            udp_batch,
            stride,
        }
    }

    fn request(&self, zone: usize, transport: usize, qtype: usize) -> usize {
        self.requests + (zone * 2 + transport) * QTYPE_BUCKETS + qtype
    }

    fn response(&self, zone: usize, rcode: usize) -> usize {
        self.responses + zone * RCODE_BUCKETS + rcode
    }

    fn duration_bucket(&self, zone: usize, qtype: usize, bucket: usize) -> usize {
        self.duration + (zone * QTYPE_BUCKETS + qtype) * DURATION_CELLS + bucket
    }

    fn duration_sum(&self, zone: usize, qtype: usize) -> usize {
        self.duration_sum + zone * QTYPE_BUCKETS + qtype
    }

    fn size_bucket(&self, zone: usize, transport: usize, bucket: usize) -> usize {
        self.size + (zone * 2 + transport) * SIZE_CELLS + bucket
    }

    fn size_sum(&self, zone: usize, transport: usize) -> usize {
        self.size_sum + zone * 2 + transport
    }
}

thread_local! {
    /// This thread's shard slot, taken from `NEXT_SLOT` on first use (`usize::MAX` = none yet).
    static THREAD_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

fn thread_slot() -> usize {
    THREAD_SLOT.with(|slot| {
        let mut s = slot.get();
        if s == usize::MAX {
            s = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
            slot.set(s);
        }
        s
    })
}

// === impl QueryMetrics ===

impl QueryMetrics {
    pub(crate) fn new(zones: &[&str]) -> Self {
        let zones = &zones[..zones.len().min(MAX_ZONES)];
        let wire: Box<[Box<[u8]>]> = zones.iter().map(|z| to_wire(z)).collect();
        let zone_labels = zones
            .iter()
            .map(|z| {
                let z = z.trim_end_matches('.').to_ascii_lowercase();
                format!("{z}.")
            })
            .chain(std::iter::once(".".to_owned()))
            .collect();
        let layout = Layout::new(zones.len() + 1);
        let shards = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_SHARDS);
        let cells = (0..shards * layout.stride)
            .map(|_| AtomicU64::new(0))
            .collect();
        Self {
            zones: wire,
            zone_labels,
            layout,
            shards,
            cells,
        }
    }

    /// Which served zone `qname_wire` (a wire-format name, as `wire::parse_question` leaves it)
    /// falls in: the index of the longest served zone it equals or lies below, or the number
    /// of served zones (the "." label: forwarded or refused) when none. ASCII case is ignored.
    pub fn zone_index(&self, qname_wire: &[u8]) -> usize {
        let mut pos = 0;
        // Suffixes from the longest: the first match is the longest zone.
        while pos < qname_wire.len() {
            let rest = &qname_wire[pos..];
            // Length octets are < 64, below 'A', so case folding leaves them alone.
            if let Some(i) = self.zones.iter().position(|z| rest.eq_ignore_ascii_case(z)) {
                return i;
            }
            let label = qname_wire[pos] as usize;
            if label == 0 {
                break;
            }
            pos += 1 + label;
        }
        self.zones.len()
    }

    /// The `zone` label of a zone index (out-of-range indices are ".").
    pub fn zone_label(&self, zone: usize) -> &str {
        &self.zone_labels[zone.min(self.layout.zones - 1)]
    }

    /// Counts one answered request: by zone, transport and QTYPE; its response by zone and
    /// RCODE; the time from receiving the request to sending the response (by zone and QTYPE);
    /// and the response size (by zone and transport). `zone` comes from
    /// [`QueryMetrics::zone_index`]; out of range counts as ".".
    pub fn record(
        &self,
        zone: usize,
        transport: Transport,
        qtype: u16,
        rcode: u16,
        response_len: usize,
        duration: Duration,
    ) {
        let l = &self.layout;
        let zone = zone.min(l.zones - 1);
        let t = transport_index(transport);
        let q = bucket(&QTYPES, qtype);
        let r = bucket(&RCODES, rcode);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let size = response_len as u64;
        let cells = self.shard();
        let inc = |i: usize, v: u64| {
            cells[i].fetch_add(v, Ordering::Relaxed);
        };
        inc(l.request(zone, t, q), 1);
        inc(l.response(zone, r), 1);
        let d = DURATION_BOUNDS_NS.partition_point(|&b| b < nanos);
        inc(l.duration_bucket(zone, q, d), 1);
        inc(l.duration_sum(zone, q), nanos);
        let s = SIZE_BOUNDS.partition_point(|&b| b < size);
        inc(l.size_bucket(zone, t, s), 1);
        inc(l.size_sum(zone, t), size);
    }

    /// Counts a message dropped unanswered (shorter than a header, QR = 1, or a TCP frame too
    /// short to be a message).
    pub fn record_dropped(&self, transport: Transport) {
        let i = self.layout.dropped + transport_index(transport);
        self.shard()[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a UDP response suppressed by response-rate limiting ([`crate::rrl`]): dropped,
    /// or sent as a TC=1 slip when `slipped`.
    pub fn record_rate_limited(&self, slipped: bool) {
        let i = self.layout.rate_limited + usize::from(slipped);
        self.shard()[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one receive of the batched UDP loop that took `datagrams` datagrams at once (one
    /// `recvmmsg` on Linux): two relaxed additions per batch, not per query.
    pub fn record_udp_batch(&self, datagrams: usize) {
        let l = &self.layout;
        let shard = self.shard();
        let bucket = BATCH_BOUNDS.partition_point(|&b| b < datagrams as u64);
        shard[l.udp_batch + bucket].fetch_add(1, Ordering::Relaxed);
        shard[l.udp_batch + BATCH_CELLS].fetch_add(datagrams as u64, Ordering::Relaxed);
    }

    /// This thread's shard.
    fn shard(&self) -> &[AtomicU64] {
        let start = (thread_slot() % self.shards) * self.layout.stride;
        &self.cells[start..start + self.layout.stride]
    }

    /// One counter summed over the shards.
    fn sum(&self, offset: usize) -> u64 {
        (0..self.shards)
            .map(|s| self.cells[s * self.layout.stride + offset].load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// Sum, count and `(bound, non-cumulative count)` pairs of one histogram: `cells` buckets
    /// from `first`, the last being +Inf. Count is the sum of the buckets read, so a scrape
    /// racing with recordings still shows `_count` equal to the +Inf bucket.
    fn histogram(&self, first: usize, bounds: &[f64], out: &mut Vec<(f64, u64)>) -> u64 {
        out.clear();
        let mut count = 0;
        for (i, bound) in bounds.iter().enumerate() {
            let n = self.sum(first + i);
            count += n;
            out.push((*bound, n));
        }
        count + self.sum(first + bounds.len())
    }
}

/// A presentation name ("cluster.local.") in lower-cased wire form; empty when it is not a
/// valid domain name (then it matches nothing).
fn to_wire(name: &str) -> Box<[u8]> {
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() && name.trim_end_matches('.').is_empty() {
            break; // the root zone
        }
        if label.is_empty() || label.len() > podns_zone::MAX_LABEL_LEN {
            return Box::new([]);
        }
        wire.push(label.len() as u8);
        wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    wire.push(0);
    if wire.len() > podns_zone::MAX_NAME_LEN {
        return Box::new([]);
    }
    wire.into_boxed_slice()
}

/// Encodes the query-path metrics at scrape time.
#[derive(Debug)]
pub(crate) struct DnsCollector(pub(crate) Arc<QueryMetrics>);

impl Collector for DnsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let m = &*self.0;
        let l = m.layout;

        let mut e = encoder.encode_descriptor(
            "dns_requests",
            "Counter of DNS requests answered, per zone, protocol and type.",
            None,
            MetricType::Counter,
        )?;
        for zone in 0..l.zones {
            for (t, proto) in TRANSPORTS.iter().enumerate() {
                for q in 0..QTYPE_BUCKETS {
                    let n = m.sum(l.request(zone, t, q));
                    // Series appear on first use, as client_golang's vectors do.
                    if n == 0 {
                        continue;
                    }
                    let labels = [
                        ("zone", m.zone_label(zone)),
                        ("proto", proto),
                        ("type", qtype_bucket_label(q)),
                    ];
                    e.encode_family(&labels)?
                        .encode_counter::<NoLabelSet, u64, u64>(&n, None)?;
                }
            }
        }

        let mut e = encoder.encode_descriptor(
            "dns_requests_dropped",
            "Counter of messages dropped unanswered (malformed header, QR set), per protocol.",
            None,
            MetricType::Counter,
        )?;
        for (t, proto) in TRANSPORTS.iter().enumerate() {
            let n = m.sum(l.dropped + t);
            e.encode_family(&[("proto", *proto)])?
                .encode_counter::<NoLabelSet, u64, u64>(&n, None)?;
        }

        let mut e = encoder.encode_descriptor(
            "dns_responses_rate_limited",
            "Counter of UDP responses suppressed by response-rate limiting, per action (drop, or slip: sent as TC=1 without records).",
            None,
            MetricType::Counter,
        )?;
        for (i, action) in ["drop", "slip"].iter().enumerate() {
            let n = m.sum(l.rate_limited + i);
            e.encode_family(&[("action", *action)])?
                .encode_counter::<NoLabelSet, u64, u64>(&n, None)?;
        }

        let mut e = encoder.encode_descriptor(
            "dns_responses",
            "Counter of responses per zone and rcode.",
            None,
            MetricType::Counter,
        )?;
        for zone in 0..l.zones {
            for r in 0..RCODE_BUCKETS {
                let n = m.sum(l.response(zone, r));
                if n == 0 {
                    continue;
                }
                let rcode = RCODES.get(r).map_or("other", |(_, name)| name);
                let labels = [("zone", m.zone_label(zone)), ("rcode", rcode)];
                e.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, u64, u64>(&n, None)?;
            }
        }

        let mut buckets = Vec::with_capacity(DURATION_CELLS);
        let bounds: Vec<f64> = DURATION_BOUNDS_NS
            .iter()
            .map(|&ns| ns as f64 / 1e9)
            .collect();
        let mut e = encoder.encode_descriptor(
            "dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took, from receipt to response, per zone and type.",
            None,
            MetricType::Histogram,
        )?;
        for zone in 0..l.zones {
            for q in 0..QTYPE_BUCKETS {
                let count = m.histogram(l.duration_bucket(zone, q, 0), &bounds, &mut buckets);
                if count == 0 {
                    continue;
                }
                let sum = m.sum(l.duration_sum(zone, q)) as f64 / 1e9;
                let labels = [
                    ("zone", m.zone_label(zone)),
                    ("type", qtype_bucket_label(q)),
                ];
                e.encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }

        let bounds: Vec<f64> = SIZE_BOUNDS.iter().map(|&b| b as f64).collect();
        let mut e = encoder.encode_descriptor(
            "dns_response_size_bytes",
            "Histogram of the size of responses in bytes, per zone and protocol.",
            None,
            MetricType::Histogram,
        )?;
        for zone in 0..l.zones {
            for (t, proto) in TRANSPORTS.iter().enumerate() {
                let count = m.histogram(l.size_bucket(zone, t, 0), &bounds, &mut buckets);
                if count == 0 {
                    continue;
                }
                let sum = m.sum(l.size_sum(zone, t)) as f64;
                let labels = [("zone", m.zone_label(zone)), ("proto", *proto)];
                e.encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }

        let bounds: Vec<f64> = BATCH_BOUNDS.iter().map(|&b| b as f64).collect();
        let count = m.histogram(l.udp_batch, &bounds, &mut buckets);
        if count > 0 {
            let sum = m.sum(l.udp_batch + BATCH_CELLS) as f64;
            encoder
                .encode_descriptor(
                    "dns_udp_batch_datagrams",
                    "Histogram of how many datagrams each receive of the batched UDP loop took at once (recvmmsg).",
                    None,
                    MetricType::Histogram,
                )?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

fn qtype_bucket_label(q: usize) -> &'static str {
    QTYPES.get(q).map_or("other", |(_, name)| name)
}
