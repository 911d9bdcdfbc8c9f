//! Bad cluster data: objects a real cluster can hold (or a hand-written manifest can), that DNS
//! cannot use as they are. Each is skipped with a log line naming the Service and slice, and
//! the rest of the Service keeps answering; nothing good is lost.
//!
//! Rules checked (and where they live):
//! - the same address in two slices of one Service: one record (RFC 2181 §5, podns-zone);
//! - one hostname on two endpoints: both addresses under the name, as CoreDNS answers (it
//!   returns every endpoint whose hostname matches);
//! - an address that is not an IP, or not of the slice's `addressType`: that address skipped
//!   (podns-cluster `view.rs`);
//! - a hostname that is not a DNS label (`Web_1`, 64 characters): the hostname ignored, the
//!   endpoint kept under its dashed-address name (the API server would have refused the
//!   hostname; the address is still good);
//! - a slice without `kubernetes.io/service-name`, or naming a missing Service: nothing, until
//!   the Service arrives;
//! - a `clusterIP` that is not an IP: the Service's name exists without an address (NODATA);
//! - an ExternalName that is not a host name: the Service skipped (NXDOMAIN), logged;
//! - 10,000 endpoints: TC over UDP; over TCP every whole record that fits in 65,535 octets;
//! - a Service flapping 200 times in ~2 s: its final state is served and memory stays flat.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{FakeCluster, Mode, Server, in_both_modes};

const ZONE: &str = "cluster.local.";

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A headless Service with one named TCP port `http` (80 → 8080).
fn headless(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"],
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    })
}

/// An endpoint: `addresses` as written, optional hostname, ready.
fn endpoint(addresses: &[&str], hostname: Option<&str>) -> Value {
    let mut ep = json!({
        "addresses": addresses,
        "conditions": {"ready": true, "serving": true, "terminating": false}
    });
    if let Some(h) = hostname {
        ep["hostname"] = json!(h);
    }
    ep
}

/// An EndpointSlice `name` for Service `service` (`None`: without the service-name label).
fn slice(
    ns: &str,
    name: &str,
    service: Option<&str>,
    address_type: &str,
    endpoints: &[Value],
) -> Value {
    let mut labels = json!({
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"
    });
    if let Some(service) = service {
        labels["kubernetes.io/service-name"] = json!(service);
    }
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
}

/// Serves `objects` in `mode`: as a manifest file (standalone) or through a fake API server.
fn serve(mode: Mode, objects: &[Value]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    match mode {
        Mode::Standalone => {
            // JSON documents are YAML documents.
            let docs: Vec<String> = objects.iter().map(Value::to_string).collect();
            std::fs::write(dir.path().join("objects.yaml"), docs.join("\n---\n")).unwrap();
            let server = Server::start(&[dir.path()], &[]);
            (server, dir)
        }
        Mode::Cluster => {
            let cluster = FakeCluster::empty();
            for o in objects {
                cluster.api.apply(o.clone());
            }
            (Server::watching(cluster, &[]), dir)
        }
    }
}

/// Asserts some log line contains every one of `needles`.
fn assert_logged(server: &Server, needles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if log.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needles:?}; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const LONG_LABEL: &str = "a123456789b123456789c123456789d123456789e123456789f123456789g123";

/// One Service whose slices hold every kind of odd endpoint, beside good ones.
fn odd_endpoints() -> Vec<Value> {
    assert_eq!(LONG_LABEL.len(), 64);
    vec![
        namespace("shop"),
        headless("shop", "api"),
        slice(
            "shop",
            "api-aaaaa",
            Some("api"),
            "IPv4",
            &[
                endpoint(&["10.1.0.1"], Some("web-0")),
                endpoint(&["10.1.0.2"], None),
                endpoint(&["10.0.0.999"], Some("bad-ip")),
                endpoint(&["fe80::1"], Some("wrong-family")),
                endpoint(&["10.1.0.3"], Some("Web_1")),
                endpoint(&["10.1.0.4"], Some(LONG_LABEL)),
                endpoint(&["10.1.0.5"], Some("same")),
            ],
        ),
        slice(
            "shop",
            "api-bbbbb",
            Some("api"),
            "IPv4",
            &[
                // The same address as in api-aaaaa (a slice being split or moved).
                endpoint(&["10.1.0.2"], None),
                // The same hostname as 10.1.0.5, another address.
                endpoint(&["10.1.0.6"], Some("same")),
            ],
        ),
        slice(
            "shop",
            "api-ccccc",
            Some("api"),
            "IPv6",
            &[
                endpoint(&["fe80::zz"], None),
                endpoint(&["10.1.0.7"], None),
                endpoint(&["fd00::1"], Some("v6")),
            ],
        ),
        // A slice podns cannot attach to any Service, and one naming a Service that is not there.
        slice(
            "shop",
            "orphan-xxxxx",
            None,
            "IPv4",
            &[endpoint(&["10.9.0.1"], None)],
        ),
        slice(
            "shop",
            "ghost-yyyyy",
            Some("ghost"),
            "IPv4",
            &[endpoint(&["10.9.0.2"], None)],
        ),
    ]
}

