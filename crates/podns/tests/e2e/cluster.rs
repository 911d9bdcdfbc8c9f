//! Cluster mode end to end: `podns serve --kubeconfig` against a fake API server that speaks
//! the real list/watch protocol, checked with `dig` after each API event.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{FakeCluster, Server, example};

/// A headless Service `api` in `shop` with one EndpointSlice of `ips` (port `http` 8080).
fn apply_headless_service(cluster: &FakeCluster, ips: &[&str]) {
    cluster.api.apply(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop"}
    }));
    cluster.api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "api"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    }));
    apply_slice(cluster, ips);
}

fn apply_slice(cluster: &FakeCluster, ips: &[&str]) {
    let endpoints: Vec<_> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true, "serving": true, "terminating": false}}))
        .collect();
    cluster.api.apply(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "api-abcde", "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": "api",
                                "service.kubernetes.io/headless": "",
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }));
}

#[test]
fn api_events_show_in_answers() {
    let cluster = FakeCluster::from_manifests(&[&example("redis-statefulset")], &[]);
    apply_headless_service(&cluster, &["10.1.0.1", "10.1.0.2"]);
    let server = Server::watching(cluster, &[]);
    let name = "api.shop.svc.cluster.local";
    assert_eq!(server.dig(&[name]).data("A"), ["10.1.0.1", "10.1.0.2"]);
    assert_eq!(
        server
            .dig(&["redis-headless.default.svc.cluster.local"])
            .answer
            .len(),
        3
    );

    // An endpoint added, then one removed.
    apply_slice(server.api(), &["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
    server.eventually("the third endpoint", || {
        server.dig(&[name]).data("A").len() == 3
    });
    apply_slice(server.api(), &["10.1.0.3"]);
    server.eventually("two endpoints gone", || {
        server.dig(&[name]).data("A") == ["10.1.0.3"]
    });

    // The Service deleted: its name is gone (its slice alone serves nothing).
    assert!(server.api().api.delete("v1", "Service", "shop", "api"));
    server.eventually("the service gone", || {
        server.dig(&[name]).status == "NXDOMAIN"
    });

    // A programming-latency sample was recorded for the headless changes.
    let samples = server
        .metric(
            "podns_kubernetes_dns_programming_duration_seconds_count{service_kind=\"headless_with_selector\"}",
        )
        .expect("programming latency histogram");
    assert!(samples >= 2.0, "{samples}");
    let (status, body) = server.admin_get("/ready");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn an_api_outage_keeps_the_last_state_and_catches_up() {
    let cluster = FakeCluster::empty();
    apply_headless_service(&cluster, &["10.1.0.1"]);
    let server = Server::watching(cluster, &[]);
    let name = "api.shop.svc.cluster.local";
    assert_eq!(server.dig(&[name]).data("A"), ["10.1.0.1"]);
    assert_eq!(
        server.metric("podns_kubernetes_api_connected"),
        Some(1.0),
        "{}",
        server.log()
    );

    server.api().api.stop();
    server.eventually("the outage noticed", || {
        server.metric("podns_kubernetes_api_connected") == Some(0.0)
    });
    // Still answering, still ready, and saying why it may be stale.
    assert_eq!(server.dig(&[name]).data("A"), ["10.1.0.1"]);
    let (status, body) = server.admin_get("/ready");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("unreachable"), "{body}");

    // Changes made while podns cannot see them.
    apply_slice(server.api(), &["10.1.0.1", "10.1.0.9"]);
    let down = Instant::now();
    server.api().block_on(server.api().api.resume());
    server.eventually("the change made during the outage", || {
        server.dig(&[name]).data("A") == ["10.1.0.1", "10.1.0.9"]
    });
    assert!(
        down.elapsed() < Duration::from_secs(15),
        "catching up took {:?}",
        down.elapsed()
    );
    server.eventually("reconnected", || {
        server.metric("podns_kubernetes_api_connected") == Some(1.0)
    });
    let restarts: f64 = ["Service", "EndpointSlice", "Namespace"]
        .iter()
        .filter_map(|kind| server.metric(&format!("podns_watch_restarts_total{{kind=\"{kind}\"}}")))
        .sum();
    assert!(restarts >= 1.0, "{restarts}");
}

#[test]
fn readiness_waits_for_the_first_complete_list() {
    let cluster = FakeCluster::empty();
    apply_headless_service(&cluster, &["10.1.0.1"]);
    cluster.api.set_hang(true);
    let server = Server::watching(cluster, &["--startup-timeout", "1s"]);
    // Serving (with nothing) after the start-up timeout, but not ready.
    let (status, body) = server.admin_get("/ready");
    assert_eq!(status, 503, "{body}");
    assert_eq!(server.admin_get("/health").0, 200);
    server.api().api.set_hang(false);
    server.eventually("ready after the lists complete", || {
        server.admin_get("/ready").0 == 200
    });
    server.eventually("the service answers", || {
        server.dig(&["api.shop.svc.cluster.local"]).data("A") == ["10.1.0.1"]
    });
}

#[test]
fn sigterm_turns_ready_off_then_stops() {
    let mut server = Server::start(&[&example("redis-statefulset")], &["--lameduck", "2s"]);
    assert_eq!(server.admin_get("/ready").0, 200);
    server.send_term();
    server.eventually("/ready at 503 in the lame-duck period", || {
        server.admin_get("/ready").0 == 503
    });
    // Still answering meanwhile.
    assert_eq!(
        server
            .dig(&["redis-headless.default.svc.cluster.local"])
            .answer
            .len(),
        3
    );
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}\n{}", server.log());
    let log = server.log();
    let lameduck = log.find("lame duck").expect("lame duck logged");
    let stopped = log.find("stopped").expect("stop logged");
    assert!(lameduck < stopped, "{log}");
}

#[test]
fn an_expired_watch_relists_and_misses_nothing() {
    let cluster = FakeCluster::empty();
    apply_headless_service(&cluster, &["10.1.0.1"]);
    let server = Server::watching(cluster, &[]);
    let name = "api.shop.svc.cluster.local";
    assert_eq!(server.dig(&[name]).data("A"), ["10.1.0.1"]);

    // While podns cannot see it, the API server changes and forgets the history podns would
    // resume from: the re-watch gets 410 Gone, and only a fresh list brings podns up to date.
    let api = &server.api().api;
    let lists_before = list_requests(api);
    api.stop();
    apply_slice(server.api(), &["10.1.0.7"]);
    api.compact();
    server.api().block_on(api.resume());
    server.eventually("the change after the relist", || {
        server.dig(&[name]).data("A") == ["10.1.0.7"]
    });
    assert!(
        list_requests(api) > lists_before,
        "no relist after 410: {:?}",
        api.requests()
    );
}

/// How many list (not watch) requests the API server has seen.
fn list_requests(api: &podns_testkit::FakeApiServer) -> usize {
    api.requests()
        .iter()
        .filter(|r| !r.query.iter().any(|(k, v)| k == "watch" && v == "true"))
        .count()
}
