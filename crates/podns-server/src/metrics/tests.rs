//! Unit tests for the metrics: zone matching, label buckets, the text the collectors write.

use std::time::{Duration, UNIX_EPOCH};

use podns_testkit::prometheus::{Sample, parse, value};

use super::*;
use crate::query::Transport;

/// `name` ("a.b.") in wire form, case kept.
fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

const ZONES: [&str; 3] = ["cluster.local.", "in-addr.arpa.", "ip6.arpa."];

#[test]
fn zone_index_takes_the_longest_served_zone() {
    let m = Metrics::new(&[
        "cluster.local.",
        "default.svc.cluster.local",
        "in-addr.arpa.",
    ]);
    let q = m.query();
    assert_eq!(q.zone_index(&wire("web.default.svc.cluster.local.")), 1);
    assert_eq!(q.zone_index(&wire("default.svc.cluster.local.")), 1);
    assert_eq!(q.zone_index(&wire("web.other.svc.cluster.local.")), 0);
    assert_eq!(q.zone_index(&wire("cluster.local.")), 0);
    assert_eq!(q.zone_index(&wire("1.0.96.10.in-addr.arpa.")), 2);
    // Label boundaries count: "xcluster.local." is not below "cluster.local.".
    assert_eq!(q.zone_index(&wire("xcluster.local.")), 3);
    assert_eq!(q.zone_label(1), "default.svc.cluster.local.");
    assert_eq!(q.zone_label(3), ".");
    assert_eq!(q.zone_label(99), ".");
}

#[test]
fn zone_index_ignores_ascii_case_on_both_sides() {
    let m = Metrics::new(&["Cluster.LOCAL."]);
    let q = m.query();
    assert_eq!(q.zone_index(&wire("WEB.Default.svc.cluster.local.")), 0);
    assert_eq!(q.zone_label(0), "cluster.local.");
}

#[test]
fn names_outside_every_zone_and_broken_names_are_root() {
    let m = Metrics::new(&ZONES);
    let q = m.query();
    assert_eq!(q.zone_index(&wire("example.com.")), 3);
    assert_eq!(q.zone_index(&wire(".")), 3);
    assert_eq!(q.zone_index(&[]), 3);
    // A length octet running past the end, or no root label: no panic, no match.
    assert_eq!(q.zone_index(&[5, b'a']), 3);
    assert_eq!(q.zone_index(&wire("cluster.local.")[..14]), 3);
    // An invalid zone name matches nothing.
    let long = format!("{}.local.", "a".repeat(64));
    let m = Metrics::new(&[long.as_str(), "a..b."]);
    assert_eq!(m.query().zone_index(&wire(&long)), 2);
}

#[test]
fn the_root_zone_matches_everything_not_in_a_longer_one() {
    let m = Metrics::new(&["cluster.local.", "."]);
    let q = m.query();
    assert_eq!(q.zone_index(&wire("web.cluster.local.")), 0);
    assert_eq!(q.zone_index(&wire("example.com.")), 1);
}

#[test]
fn qtype_and_rcode_buckets() {
    let types = [
        (1, "A"),
        (28, "AAAA"),
        (33, "SRV"),
        (12, "PTR"),
        (16, "TXT"),
        (6, "SOA"),
        (2, "NS"),
        (5, "CNAME"),
        (255, "ANY"),
        (15, "other"),
        (0, "other"),
        (65535, "other"),
    ];
    for (qtype, label) in types {
        assert_eq!(qtype_label(qtype), label, "qtype {qtype}");
    }
    let rcodes = [
        (0, "NOERROR"),
        (1, "FORMERR"),
        (2, "SERVFAIL"),
        (3, "NXDOMAIN"),
        (4, "NOTIMP"),
        (5, "REFUSED"),
        (16, "BADVERS"),
        (9, "other"),
        (23, "other"),
    ];
    for (rcode, label) in rcodes {
        assert_eq!(rcode_label(rcode), label, "rcode {rcode}");
    }
}