in_both_modes! {
    fn odd_endpoints_are_skipped_with_a_log_and_the_rest_answers(mode) {
        let (server, _dir) = serve(mode, &odd_endpoints());
        let svc = "api.shop.svc.cluster.local";
        for transport in ["+notcp", "+tcp"] {
            // Every good address once; 10.1.0.2 (in two slices) not twice.
            let a = server.dig(&[transport, svc]);
            a.assert_answers("A", 6, 30);
            assert_eq!(
                a.data("A"),
                ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
            );
            assert_eq!(server.dig(&[transport, "AAAA", svc]).data("AAAA"), ["fd00::1"]);
            // One hostname on two endpoints: both addresses, and each address's PTR names it.
            let same = format!("same.{svc}");
            assert_eq!(server.dig(&[transport, &same]).data("A"), ["10.1.0.5", "10.1.0.6"]);
            for ptr in ["5.0.1.10.in-addr.arpa", "6.0.1.10.in-addr.arpa"] {
                assert_eq!(
                    server.dig(&[transport, "PTR", ptr]).data("PTR"),
                    [format!("{same}.")]
                );
            }
            assert_eq!(server.dig(&[transport, &format!("web-0.{svc}")]).data("A"), ["10.1.0.1"]);
            assert_eq!(server.dig(&[transport, "AAAA", &format!("v6.{svc}")]).data("AAAA"), ["fd00::1"]);
            // A hostname that is not a label is ignored: the endpoint keeps its dashed name.
            // (A 64-octet label cannot even be asked.)
            for name in ["web_1", "bad-ip", "wrong-family"] {
                server
                    .dig(&[transport, &format!("{name}.{svc}")])
                    .assert_negative("NXDOMAIN", ZONE);
            }
            for (label, ip) in [("10-1-0-3", "10.1.0.3"), ("10-1-0-4", "10.1.0.4")] {
                assert_eq!(server.dig(&[transport, &format!("{label}.{svc}")]).data("A"), [ip]);
            }
            // SRV: one per distinct target (web-0, the three dashed names, same, v6): none
            // twice for the repeated address or the shared hostname. The weight counts the 8
            // records before duplicates go, as CoreDNS computes it (⌊100 / 8⌋).
            let srv = server.dig(&[transport, "SRV", &format!("_http._tcp.{svc}")]);
            let mut targets: Vec<String> = srv.data("SRV");
            assert_eq!(targets.len(), 6, "{}", srv.text);
            targets.dedup();
            assert_eq!(targets.len(), 6, "duplicate SRV records:\n{}", srv.text);
            assert!(targets.iter().all(|t| t.starts_with("0 12 8080 ")), "{}", srv.text);
            // The orphan slice and the slice of a missing Service serve nothing.
            server
                .dig(&[transport, "ghost.shop.svc.cluster.local"])
                .assert_negative("NXDOMAIN", ZONE);
            server
                .dig(&[transport, "PTR", "1.0.9.10.in-addr.arpa"])
                .assert_negative("NXDOMAIN", "in-addr.arpa.");
        }
        // Each skip is logged with the Service, the slice and the value.
        assert_logged(&server, &["shop/api", "api-aaaaa", "10.0.0.999"]);
        assert_logged(&server, &["shop/api", "api-aaaaa", "fe80::1"]);
        assert_logged(&server, &["shop/api", "api-ccccc", "fe80::zz"]);
        assert_logged(&server, &["shop/api", "api-ccccc", "10.1.0.7"]);
        assert_logged(&server, &["shop/api", "api-aaaaa", "Web_1"]);
        assert_logged(&server, &["shop/api", "api-aaaaa", LONG_LABEL]);
    }

    fn same_names_in_two_namespaces_are_independent(mode) {
        let mut objects = vec![namespace("a"), namespace("b")];
        for (ns, ip) in [("a", "10.2.0.1"), ("b", "10.2.0.2")] {
            objects.push(headless(ns, "db"));
            objects.push(slice(ns, "db-zzzzz", Some("db"), "IPv4", &[endpoint(&[ip], Some("db-0"))]));
        }
        let (server, _dir) = serve(mode, &objects);
        assert_eq!(server.dig(&["db.a.svc.cluster.local"]).data("A"), ["10.2.0.1"]);
        assert_eq!(server.dig(&["db.b.svc.cluster.local"]).data("A"), ["10.2.0.2"]);
        assert_eq!(server.dig(&["db-0.db.b.svc.cluster.local"]).data("A"), ["10.2.0.2"]);
    }
}

