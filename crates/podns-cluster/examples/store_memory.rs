//! Heap bytes of the cluster store, measured with a counting global allocator.
//!
//! Run with `cargo run --release -p podns-cluster --example store_memory`.
//!
//! Two cases, as the binary holds them (BENCHMARKS.md "where the memory is"):
//! - **cluster mode**: 10k Services and their EndpointSlices (100k endpoints, 10 per Service,
//!   one slice each), as the Kubernetes source hands them on; the full `observed +
//!   cluster_view` over a store of them, and the incremental view `serve` keeps instead;
//! - **standalone**: 10k Services over StatefulSets/Deployments of 10 replicas, as manifests in
//!   the store (packed as JSON), and what `derive` makes of them,
//!   with full pods (`get`, `lab`) and with lean ones (`ControllerConfig::lean_pods`), and
//!   the view as `serve` makes it (`standalone_view`: lean pods, no derived objects kept,
//!   Service views made one at a time).
//!
//! "live" is what stays allocated; "peak" is the high-water mark above the live heap before
//! the step, i.e. what the step needs transiently.
//!
//! This example is, like `podns-server/tests/no_alloc.rs`, an audited exception to
//! `unsafe_code = "deny"`: a `GlobalAlloc` impl is `unsafe` by definition.
#![allow(unsafe_code)]

#[path = "support/fixtures.rs"]
#[allow(dead_code, unreachable_pub)]
mod fixtures;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use podns_cluster::{
    ClusterStore, ControllerConfig, IncrementalView, ViewConfig, cluster_view, derive, observed,
    standalone_view,
};

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY:
// - every method forwards to `System` with the caller's own arguments, so `System`'s
//   guarantees (alignment, size, validity of returned pointers) are passed through unchanged;
// - the only extra work is relaxed atomic arithmetic, which neither allocates nor touches the
//   memory being managed.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        // SAFETY: forwarded with the caller's layout (see above).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout (see above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded with the caller's pointer and layout (see above).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Runs `step`, printing the live bytes it leaves and the peak it needed above `base`.
fn measure<T>(what: &str, step: impl FnOnce() -> T) -> T {
    let base = live();
    PEAK.store(base, Ordering::Relaxed);
    let out = black_box(step());
    let left = live() - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    println!(
        "{what:<52} +{:>8.1} MB  peak +{:>8.1} MB  heap {:>8.1} MB",
        mb(left),
        mb(peak),
        mb(live())
    );
    out
}

fn mb(bytes: isize) -> f64 {
    bytes as f64 / 1e6
}

fn main() {
    const SERVICES: usize = 10_000;
    println!(
        "size_of::<Object>() = {} bytes",
        size_of::<podns_cluster::Object>()
    );

    println!("\ncluster mode: {SERVICES} Services, 100k endpoints (10 per slice)");
    // As the Kubernetes source hands them on: stripped of what decides no answer.
    let objects = measure("source objects (Vec<Object>, stripped)", || {
        fixtures::cluster(SERVICES, 10)
            .into_iter()
            .map(|o| podns_cluster::source::kube::strip(o).0)
            .collect::<Vec<_>>()
    });
    let store = measure("ClusterStore (objects cloned in)", || {
        ClusterStore::from_objects(objects.iter().cloned())
    });
    let view = measure("observed(&store) + cluster_view (ClusterView kept)", || {
        cluster_view(&observed(&store), &ViewConfig::default())
    });
    drop(view);
    drop(store);
    // What `serve` keeps in cluster mode: the objects go in, parsed, and are dropped.
    let incremental = measure("IncrementalView (objects moved in, then dropped)", || {
        let mut incremental = IncrementalView::new(ViewConfig::default());
        incremental.apply(podns_cluster::ClusterEvent::Resync(objects));
        incremental
    });
    let view = measure("IncrementalView::view (whole ClusterView made)", || {
        incremental.view()
    });
    drop(view);
    drop(incremental);

    println!("\nstandalone: {SERVICES} Services over StatefulSets/Deployments of 10 replicas");
    let objects = measure("manifest objects (Vec<Object>)", || {
        fixtures::manifests(SERVICES, 10)
    });
    let store = measure("ClusterStore (objects moved in, kept as JSON)", || {
        ClusterStore::from_objects(objects)
    });
    let started = std::time::Instant::now();
    let decoded = black_box(store.iter().count());
    println!(
        "  the store's JSON: {:.1} MB; decoding all {decoded} objects once: {:.0} ms",
        mb(store.json_size() as isize),
        started.elapsed().as_secs_f64() * 1e3
    );
    // A /16 holds 65k pods; 100k need a wider pod network, as a real cluster of this size has.
    let full = ControllerConfig {
        pod_cidrs: vec!["10.0.0.0/8".parse().expect("a CIDR")],
        ..ControllerConfig::default()
    };
    let lean = ControllerConfig {
        lean_pods: true,
        ..full.clone()
    };
    for (what, config) in [
        ("full pods: get, lab", &full),
        ("lean pods: derive with lean_pods", &lean),
    ] {
        println!("  {what}");
        let derived = measure("derive (DerivedCluster kept)", || {
            derive(&store, config).expect("derives")
        });
        let view = measure("cluster_view (ClusterView kept)", || {
            cluster_view(&derived, &ViewConfig::default())
        });
        drop((view, derived));
    }
    println!("  lean pods: serve");
    for (what, with_pods) in [("pods verified", true), ("no pod records", false)] {
        let started = std::time::Instant::now();
        let view = measure(
            &format!("standalone_view, {what} (StandaloneView kept)"),
            || standalone_view(&store, &lean, &ViewConfig::default(), with_pods).expect("derives"),
        );
        println!(
            "  ({:.0} ms, objects decoded from the store's JSON included)",
            started.elapsed().as_secs_f64() * 1e3
        );
        measure("  StandaloneView::into_services, one at a time", || {
            view.into_services()
                .map(|s| s.endpoints.len())
                .sum::<usize>()
        });
    }
    drop(store);
}