#[test]
fn recorded_queries_show_with_their_labels() {
    let m = Metrics::new(&ZONES);
    let q = m.query();
    let z = q.zone_index(&wire("web.default.svc.cluster.local."));
    for _ in 0..3 {
        q.record(z, Transport::Udp, 1, 0, 80, Duration::from_micros(7));
    }
    q.record(z, Transport::Tcp, 28, 3, 150, Duration::from_millis(3));
    q.record(3, Transport::Udp, 15, 5, 40, Duration::from_secs(20));
    q.record(42, Transport::Udp, 15, 5, 40, Duration::ZERO);
    q.record_dropped(Transport::Tcp);
    q.record_rate_limited(true);
    q.record_rate_limited(false);
    q.record_rate_limited(false);

    let s = parse(&m.encode());
    let req = "podns_dns_requests_total";
    let cl = ("zone", "cluster.local.");
    assert_eq!(
        value(&s, req, &[cl, ("proto", "udp"), ("type", "A")]),
        Some(3.0)
    );
    assert_eq!(
        value(&s, req, &[cl, ("proto", "tcp"), ("type", "AAAA")]),
        Some(1.0)
    );
    let root = ("zone", ".");
    assert_eq!(
        value(&s, req, &[root, ("proto", "udp"), ("type", "other")]),
        Some(2.0)
    );
    // Unused combinations are not exposed.
    assert_eq!(value(&s, req, &[cl, ("proto", "tcp"), ("type", "A")]), None);

    let resp = "podns_dns_responses_total";
    assert_eq!(value(&s, resp, &[cl, ("rcode", "NOERROR")]), Some(3.0));
    assert_eq!(value(&s, resp, &[cl, ("rcode", "NXDOMAIN")]), Some(1.0));
    assert_eq!(value(&s, resp, &[root, ("rcode", "REFUSED")]), Some(2.0));

    let dropped = "podns_dns_requests_dropped_total";
    assert_eq!(value(&s, dropped, &[("proto", "tcp")]), Some(1.0));
    assert_eq!(value(&s, dropped, &[("proto", "udp")]), Some(0.0));
    let limited = "podns_dns_responses_rate_limited_total";
    assert_eq!(value(&s, limited, &[("action", "drop")]), Some(2.0));
    assert_eq!(value(&s, limited, &[("action", "slip")]), Some(1.0));

    let d = "podns_dns_request_duration_seconds";
    let a = [cl, ("type", "A")];
    let bucket =
        |le: &str| value(&s, &format!("{d}_bucket"), &[cl, ("type", "A"), ("le", le)]).unwrap();
    // 7 µs: above 5 µs, within 10 µs; cumulative from there on.
    assert_eq!(bucket("5e-06"), 0.0);
    assert_eq!(bucket("1e-05"), 3.0);
    assert_eq!(bucket("8.192"), 3.0);
    assert_eq!(bucket("+Inf"), 3.0);
    assert_eq!(value(&s, &format!("{d}_count"), &a), Some(3.0));
    let sum = value(&s, &format!("{d}_sum"), &a).unwrap();
    assert!((sum - 21e-6).abs() < 1e-12, "sum {sum}");
    // 20 s lands only in +Inf.
    let other = [root, ("type", "other")];
    let le = |le| {
        value(
            &s,
            &format!("{d}_bucket"),
            &[root, ("type", "other"), ("le", le)],
        )
    };
    assert_eq!(le("8.192"), Some(1.0)); // the zero-duration one
    assert_eq!(le("+Inf"), Some(2.0));
    assert_eq!(value(&s, &format!("{d}_count"), &other), Some(2.0));

    let size = "podns_dns_response_size_bytes";
    let tcp = [cl, ("proto", "tcp")];
    let le = |le| {
        value(
            &s,
            &format!("{size}_bucket"),
            &[cl, ("proto", "tcp"), ("le", le)],
        )
    };
    assert_eq!(le("100"), Some(0.0));
    assert_eq!(le("200"), Some(1.0));
    assert_eq!(value(&s, &format!("{size}_sum"), &tcp), Some(150.0));
}

