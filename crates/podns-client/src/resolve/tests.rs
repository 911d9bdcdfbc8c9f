//! Tests of the search-list rules, SRV service names and resolver configuration (no DNS traffic: the DNS path is tested end to end against `podns serve` in the binary crate).

use super::*;

fn names(v: &[Name]) -> Vec<String> {
    v.iter().map(Name::to_ascii).collect()
}

fn pod_search() -> Vec<Name> {
    [
        "default.svc.cluster.local.",
        "svc.cluster.local.",
        "cluster.local.",
    ]
    .iter()
    .map(|s| Name::from_ascii(s).unwrap())
    .collect()
}

#[test]
fn search_list_like_a_pod() {
    let s = pod_search();
    assert_eq!(
        names(&candidate_names("redis-headless", &s, 5).unwrap()),
        [
            "redis-headless.default.svc.cluster.local.",
            "redis-headless.svc.cluster.local.",
            "redis-headless.cluster.local.",
            "redis-headless.",
        ]
    );
    // 4 dots < ndots 5: the search list still comes first (the 68% NXDOMAIN of design.md).
    let full = candidate_names("redis-headless.default.svc.cluster.local", &s, 5).unwrap();
    assert_eq!(full.len(), 4);
    assert_eq!(
        full[0].to_ascii(),
        "redis-headless.default.svc.cluster.local.default.svc.cluster.local."
    );
    assert_eq!(
        full[3].to_ascii(),
        "redis-headless.default.svc.cluster.local."
    );
}

#[test]
fn ndots_and_absolute_names() {
    let s = pod_search();
    let n = candidate_names("redis-headless.default.svc.cluster.local", &s, 1).unwrap();
    assert_eq!(n[0].to_ascii(), "redis-headless.default.svc.cluster.local.");
    assert_eq!(n.len(), 4);
    let n = candidate_names("redis-headless.default.svc.cluster.local.", &s, 5).unwrap();
    assert_eq!(names(&n), ["redis-headless.default.svc.cluster.local."]);
    let n = candidate_names("web", &[], 1).unwrap();
    assert_eq!(names(&n), ["web."]);
}

#[test]
fn srv_service_name() {
    let n = Name::from_ascii("_redis._tcp.redis-headless.default.svc.cluster.local.").unwrap();
    assert_eq!(service_of(&n), "redis-headless.default.svc.cluster.local.");
    let n = Name::from_ascii("redis-headless.default.svc.cluster.local.").unwrap();
    assert_eq!(service_of(&n), "redis-headless.default.svc.cluster.local.");
}

#[test]
fn builder_with_server_needs_no_system_config() {
    let r = Resolver::builder()
        .server("127.0.0.1:5353".parse().unwrap())
        .pod_search("default", "cluster.local.")
        .build()
        .unwrap();
    assert_eq!(
        r.search_domains(),
        [
            "default.svc.cluster.local.",
            "svc.cluster.local.",
            "cluster.local."
        ]
    );
    assert_eq!(r.ndots(), 5);
    let err = Resolver::builder()
        .server("127.0.0.1:5353".parse().unwrap())
        .search(["bad domain"])
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSearchDomain { .. }), "{err}");
}

#[tokio::test]
async fn literals_need_no_dns() {
    let r = Resolver::builder()
        .server("127.0.0.1:9".parse().unwrap())
        .build()
        .unwrap();
    let res = r
        .resolve(&Target::parse("[fd00::5]:80").unwrap())
        .await
        .unwrap();
    assert_eq!(
        res.endpoints,
        [Endpoint::new("[fd00::5]:80".parse().unwrap())]
    );
    assert!(res.exists);
}
