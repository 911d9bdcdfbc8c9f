//! Publishing cost of zone changes, and the size of the zone, at 10k Services × 10 endpoints
//! (100k endpoints: headless Services whose endpoints have hostnames and one named port, so each
//! endpoint has its own A, PTR and SRV records: the largest zone per endpoint).
//!
//! - `upsert 1000-endpoint service`: a 1,000-endpoint headless Service replaced by one with
//!   1,000 other endpoints (every name removed and re-added), then a snapshot published;
//! - `upsert 1000-endpoint services, two alternating`: two 1,000-endpoint Services updated in
//!   turn (each to its other address range), so no update follows one of the same Service: the
//!   builder's cache of the last Service changed never applies (the honest case for a burst of
//!   changes across Services);
//! - `one endpoint changed`: one endpoint of one Service moves to another address, then a
//!   snapshot published;
//! - `replace_all, one service changed`: the pipeline's path: the whole 10k-Service view handed
//!   to [`ZoneBuilder::replace_all`] with one endpoint of one Service moved, then a snapshot;
//! - `full build`: [`podns_zone::build`] of the whole view, for comparison.
//!
//! The previous snapshot stays alive while the next is built, as the published one does, so
//! copy-on-write costs are included. Before the timings, the bench prints the heap held by a
//! snapshot and by the builder, counted by the counting allocator below (bytes requested; the
//! allocator's own per-allocation overhead is not included), `heap_size()` estimates, the
//! heap peak during the full build, and where the snapshot's bytes go by name class and part
//! of a node (`ZoneSnapshot::footprint`).
//!
//! Run with `cargo bench -p podns-zone --bench update`.

#![allow(missing_docs)]
// The counting allocator is the one use of `unsafe`: it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use podns_view::{ClusterView, PortView, ServiceView};
use podns_zone::{ZoneBuilder, ZoneConfig};
use support::ports;

