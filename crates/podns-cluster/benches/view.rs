//! One EndpointSlice change in a 10k-Service / 100k-endpoint cluster: what the incremental
//! view costs per event, against the full `observed + cluster_view` cluster mode runs today.
//!
//! Run with `cargo bench -p podns-cluster --bench view`.
//!
//! Each incremental iteration applies a real change (the slice alternates between two
//! versions whose endpoints differ in readiness), so the store replaces the object and the
//! Service's view is recomputed, compared and reported.

#[path = "../examples/support/fixtures.rs"]
#[allow(dead_code, unreachable_pub)]
mod fixtures;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use podns_cluster::{
    ClusterEvent, ClusterStore, IncrementalView, ViewConfig, cluster_view, observed,
};

const SERVICES: usize = 10_000;

fn slice_change(c: &mut Criterion) {
    let objects: Vec<_> = fixtures::cluster(SERVICES, 10)
        .into_iter()
        .map(|o| podns_cluster::source::kube::strip(o).0)
        .collect();
    let store = ClusterStore::from_objects(objects);
    let config = ViewConfig::default();
    let mut group = c.benchmark_group("slice_change_10k_services");

    let service = SERVICES / 2;
    let versions = [
        podns_cluster::source::kube::strip(fixtures::endpoint_slice(service, 0, 10, 1)).0,
        podns_cluster::source::kube::strip(fixtures::endpoint_slice(service, 0, 10, 2)).0,
    ];

    let mut incremental = IncrementalView::from_store(&store, config.clone());
    let mut flip = 0;
    group.bench_function("incremental_apply", |b| {
        b.iter(|| {
            flip ^= 1;
            let delta = incremental.apply(ClusterEvent::Apply(versions[flip].clone()));
            assert_eq!(delta.upserted.len(), 1);
            black_box(delta)
        });
    });

    let mut store = store;
    group.sample_size(10);
    group.bench_function("full_observed_cluster_view", |b| {
        b.iter(|| {
            flip ^= 1;
            store.apply(versions[flip].clone());
            black_box(cluster_view(&observed(&store), &config))
        });
    });
    group.finish();
}

criterion_group!(benches, slice_change);
criterion_main!(benches);