/// Services whose spec DNS cannot fully use; cluster mode (podns's own controllers would
/// refuse these manifests in standalone mode, as the API server refuses them).
#[test]
fn odd_services_are_skipped_or_degraded_and_logged() {
    let cluster = FakeCluster::empty();
    cluster.api.apply(namespace("shop"));
    cluster.api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "garbage", "namespace": "shop"},
        "spec": {"clusterIP": "10.96.0.999", "clusterIPs": ["10.96.0.999", "::zz"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }));
    cluster.api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "half", "namespace": "shop"},
        "spec": {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7", "nonsense"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }));
    for (name, external) in [
        ("ext-space", "exa mple.com"),
        ("ext-dots", "a..example.com"),
        ("ext-long", &format!("{LONG_LABEL}.example.com")),
        ("ext-under", "bad_host.example.com"),
        ("ext-good", "db.example.com."),
    ] {
        cluster.api.apply(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"type": "ExternalName", "externalName": external}
        }));
    }
    let server = Server::watching(cluster, &[]);

    // A Service whose VIPs are all garbage still exists (its SRV names its own name), no A.
    server
        .dig(&["garbage.shop.svc.cluster.local"])
        .assert_negative("NOERROR", ZONE);
    assert_eq!(
        server
            .dig(&["SRV", "_http._tcp.garbage.shop.svc.cluster.local"])
            .answer
            .len(),
        1
    );
    assert_logged(&server, &["shop/garbage", "10.96.0.999"]);
    assert_logged(&server, &["shop/garbage", "::zz"]);
    // One good VIP among garbage: the good one is served.
    assert_eq!(
        server.dig(&["half.shop.svc.cluster.local"]).data("A"),
        ["10.96.0.7"]
    );
    assert_logged(&server, &["shop/half", "nonsense"]);

    // ExternalNames that are not host names: skipped, NXDOMAIN, logged; the good one a CNAME.
    let good = server.dig(&["CNAME", "ext-good.shop.svc.cluster.local"]);
    good.assert_answers("CNAME", 1, 30);
    assert_eq!(good.answer[0].data, "db.example.com.");
    for name in ["ext-space", "ext-dots", "ext-long", "ext-under"] {
        let dig = server.dig(&["CNAME", &format!("{name}.shop.svc.cluster.local")]);
        dig.assert_negative("NXDOMAIN", ZONE);
        assert_logged(&server, &[&format!("shop/{name}")]);
    }
}