/// Counts live heap bytes and allocations.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The largest `LIVE` seen since it was last reset.
static PEAK: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY:
// - every method forwards its arguments unchanged to `System`, which upholds the contract;
// - the counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        PEAK.fetch_max(live + layout.size() as isize, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        ALLOCATIONS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = new_size as isize - layout.size() as isize;
        let live = LIVE.fetch_add(grown, Ordering::Relaxed);
        // A realloc that moves holds both blocks for a moment.
        PEAK.fetch_max(live + new_size as isize, Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

mod support;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> (isize, usize) {
    (
        LIVE.load(Ordering::Relaxed),
        ALLOCATIONS.load(Ordering::Relaxed),
    )
}

const SERVICES: u32 = 10_000;
const ENDPOINTS: u32 = 10;

/// 10k headless Services × 10 endpoints in 100 namespaces, addresses in 10.0.0.0/8.
fn cluster() -> ClusterView {
    support::cluster(SERVICES)
}

/// Service `svc-<i>` of namespace `ns-<i % 100>`, as [`support::cluster`] names them.
fn service(i: u32, endpoints: u32, base: u32, ports: &Arc<[PortView]>) -> ServiceView {
    support::headless(
        &format!("ns-{}", i % 100),
        &format!("svc-{i}"),
        endpoints,
        base,
        ports,
    )
}

fn report_sizes(config: &ZoneConfig, view: &ClusterView) {
    let mb = |b: isize| b as f64 / 1e6;
    let start = live();
    PEAK.store(start.0, Ordering::Relaxed);
    let t = std::time::Instant::now();
    let snapshot = podns_zone::build(config, view);
    let took = t.elapsed();
    let after = live();
    let build_peak = PEAK.load(Ordering::Relaxed) - start.0;
    let snapshot_bytes = after.0 - start.0;
    eprintln!(
        "snapshot at {SERVICES}×{ENDPOINTS}: {} names, {:.1} MB in {} allocations (counted), \
         heap_size() {:.1} MB; build {took:?}, heap peak during the build {:.1} MB",
        snapshot.name_count(),
        mb(after.0 - start.0),
        after.1 - start.1,
        mb(snapshot.heap_size() as isize),
        mb(build_peak),
    );
    eprintln!("{}", snapshot.footprint());
    drop(snapshot);
    let start = live();
    let mut builder = ZoneBuilder::new(config.clone());
    builder.replace_all(view);
    let snapshot = builder.snapshot();
    let with_builder = live();
    drop(snapshot);
    // The builder shares every shard with the snapshot it published: what it holds beyond
    // them is the total less the snapshot's own size.
    eprintln!(
        "builder + snapshot: {:.1} MB in {} allocations (counted); builder beyond the shards \
         {:.1} MB (heap_size() {:.1} MB)",
        mb(with_builder.0 - start.0),
        with_builder.1 - start.1,
        mb(with_builder.0 - start.0 - snapshot_bytes),
        mb(builder.heap_size() as isize),
    );
}

fn bench(c: &mut Criterion) {
    let config = ZoneConfig::default();
    let view = cluster();
    report_sizes(&config, &view);

    let mut builder = ZoneBuilder::new(config.clone());
    builder.replace_all(&view);
    // The snapshot readers hold: it keeps the shards of the previous publish shared.
    let mut published;

    // (a) A 1,000-endpoint Service, alternating between two address ranges.
    let ports = ports();
    let big = [
        service(SERVICES, 1000, 0x0B00_0000, &ports),
        service(SERVICES, 1000, 0x0B10_0000, &ports),
    ];
    builder.upsert_service(&big[1]);
    published = builder.snapshot();
    let mut turn = 0;
    c.bench_function(
        "upsert 1000-endpoint service + snapshot (10k×10 zone)",
        |b| {
            b.iter(|| {
                turn ^= 1;
                builder.upsert_service(black_box(&big[turn]));
                published = builder.snapshot();
            })
        },
    );
    builder.remove_service(&big[0].key);

    // (a') Two 1,000-endpoint Services, each alternating between two address ranges, updated
    // in turn: every update is of the other Service than the one before.
    let pairs = [
        [
            service(SERVICES + 1, 1000, 0x0B20_0000, &ports),
            service(SERVICES + 1, 1000, 0x0B30_0000, &ports),
        ],
        [
            service(SERVICES + 2, 1000, 0x0B40_0000, &ports),
            service(SERVICES + 2, 1000, 0x0B50_0000, &ports),
        ],
    ];
    builder.upsert_service(&pairs[0][1]);
    builder.upsert_service(&pairs[1][1]);
    published = builder.snapshot();
    let mut step = 3usize;
    c.bench_function(
        "upsert 1000-endpoint services, two alternating + snapshot (10k×10 zone)",
        |b| {
            b.iter(|| {
                // 0: first → v0, 1: second → v0, 2: first → v1, 3: second → v1, …
                step = (step + 1) % 4;
                builder.upsert_service(black_box(&pairs[step % 2][step / 2]));
                published = builder.snapshot();
            })
        },
    );
    builder.remove_service(&pairs[0][0].key);
    builder.remove_service(&pairs[1][0].key);
    published = builder.snapshot();

    // (b) One endpoint of one Service moves between two addresses.
    let mut moved = [view.services[4321].clone(), view.services[4321].clone()];
    moved[1].endpoints[3].addresses = vec![Ipv4Addr::new(11, 200, 0, 1).into()];
    let mut turn = 0;
    c.bench_function("one endpoint changed + snapshot (10k×10 zone)", |b| {
        b.iter(|| {
            turn ^= 1;
            builder.upsert_service(black_box(&moved[turn]));
            published = builder.snapshot();
        })
    });

    // (d) The pipeline's path: the whole view handed over, one Service changed in it.
    let mut views = [view.clone(), view.clone()];
    views[1].services[4321] = moved[1].clone();
    builder.replace_all(&views[0]);
    published = builder.snapshot();
    let mut turn = 0;
    c.bench_function(
        "replace_all, one service changed + snapshot (10k×10 zone)",
        |b| {
            b.iter(|| {
                turn ^= 1;
                builder.replace_all(black_box(&views[turn]));
                published = builder.snapshot();
            })
        },
    );
    drop(views);
    black_box(&published);
    drop(published);
    drop(builder);

    // (c) The whole zone from scratch.
    let mut group = c.benchmark_group("full");
    group.sample_size(10);
    group.bench_function("full build 10k×10", |b| {
        b.iter(|| podns_zone::build(&config, black_box(&view)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
