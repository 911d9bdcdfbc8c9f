//! Update cost against Service size: publishing a change to one headless Service of E endpoints
//! (E = 1 … 5,000) inside a 10k Services × 10 endpoints zone.
//!
//! For each E, one Service of E endpoints (hostnames, one named port: A, PTR and SRV per
//! endpoint) is added to the zone, then replaced, in turn, by a version with every endpoint at
//! another address (`all`: every name of the Service removed and re-added) and by one with a
//! single endpoint moved (`one`), each followed by a snapshot, the previous snapshot alive as
//! the published one is; and (`other`) the same every-endpoint move alternating with one of a
//! second Service of E endpoints, so no update follows one of the same Service (the builder's
//! cache of the last Service changed never applies). Each case runs `ROUNDS` times; the median and the 90th percentile are
//! printed as a markdown table and written to `$UPDATE_CURVE_OUT` (default
//! `target/update-curve.json`) for `scripts/bench.d/plot_update_curve.py`.
//!
//! Run with `cargo bench -p podns-zone --bench update_curve` (`UPDATE_CURVE_SIZES` and
//! `UPDATE_CURVE_ROUNDS` override the sizes, comma-separated, and the rounds per case). Under `cargo test` (no `--bench`
//! argument) it runs a small smoke version and checks the zone answers the last version.

#![allow(missing_docs)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use podns_view::ServiceView;
use podns_zone::{Lookup, ZoneBuilder, ZoneConfig};

mod support;

/// One size of the curve: how long its updates took.
struct Point {
    endpoints: u32,
    all: Vec<Duration>,
    one: Vec<Duration>,
    other: Vec<Duration>,
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (services, sizes, rounds): (u32, Vec<u32>, usize) = if bench {
        (10_000, vec![1, 10, 100, 300, 1_000, 3_000, 5_000], 25)
    } else {
        (100, vec![1, 10], 2)
    };
    // `UPDATE_CURVE_SIZES=1000 UPDATE_CURVE_ROUNDS=400`: one point, more samples (for A/B runs
    // on a noisy machine).
    let sizes: Vec<u32> = std::env::var("UPDATE_CURVE_SIZES").map_or(sizes, |list| {
        list.split(',')
            .map(|n| n.trim().parse().expect("a size"))
            .collect()
    });
    let rounds =
        std::env::var("UPDATE_CURVE_ROUNDS").map_or(rounds, |n| n.parse().expect("a count"));
    let ports = support::ports();
    let mut background = support::cluster(services);
    // The updated Service's own namespace.
    background.namespaces.push("ns".to_owned());
    background.namespaces.sort();
    let mut builder = ZoneBuilder::new(ZoneConfig::default());
    builder.replace_all(&background);
    let mut published = builder.snapshot();

    let mut points = Vec::new();
    for &size in &sizes {
        // Addresses in 11.0.0.0/8, apart from the background's 10.0.0.0/8.
        let versions = [
            support::headless("ns", "big", size, 0x0B00_0000, &ports),
            support::headless("ns", "big", size, 0x0B80_0000, &ports),
        ];
        let mut moved = versions[0].clone();
        moved.endpoints[0].addresses = vec![Ipv4Addr::new(11, 255, 0, 1).into()];
        let one = [versions[0].clone(), moved];

        builder.upsert_service(&versions[0]);
        drop(std::mem::replace(&mut published, builder.snapshot()));
        let mut time = |pair: &[ServiceView; 2]| -> Vec<Duration> {
            (0..rounds)
                .map(|round| {
                    let started = Instant::now();
                    builder.upsert_service(&pair[(round + 1) % 2]);
                    let next = builder.snapshot();
                    let took = started.elapsed();
                    // The old snapshot is dropped outside the timing, as `serve` drops it off
                    // the event loop.
                    drop(std::mem::replace(&mut published, black_box(next)));
                    took
                })
                .collect()
        };
        let all = time(&versions);
        let one = time(&one);
        // A second Service of the same size, at addresses of its own.
        let second = [
            support::headless("ns", "big2", size, 0x0B40_0000, &ports),
            support::headless("ns", "big2", size, 0x0BC0_0000, &ports),
        ];
        builder.upsert_service(&versions[0]);
        builder.upsert_service(&second[0]);
        drop(std::mem::replace(&mut published, builder.snapshot()));
        let both = [&versions, &second];
        let other = (0..rounds)
            .map(|round| {
                // Round r moves Service r % 2 to its other version.
                let svc = &both[round % 2][(round / 2 + 1) % 2];
                let started = Instant::now();
                builder.upsert_service(svc);
                let next = builder.snapshot();
                let took = started.elapsed();
                drop(std::mem::replace(&mut published, black_box(next)));
                took
            })
            .collect();
        builder.remove_service(&second[0].key);
        if !bench {
            let name = b"\x03big\x02ns\x03svc\x07cluster\x05local\x00";
            assert!(
                matches!(published.lookup(name, 1), Lookup::Answer(_)),
                "the Service is served after its updates"
            );
        }
        builder.remove_service(&versions[0].key);
        drop(std::mem::replace(&mut published, builder.snapshot()));
        points.push(Point {
            endpoints: size,
            all,
            one,
            other,
        });
    }
    report(services, &points, bench);
}

fn report(services: u32, points: &[Point], bench: bool) {
    println!(
        "\nUpdate of one headless Service of E endpoints + snapshot, in a {services} Services × 10 endpoints zone\n"
    );
    println!(
        "| E | every endpoint moved: median µs | p90 µs | one endpoint moved: median µs | p90 µs | two Services alternating: median µs | p90 µs |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for p in points {
        let (all_median, all_p90) = percentiles(&p.all);
        let (one_median, one_p90) = percentiles(&p.one);
        let (other_median, other_p90) = percentiles(&p.other);
        println!(
            "| {} | {all_median:.0} | {all_p90:.0} | {one_median:.0} | {one_p90:.0} | {other_median:.0} | {other_p90:.0} |",
            p.endpoints
        );
        json.push(format!(
            "{{\"endpoints\": {}, \"all_median_us\": {all_median:.1}, \"all_p90_us\": {all_p90:.1}, \"one_median_us\": {one_median:.1}, \"one_p90_us\": {one_p90:.1}, \"other_median_us\": {other_median:.1}, \"other_p90_us\": {other_p90:.1}}}",
            p.endpoints
        ));
    }
    if bench {
        let out = std::env::var("UPDATE_CURVE_OUT")
            .unwrap_or_else(|_| "target/update-curve.json".to_owned());
        let text = format!(
            "{{\"services\": {services}, \"points\": [{}]}}\n",
            json.join(", ")
        );
        match std::fs::write(&out, text) {
            Ok(()) => println!("\nwritten to {out}"),
            Err(error) => eprintln!("could not write {out}: {error}"),
        }
    }
}

/// Median and 90th percentile, in µs.
fn percentiles(samples: &[Duration]) -> (f64, f64) {
    let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}