/// Slices that arrive before their Service, and a slice that moves between Services.
#[test]
fn slices_follow_their_service_name_label() {
    let cluster = FakeCluster::empty();
    cluster.api.apply(namespace("shop"));
    cluster.api.apply(slice(
        "shop",
        "late-aaaaa",
        Some("late"),
        "IPv4",
        &[endpoint(&["10.3.0.1"], None)],
    ));
    let server = Server::watching(cluster, &[]);
    let late = "late.shop.svc.cluster.local";
    server.dig(&[late]).assert_negative("NXDOMAIN", ZONE);

    // The Service arrives: the slice that waited for it is served.
    server.api().api.apply(headless("shop", "late"));
    server.eventually("the slice that came first", || {
        server.dig(&[late]).data("A") == ["10.3.0.1"]
    });

    // The slice is relabelled to another Service: it leaves the first and joins the second.
    server.api().api.apply(headless("shop", "other"));
    server.api().api.apply(slice(
        "shop",
        "late-aaaaa",
        Some("other"),
        "IPv4",
        &[endpoint(&["10.3.0.1"], None)],
    ));
    let other = "other.shop.svc.cluster.local";
    server.eventually("the slice moved", || {
        server.dig(&[other]).data("A") == ["10.3.0.1"] && server.dig(&[late]).status == "NXDOMAIN"
    });
    // Its label removed: it belongs to nothing.
    server.api().api.apply(slice(
        "shop",
        "late-aaaaa",
        None,
        "IPv4",
        &[endpoint(&["10.3.0.1"], None)],
    ));
    server.eventually("the slice orphaned", || {
        server.dig(&[other]).status == "NXDOMAIN"
    });
    // The same Service written again (a conflicting update of one object): the last one wins.
    server.api().api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "other", "namespace": "shop"},
        "spec": {"clusterIP": "10.96.3.3", "clusterIPs": ["10.96.3.3"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }));
    server.eventually("the Service turned ClusterIP", || {
        server.dig(&[other]).data("A") == ["10.96.3.3"]
    });
}

/// The address of endpoint `i` of the big Service: 10.4.0.0/16 and beyond.
fn big_ip(i: usize) -> String {
    format!("10.{}.{}.{}", 4 + i / 65536, (i / 256) % 256, i % 256)
}

#[test]
fn ten_thousand_endpoints_truncate_over_udp_and_fill_a_tcp_message() {
    const ENDPOINTS: usize = 10_000;
    let cluster = FakeCluster::empty();
    cluster.api.apply(namespace("big"));
    cluster.api.apply(headless("big", "big"));
    // The EndpointSlice controller's ceiling is 1,000 endpoints per slice.
    for s in 0..ENDPOINTS / 1000 {
        let endpoints: Vec<Value> = (s * 1000..(s + 1) * 1000)
            .map(|i| endpoint(&[&big_ip(i)], None))
            .collect();
        cluster.api.apply(slice(
            "big",
            &format!("big-{s:05}"),
            Some("big"),
            "IPv4",
            &endpoints,
        ));
    }
    let server = Server::watching(cluster, &[]);
    let svc = "big.big.svc.cluster.local";
    // Every endpoint has its own name.
    server.eventually("all 10,000 endpoints", || {
        server
            .dig(&[&format!(
                "{}.{svc}",
                big_ip(ENDPOINTS - 1).replace('.', "-")
            )])
            .data("A")
            == [big_ip(ENDPOINTS - 1)]
    });

    // UDP: TC and no partial RRset (RFC 2181 §9), so the client retries over TCP.
    let udp = server.dig(&["+notcp", "+ignore", svc]);
    assert_eq!(udp.status, "NOERROR", "{}", udp.text);
    assert!(udp.flags.iter().any(|f| f == "tc"), "{}", udp.text);
    assert!(udp.answer.is_empty(), "{}", udp.text);

    // TCP: 10,000 A records are 160,000 octets; a message holds 65,535. podns answers every
    // whole record that fits (question + OPT leave room for 4,0xx), without TC: over TCP
    // there is nothing to fall back to, and TC there makes Go before 1.22 discard the whole
    // answer (golang/go#64896); glibc and Go ≥ 1.22 use the records either way.
    let tcp = server.dig(&["+tcp", svc]);
    assert_eq!(tcp.status, "NOERROR", "{}", &tcp.text[..500]);
    let n = tcp.answer.len();
    let size = tcp
        .text
        .lines()
        .find_map(|l| l.strip_prefix(";; MSG SIZE  rcvd: "))
        .and_then(|s| s.trim().parse::<usize>().ok())
        .expect("dig prints the message size");
    eprintln!("TCP answer: {n} A records, {size} octets");
    assert!(size <= 65535, "{size}");
    // Fuller than 65,535 − 16 octets per record: no room left for one more.
    assert!(size + 16 > 65535 - 300, "{size} octets, {n} records");
    assert!((4000..=4096).contains(&n), "{n}");
    let mut distinct = tcp.data("A");
    distinct.dedup();
    assert_eq!(distinct.len(), n, "duplicates in the TCP answer");
    assert!(!tcp.flags.iter().any(|f| f == "tc"), "{}", &tcp.text[..500]);

    // The answer rotates (RFC 2181 §5: order carries no meaning), so the first record a
    // client picks changes from query to query. (Which records fit is fixed by the zone
    // build: the first 4,0xx of the RRset; the rest reach no DNS client.)
    let mut firsts = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let again = server.dig(&["+tcp", svc]);
        firsts.insert(again.answer[0].data.clone());
        seen.extend(again.data("A"));
    }
    assert!(firsts.len() > 1, "TCP answers do not rotate: {firsts:?}");
    eprintln!("distinct addresses over 5 TCP answers: {}", seen.len());
}