#[test]
fn histogram_buckets_are_cumulative_and_end_at_count() {
    let m = Metrics::new(&ZONES);
    let q = m.query();
    for i in 0..200u64 {
        // Spread over 0 … ~10 s, so every bucket gets something.
        let d = Duration::from_nanos(i * i * i * 1250);
        q.record(0, Transport::Udp, 1, 0, (i * 331) as usize, d);
    }
    let s = parse(&m.encode());
    for (name, labels) in [
        ("podns_dns_request_duration_seconds", ("type", "A")),
        ("podns_dns_response_size_bytes", ("proto", "udp")),
    ] {
        let buckets: Vec<&Sample> = s
            .iter()
            .filter(|x| x.name == format!("{name}_bucket"))
            .filter(|x| x.labels.contains(&(labels.0.into(), labels.1.into())))
            .collect();
        assert!(buckets.len() > 10, "{name}: {} buckets", buckets.len());
        let les: Vec<f64> = buckets
            .iter()
            .map(|b| {
                let le = &b.labels.iter().find(|(k, _)| k == "le").unwrap().1;
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                }
            })
            .collect();
        assert!(les.windows(2).all(|w| w[0] < w[1]), "{name}: {les:?}");
        assert!(
            buckets.windows(2).all(|w| w[0].value <= w[1].value),
            "{name} not cumulative"
        );
        assert!(buckets[0].value < buckets[buckets.len() - 1].value);
        let count = value(
            &s,
            &format!("{name}_count"),
            &[("zone", "cluster.local."), labels],
        );
        assert_eq!(count, Some(200.0), "{name}");
        assert_eq!(buckets.last().unwrap().value, 200.0);
    }
}

#[test]
fn recordings_from_many_threads_all_count() {
    let m = Metrics::new(&ZONES);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..1000 {
                    m.query()
                        .record(1, Transport::Udp, 12, 3, 90, Duration::from_micros(30));
                }
            });
        }
    });
    let s = parse(&m.encode());
    let labels = [("zone", "in-addr.arpa."), ("proto", "udp"), ("type", "PTR")];
    assert_eq!(value(&s, "podns_dns_requests_total", &labels), Some(8000.0));
    let labels = [("zone", "in-addr.arpa."), ("type", "PTR")];
    let count = value(&s, "podns_dns_request_duration_seconds_count", &labels);
    assert_eq!(count, Some(8000.0));
}

#[test]
fn zones_beyond_the_cap_count_as_root() {
    let names: Vec<String> = (0..MAX_ZONES + 4).map(|i| format!("z{i}.test.")).collect();
    let zones: Vec<&str> = names.iter().map(String::as_str).collect();
    let m = Metrics::new(&zones);
    let q = m.query();
    assert_eq!(q.zone_index(&wire("a.z0.test.")), 0);
    assert_eq!(q.zone_index(&wire("a.z15.test.")), 15);
    assert_eq!(q.zone_index(&wire("a.z16.test.")), MAX_ZONES);
    assert_eq!(q.zone_label(MAX_ZONES), ".");
}

