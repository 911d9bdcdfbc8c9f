//! The read side alone: [`ZoneSnapshot::lookup`] in a 10k Services × 10 endpoints zone, for the
//! answer kinds a query mix holds (positive A per pod and per Service, SRV, the SRV link at a
//! Service name, PTR, NODATA, and the NXDOMAIN search-path misses that are most queries).
//!
//! Prints ns per lookup for each kind (median of `ROUNDS` passes). The loop is one function,
//! `lookup_loop`, so that `valgrind --tool=callgrind --toggle-collect='*lookup_loop*'` counts the
//! instructions of lookups only (deterministic, for before/after comparisons on a noisy machine;
//! `LOOKUP_PASSES=20` keeps that run short).
//!
//! Run with `cargo bench -p podns-zone --bench lookup`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use podns_zone::{Lookup, Name, ZoneConfig, ZoneSnapshot};

mod support;

const ROUNDS: usize = 15;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (services, passes) = if bench { (10_000, 20_000) } else { (100, 10) };
    // Fewer under callgrind: `LOOKUP_PASSES=20`.
    let passes = std::env::var("LOOKUP_PASSES").map_or(passes, |n| n.parse().expect("a count"));
    let snapshot = podns_zone::build(&ZoneConfig::default(), &support::cluster(services));
    let wire = |dotted: &str| Name::from_dotted(dotted).expect("valid").as_wire().to_vec();
    let cases: Vec<(&str, u16, Vec<Vec<u8>>)> = vec![
        (
            "per-pod A",
            1,
            (0..50)
                .map(|i| {
                    let s = i * 97 % services;
                    wire(&format!(
                        "svc-{s}-3.svc-{s}.ns-{}.svc.cluster.local",
                        s % 100
                    ))
                })
                .collect(),
        ),
        (
            "headless A",
            1,
            (0..50)
                .map(|i| {
                    let s = i * 97 % services;
                    wire(&format!("svc-{s}.ns-{}.svc.cluster.local", s % 100))
                })
                .collect(),
        ),
        (
            "SRV at the port name",
            33,
            (0..50)
                .map(|i| {
                    let s = i * 97 % services;
                    wire(&format!(
                        "_http._tcp.svc-{s}.ns-{}.svc.cluster.local",
                        s % 100
                    ))
                })
                .collect(),
        ),
        (
            "SRV at the Service name (link)",
            33,
            (0..50)
                .map(|i| {
                    let s = i * 97 % services;
                    wire(&format!("svc-{s}.ns-{}.svc.cluster.local", s % 100))
                })
                .collect(),
        ),
        (
            "PTR",
            12,
            (0..50)
                .map(|i| {
                    let s = i * 97 % services;
                    let ip = 0x0A00_0000 + s * 16 + 3;
                    let [a, b, c, d] = ip.to_be_bytes();
                    wire(&format!("{d}.{c}.{b}.{a}.in-addr.arpa"))
                })
                .collect(),
        ),
        (
            "AAAA NODATA",
            28,
            (0..50)
                .map(|i| {
                    let s = i * 97 % services;
                    wire(&format!("svc-{s}.ns-{}.svc.cluster.local", s % 100))
                })
                .collect(),
        ),
        (
            "NXDOMAIN search-path miss",
            1,
            (0..50)
                .map(|i| {
                    let s = i * 97 % services;
                    wire(&format!(
                        "svc-{s}.ns-{0}.svc.cluster.local.ns-{0}.svc.cluster.local",
                        s % 100
                    ))
                })
                .collect(),
        ),
    ];
    for (label, qtype, names) in &cases {
        let want_answer = !label.contains("NODATA") && !label.contains("NXDOMAIN");
        for name in names {
            let got = snapshot.lookup(name, *qtype);
            assert_eq!(
                matches!(got, Lookup::Answer(_)),
                want_answer,
                "{label}: {got:?}"
            );
        }
    }
    if !bench {
        return;
    }
    println!("\nZoneSnapshot::lookup at {services} Services × 10 endpoints\n");
    println!("| question | ns per lookup (median of {ROUNDS}) |");
    println!("|---|---:|");
    for (label, qtype, names) in &cases {
        let mut ns: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                lookup_loop(&snapshot, names, *qtype, passes);
                started.elapsed().as_nanos() as f64 / (passes * names.len()) as f64
            })
            .collect();
        ns.sort_by(f64::total_cmp);
        println!("| {label} | {:.1} |", ns[ROUNDS / 2]);
    }
}

/// `passes` lookups of every name in `names`.
#[inline(never)]
fn lookup_loop(snapshot: &ZoneSnapshot, names: &[Vec<u8>], qtype: u16, passes: usize) {
    for _ in 0..passes {
        for name in names {
            black_box(snapshot.lookup(black_box(name), qtype));
        }
    }
}