#[test]
fn a_flapping_service_ends_in_its_final_state_without_growing() {
    let cluster = FakeCluster::empty();
    cluster.api.apply(namespace("flap"));
    cluster.api.apply(headless("flap", "steady"));
    cluster.api.apply(slice(
        "flap",
        "steady-aaaaa",
        Some("steady"),
        "IPv4",
        &[endpoint(&["10.5.0.1"], None)],
    ));
    let server = Server::watching(cluster, &[]);
    let flap = "flap.flap.svc.cluster.local";
    let steady = "steady.flap.svc.cluster.local";
    assert_eq!(server.dig(&[steady]).data("A"), ["10.5.0.1"]);

    let api = &server.api().api;
    let cycle = |round: usize| {
        api.apply(headless("flap", "flap"));
        let eps: Vec<Value> = (0..20)
            .map(|i| endpoint(&[&format!("10.6.{}.{i}", round % 200)], None))
            .collect();
        api.apply(slice("flap", "flap-bbbbb", Some("flap"), "IPv4", &eps));
        assert!(api.delete("discovery.k8s.io/v1", "EndpointSlice", "flap", "flap-bbbbb"));
        assert!(api.delete("v1", "Service", "flap", "flap"));
    };
    // A warm-up round, so that RSS measures growth rather than first use.
    for round in 0..200 {
        cycle(round);
        std::thread::sleep(Duration::from_millis(10));
    }
    server.eventually("the warm-up flap settled", || {
        server.dig(&[flap]).status == "NXDOMAIN"
    });
    let before = server.rss_kib();

    let started = Instant::now();
    for round in 0..200 {
        cycle(round);
        // ~2 s for 200 apply/delete cycles (800 API events).
        std::thread::sleep(Duration::from_millis(10));
    }
    let flapped = started.elapsed();
    // The final state: the Service back with three endpoints.
    api.apply(headless("flap", "flap"));
    api.apply(slice(
        "flap",
        "flap-bbbbb",
        Some("flap"),
        "IPv4",
        &[
            endpoint(&["10.7.0.1"], None),
            endpoint(&["10.7.0.2"], None),
            endpoint(&["10.7.0.3"], Some("last")),
        ],
    ));
    server.eventually("the final state", || {
        server.dig(&[flap]).data("A") == ["10.7.0.1", "10.7.0.2", "10.7.0.3"]
    });
    assert_eq!(
        server.dig(&[&format!("last.{flap}")]).data("A"),
        ["10.7.0.3"]
    );
    // Nothing lost on the side, and none of the flapping addresses left behind.
    assert_eq!(server.dig(&[steady]).data("A"), ["10.5.0.1"]);
    server
        .dig(&["10-6-0-0.flap.flap.svc.cluster.local"])
        .assert_negative("NXDOMAIN", ZONE);
    server
        .dig(&["PTR", "3.0.7.10.in-addr.arpa"])
        .data("PTR")
        .iter()
        .for_each(|p| assert_eq!(p, &format!("last.{flap}.")));
    let after = server.rss_kib();
    eprintln!("flapping 200 cycles took {flapped:?}; RSS {before} KiB → {after} KiB");
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 200 flaps"
    );
}