#[test]
fn control_plane_metrics() {
    let m = Metrics::new(&ZONES);
    m.set_zone_objects(ZoneObjects {
        services: 2000,
        endpoints: 20000,
        pods: 20500,
        names: 44000,
        serial: 7,
    });
    m.set_api_connected(true);
    m.set_synced(false);
    m.set_last_update(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    m.observe_programming_latency(ServiceKindLabel::HeadlessWithSelector, 0.05);
    m.observe_programming_latency(ServiceKindLabel::HeadlessWithSelector, 3.0);
    m.observe_zone_build(0.002);
    for i in 0..20 {
        m.watch_restart(&format!("kind{i}"));
    }
    m.watch_restart("kind0");
    m.watch_restart(&"k".repeat(200));

    let s = parse(&m.encode());
    assert_eq!(value(&s, "podns_zone_services", &[]), Some(2000.0));
    assert_eq!(value(&s, "podns_zone_endpoints", &[]), Some(20000.0));
    assert_eq!(value(&s, "podns_zone_pods", &[]), Some(20500.0));
    assert_eq!(value(&s, "podns_zone_names", &[]), Some(44000.0));
    assert_eq!(value(&s, "podns_zone_serial", &[]), Some(7.0));
    assert_eq!(value(&s, "podns_kubernetes_api_connected", &[]), Some(1.0));
    assert_eq!(value(&s, "podns_synced", &[]), Some(0.0));
    assert_eq!(
        value(&s, "podns_zone_last_update_timestamp_seconds", &[]),
        Some(1_700_000_000.0)
    );
    let p = "podns_kubernetes_dns_programming_duration_seconds";
    let kind = ("service_kind", "headless_with_selector");
    assert_eq!(value(&s, &format!("{p}_count"), &[kind]), Some(2.0));
    assert_eq!(
        value(&s, &format!("{p}_bucket"), &[kind, ("le", "0.064")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, &format!("{p}_bucket"), &[kind, ("le", "524.288")]),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "podns_zone_build_duration_seconds_count", &[]),
        Some(1.0)
    );
    let w = "podns_watch_restarts_total";
    assert_eq!(value(&s, w, &[("kind", "kind0")]), Some(2.0));
    assert_eq!(value(&s, w, &[("kind", "kind15")]), Some(1.0));
    assert_eq!(value(&s, w, &[("kind", "kind16")]), None);
    assert_eq!(value(&s, w, &[("kind", "other")]), Some(5.0));
    assert_eq!(
        s.iter().filter(|x| x.name == w).count(),
        MAX_WATCH_KINDS + 1
    );
    let version = ("version", env!("CARGO_PKG_VERSION"));
    assert_eq!(value(&s, "podns_build_info", &[version]), Some(1.0));
}

#[test]
fn forward_sample_is_read_at_scrape() {
    let m = Metrics::new(&ZONES);
    assert!(!m.encode().contains("podns_cache_hits_total"));
    let seen = std::sync::atomic::AtomicU64::new(0);
    m.register_forward_stats(move || {
        let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        ForwardSample {
            requests: 10 * n,
            cache_hits: 7,
            cache_misses: 3,
            cache_entries: 5,
            upstreams: (0..20)
                .map(|i| UpstreamSample {
                    address: format!("10.0.0.{i}:53"),
                    requests: i,
                    failures: 1,
                    healthy: i != 1,
                })
                .collect(),
        }
    });
    let _ = m.encode();
    let s = parse(&m.encode());
    assert_eq!(value(&s, "podns_forward_requests_total", &[]), Some(20.0));
    assert_eq!(value(&s, "podns_cache_hits_total", &[]), Some(7.0));
    assert_eq!(value(&s, "podns_cache_misses_total", &[]), Some(3.0));
    assert_eq!(value(&s, "podns_cache_entries", &[]), Some(5.0));
    let to = ("to", "10.0.0.3:53");
    assert_eq!(
        value(&s, "podns_forward_upstream_requests_total", &[to]),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "podns_forward_upstream_failures_total", &[to]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "podns_forward_upstream_healthy", &[to]),
        Some(1.0)
    );
    let down = ("to", "10.0.0.1:53");
    assert_eq!(
        value(&s, "podns_forward_upstream_healthy", &[down]),
        Some(0.0)
    );
    let shown = s
        .iter()
        .filter(|x| x.name == "podns_forward_upstream_healthy")
        .count();
    assert_eq!(shown, MAX_UPSTREAMS);
}

#[test]
fn every_family_has_help_and_type() {
    // One final period, whoever wrote the help.
    let m = Metrics::new(&ZONES);
    assert!(!m.encode().contains("..\n"), "{}", m.encode());
    m.query()
        .record(0, Transport::Udp, 1, 0, 80, Duration::from_micros(7));
    let text = m.encode();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
            .unwrap_or(name);
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        assert!(text.contains(&format!("# HELP {family} ")), "{family}");
    }
}

#[test]
fn udp_batch_sizes_form_a_histogram_once_recorded() {
    let m = Metrics::new(&ZONES);
    let name = "podns_dns_udp_batch_datagrams";
    assert!(
        !m.encode().contains(name),
        "no series before the first batch"
    );
    for n in [1, 3, 64, 64, 17] {
        m.query().record_udp_batch(n);
    }
    let s = parse(&m.encode());
    assert_eq!(value(&s, &format!("{name}_count"), &[]), Some(5.0));
    assert_eq!(value(&s, &format!("{name}_sum"), &[]), Some(149.0));
    let bucket = |le: &str| value(&s, &format!("{name}_bucket"), &[("le", le)]);
    assert_eq!(bucket("1"), Some(1.0));
    assert_eq!(bucket("2"), Some(1.0));
    assert_eq!(bucket("4"), Some(2.0));
    assert_eq!(bucket("32"), Some(3.0));
    assert_eq!(bucket("64"), Some(5.0));
    assert_eq!(bucket("+Inf"), Some(5.0));
}

/// The test process's own `/proc/self/status` field `key`, in bytes (the kernel writes kB).
#[cfg(target_os = "linux")]
fn status_bytes(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024.0
}

