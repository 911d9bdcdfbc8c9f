//! Pick cost per request for each policy at 3, 100 and 10,000 endpoints.
//!
//! Measures `Balancer::pick(route).next()`: reading the current set, the policy's choice, the
//! ejection check and building the candidate handle, which is what every request pays. The
//! policy state (a hash ring, the ordinal index) is built once before timing, as it is once per
//! set change in use.
//!
//! Run with: `cargo bench -p podns-client --bench pick`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use podns_client::{
    Balancer, ConsistentHash, Discovery, Endpoint, First, Ordinal, P2c, Policy, Random, RoundRobin,
    Route,
};

fn endpoints(n: u32) -> Vec<Endpoint> {
    (0..n)
        .map(|i| {
            let [a, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
            Endpoint::new(SocketAddr::from(([a, b, c, d], 6379)))
                .with_hostname(&format!("redis-{i}"))
        })
        .collect()
}

fn bench_policy<P: Policy>(c: &mut Criterion, name: &str, make: impl Fn() -> P, route: Route<'_>) {
    let mut group = c.benchmark_group(format!("pick/{name}"));
    for n in [3u32, 100, 10_000] {
        let balancer = Balancer::new(Discovery::fixed(endpoints(n)), make());
        // Build the policy state before timing.
        black_box(balancer.pick(route).next());
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(balancer.pick(black_box(route)).next()));
        });
    }
    group.finish();
}

fn picks(c: &mut Criterion) {
    bench_policy(c, "first", || First, Route::new());
    bench_policy(c, "random", Random::new, Route::new());
    bench_policy(c, "round_robin", RoundRobin::new, Route::new());
    bench_policy(c, "p2c", P2c::new, Route::new());
    bench_policy(
        c,
        "consistent_hash",
        ConsistentHash::new,
        Route::key("user:12345"),
    );
    bench_policy(c, "ordinal_read", Ordinal::new, Route::read());
    bench_policy(c, "ordinal_write", Ordinal::new, Route::write());
}

criterion_group!(benches, picks);
criterion_main!(benches);
