//! Tests of StatefulSet naming (ordinals, pod hostnames, dashed addresses) and of endpoint sets (canonical order, diffs).

use super::*;

fn ep(s: &str) -> Endpoint {
    Endpoint::new(s.parse().unwrap())
}

#[test]
fn ordinals() {
    assert_eq!(ordinal_of("redis-0"), Some(0));
    assert_eq!(ordinal_of("redis-2"), Some(2));
    assert_eq!(ordinal_of("my-web-app-10"), Some(10));
    assert_eq!(ordinal_of("redis"), None);
    assert_eq!(ordinal_of("redis-"), None);
    assert_eq!(ordinal_of("-3"), None);
    assert_eq!(ordinal_of("redis-02"), None);
    assert_eq!(ordinal_of("nginx-7d9f8"), None);
    assert_eq!(
        ordinal_of("redis-99999999999"),
        None,
        "overflow is no ordinal"
    );
}

#[test]
fn hostnames_from_srv_targets() {
    let svc = "redis-headless.default.svc.cluster.local";
    let t = "redis-1.redis-headless.default.svc.cluster.local.";
    assert_eq!(pod_hostname(t, svc), Some("redis-1"));
    assert_eq!(
        pod_hostname("REDIS-1.Redis-Headless.default.svc.cluster.local", svc),
        Some("REDIS-1")
    );
    assert_eq!(
        pod_hostname("10-244-1-5.redis-headless.default.svc.cluster.local.", svc),
        None
    );
    assert_eq!(
        pod_hostname("fd00--5.redis-headless.default.svc.cluster.local.", svc),
        None
    );
    assert_eq!(
        pod_hostname("redis-1.other.default.svc.cluster.local.", svc),
        None
    );
    assert_eq!(
        pod_hostname("a.b.redis-headless.default.svc.cluster.local.", svc),
        None
    );
    assert_eq!(
        pod_hostname("redis-headless.default.svc.cluster.local.", svc),
        None
    );
}

#[test]
fn dashed_addresses() {
    assert!(is_dashed_address("10-244-1-5"));
    assert!(is_dashed_address("fd00--5"));
    assert!(is_dashed_address("2001-db8--1"));
    assert!(!is_dashed_address("redis-0"));
    assert!(!is_dashed_address("web"));
    assert!(!is_dashed_address("10-244-1"));
}

#[test]
fn set_is_canonical_and_unique() {
    let set = EndpointSet::new([
        ep("10.0.0.3:6379").with_hostname("redis-2"),
        ep("10.0.0.9:6379"),
        ep("10.0.0.1:6379").with_hostname("redis-0"),
        ep("10.0.0.1:6379"),
        ep("10.0.0.2:6379").with_hostname("redis-1"),
    ]);
    let order: Vec<_> = set.endpoints().iter().map(|e| e.addr.to_string()).collect();
    assert_eq!(
        order,
        [
            "10.0.0.1:6379",
            "10.0.0.2:6379",
            "10.0.0.3:6379",
            "10.0.0.9:6379"
        ]
    );
    assert_eq!(set.endpoints()[0].hostname(), Some("redis-0"));
    assert_eq!(set.state(), SetState::Exists);
}

#[test]
fn diff_reports_adds_removes_and_changes() {
    let a = EndpointSet::new([ep("10.0.0.1:80"), ep("10.0.0.2:80")]);
    let b = EndpointSet::new([ep("10.0.0.2:80").with_hostname("web-1"), ep("10.0.0.3:80")]);
    let (added, removed) = a.diff(&b);
    let added: Vec<_> = added.iter().map(|e| e.addr.to_string()).collect();
    let removed: Vec<_> = removed.iter().map(|e| e.addr.to_string()).collect();
    assert_eq!(added, ["10.0.0.2:80", "10.0.0.3:80"]);
    assert_eq!(removed, ["10.0.0.1:80", "10.0.0.2:80"]);
    assert_eq!(a.diff(&a), (vec![], vec![]));
    // A scale changes every SRV weight (⌊100 / records⌋): not a membership change.
    let three = EndpointSet::new([
        ep("10.0.0.1:80").with_srv(0, 33),
        ep("10.0.0.2:80").with_srv(0, 33),
    ]);
    let four = EndpointSet::new([
        ep("10.0.0.1:80").with_srv(0, 25),
        ep("10.0.0.2:80").with_srv(0, 25),
        ep("10.0.0.3:80").with_srv(0, 25),
    ]);
    let (added, removed) = three.diff(&four);
    assert_eq!((added.len(), removed.len()), (1, 0));
    assert_eq!(added[0].addr.to_string(), "10.0.0.3:80");
}