#[cfg(target_os = "linux")]
#[test]
fn process_series_are_read_from_proc_at_each_scrape() {
    let m = Metrics::new(&ZONES);
    // 32 MiB written, so resident: whatever else the test threads do, the process holds it.
    let held = vec![1u8; 32 << 20];
    std::hint::black_box(&held);
    let busy = std::time::Instant::now();
    let mut spin = 0u64;
    while busy.elapsed() < Duration::from_millis(30) {
        spin = std::hint::black_box(spin.wrapping_add(1));
    }
    let s = parse(&m.encode());
    let rss = value(&s, "process_resident_memory_bytes", &[]).unwrap();
    let status_rss = status_bytes("VmRSS:");
    assert!(rss >= 32.0 * 1024.0 * 1024.0, "{rss}");
    // The same quantity as the kernel's own report, read a moment apart.
    assert!(
        (rss - status_rss).abs() < 8.0 * 1024.0 * 1024.0,
        "{rss} vs {status_rss}"
    );
    let peak = value(&s, "podns_process_resident_memory_peak_bytes", &[]).unwrap();
    assert!(peak >= rss, "peak {peak} below resident {rss}");
    assert!(value(&s, "process_virtual_memory_bytes", &[]).unwrap() >= rss);
    assert!(value(&s, "process_cpu_seconds_total", &[]).unwrap() > 0.0);
    let open = value(&s, "process_open_fds", &[]).unwrap();
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count() as f64;
    // Other tests of this process may open or close a few meanwhile.
    assert!(open >= 3.0 && (open - fds).abs() <= 16.0, "{open} vs {fds}");
    assert!(value(&s, "process_max_fds", &[]).unwrap() >= open);
    assert!(value(&s, "process_virtual_memory_max_bytes", &[]).unwrap() > 0.0);
    let started = value(&s, "process_start_time_seconds", &[]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // This test process started before this test and (CI runs for at most 90 minutes) today.
    assert!(
        started <= now + 1.0 && started > now - 86_400.0,
        "{started} vs {now}"
    );
    // client_golang's names: a counter, and gauges.
    let text = m.encode();
    assert!(
        text.contains("# TYPE process_cpu_seconds_total counter\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE process_resident_memory_bytes gauge\n"));
    drop(held);
}

#[test]
fn the_zone_size_shows_once_the_zone_is_given() {
    use podns_view::{
        ClusterView, EndpointConditions, EndpointView, PortView, Protocol, ServiceKey, ServiceKind,
        ServiceView,
    };
    let m = Metrics::new(&ZONES);
    assert_eq!(
        value(&parse(&m.encode()), "podns_zone_snapshot_bytes", &[]),
        None
    );
    let ports: std::sync::Arc<[PortView]> = vec![PortView {
        name: Some("http".into()),
        protocol: Protocol::Tcp,
        port: 8080,
    }]
    .into();
    let service = |endpoints: u32| ServiceView {
        key: ServiceKey::new("default", "web"),
        kind: ServiceKind::Headless,
        ports: Vec::new(),
        endpoints: (0..endpoints)
            .map(|e| EndpointView {
                addresses: vec![std::net::Ipv4Addr::from(0x0a00_0000 + e).into()],
                hostname: Some(format!("web-{e}")),
                conditions: EndpointConditions::READY,
                ports: ports.clone(),
                node_name: None,
                zone: None,
                target_pod: Some(format!("web-{e}")),
            })
            .collect(),
    };
    let view = |endpoints| ClusterView {
        namespaces: vec!["default".into()],
        services: vec![service(endpoints)],
        pods: Vec::new(),
    };
    let config = podns_zone::ZoneConfig::default();
    let (writer, reader) = podns_zone::pair(podns_zone::build(&config, &view(1)));
    m.set_zone(reader);
    let small = value(&parse(&m.encode()), "podns_zone_snapshot_bytes", &[]).unwrap();
    assert!(small > 0.0);
    // Read at scrape time: a larger zone published later shows without telling the metrics.
    let old = writer.publish(podns_zone::build(&config, &view(500)));
    drop(old);
    let large = value(&parse(&m.encode()), "podns_zone_snapshot_bytes", &[]).unwrap();
    // 500 endpoints' A, SRV and PTR answers: well over 100 bytes each.
    assert!(large > small + 500.0 * 100.0, "{small} → {large}");
}
