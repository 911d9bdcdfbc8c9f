//! The CoreDNS `kubernetes` options over real UDP sockets: `pods insecure|verified`, several
//! cluster domains, narrow reverse zones, `endpoint_pod_names`, `noendpoints`.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use podns_zone::{PodMode, ZoneConfig};

use crate::support::*;

/// A server for the standard test cluster with `zone`.
async fn start(zone: ZoneConfig) -> Server {
    let zone = ZoneConfig {
        nameservers: zone_config().nameservers,
        ..zone
    };
    Server::start_zone(podns_server::ServerConfig::default(), &zone, &cluster()).await
}

/// Asserts rcode, AA and an SOA (owner `zone`) alone in authority, and no answers.
fn negative(m: &Message, rcode: ResponseCode, zone: &str) {
    assert_eq!(m.metadata.response_code, rcode, "{m}");
    assert!(m.metadata.authoritative, "{m}");
    assert!(m.answers.is_empty(), "{m}");
    assert_eq!(m.authorities.len(), 1, "{m}");
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(m.authorities[0].name.to_string(), zone);
}

/// Asserts NOERROR + AA and returns the answers' `owner ttl type rdata`.
fn positive(m: &Message) -> Vec<String> {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m}");
    assert!(m.metadata.authoritative, "{m}");
    m.answers
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

#[tokio::test]
async fn pods_insecure_answers_from_the_label() {
    let s = start(ZoneConfig {
        pods: PodMode::Insecure,
        ..ZoneConfig::default()
    })
    .await;
    // The owner is a pointer to the question: the question's own spelling comes back.
    let m = udp(
        s.addr,
        &query("10-240-0-1.Default.pod.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(
        positive(&m),
        ["10-240-0-1.Default.pod.cluster.local. 30 A 10.240.0.1"]
    );
    let m = udp(
        s.addr,
        &with_edns(
            query("fd00--5.empty.pod.cluster.local.", RecordType::AAAA),
            1232,
        ),
    )
    .await;
    assert_eq!(
        positive(&m),
        ["fd00--5.empty.pod.cluster.local. 30 AAAA fd00::5"]
    );
    assert!(m.edns.is_some());
    let m = udp(
        s.addr,
        &query("10-240-0-1.default.pod.cluster.local.", RecordType::AAAA),
    )
    .await;
    negative(&m, ResponseCode::NoError, "cluster.local.");
    for bad in [
        "blah.default.pod.cluster.local.",
        "10-240-0-1.nons.pod.cluster.local.",
    ] {
        let m = udp(s.addr, &query(bad, RecordType::A)).await;
        negative(&m, ResponseCode::NXDomain, "cluster.local.");
    }
    let m = udp(s.addr, &query("default.pod.cluster.local.", RecordType::A)).await;
    negative(&m, ResponseCode::NoError, "cluster.local.");
    s.stop().await;
}

#[tokio::test]
async fn pods_verified_answers_existing_pods_only() {
    let s = start(ZoneConfig {
        pods: PodMode::Verified,
        ..ZoneConfig::default()
    })
    .await;
    let m = udp(
        s.addr,
        &query("10-244-1-10.default.pod.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(
        positive(&m),
        ["10-244-1-10.default.pod.cluster.local. 30 A 10.244.1.10"]
    );
    let m = udp(
        s.addr,
        &query("fd00-7--7.default.pod.cluster.local.", RecordType::AAAA),
    )
    .await;
    assert_eq!(
        positive(&m),
        ["fd00-7--7.default.pod.cluster.local. 30 AAAA fd00:7::7"]
    );
    let m = udp(
        s.addr,
        &query("10-240-0-1.default.pod.cluster.local.", RecordType::A),
    )
    .await;
    negative(&m, ResponseCode::NXDomain, "cluster.local.");
    s.stop().await;
}

#[tokio::test]
async fn pods_disabled_by_default() {
    let s = Server::start().await;
    let m = udp(
        s.addr,
        &query("10-244-1-10.default.pod.cluster.local.", RecordType::A),
    )
    .await;
    negative(&m, ResponseCode::NXDomain, "cluster.local.");
    s.stop().await;
}

#[tokio::test]
async fn several_cluster_domains_each_with_its_soa() {
    let s = start(ZoneConfig {
        cluster_domains: vec!["cluster.local".into(), "example.local".into()],
        ..ZoneConfig::default()
    })
    .await;
    let m = udp(
        s.addr,
        &query("api.default.svc.example.local.", RecordType::A),
    )
    .await;
    assert_eq!(
        positive(&m),
        ["api.default.svc.example.local. 30 A 10.96.0.10"]
    );
    let m = udp(
        s.addr,
        &query("nope.default.svc.example.local.", RecordType::A),
    )
    .await;
    negative(&m, ResponseCode::NXDomain, "example.local.");
    assert!(
        m.authorities[0]
            .data
            .to_string()
            .starts_with("ns.dns.example.local. hostmaster.example.local."),
        "{m}"
    );
    let m = udp(
        s.addr,
        &query("dns-version.example.local.", RecordType::TXT),
    )
    .await;
    assert_eq!(positive(&m).len(), 1);
    let m = udp(
        s.addr,
        &query("nope.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    negative(&m, ResponseCode::NXDomain, "cluster.local.");
    // PTRs name the primary zone.
    let m = udp(s.addr, &query("10.0.96.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_eq!(
        positive(&m),
        ["10.0.96.10.in-addr.arpa. 30 PTR api.default.svc.cluster.local."]
    );
    let m = udp(
        s.addr,
        &query("api.default.svc.other.local.", RecordType::A),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    s.stop().await;
}

#[tokio::test]
async fn narrow_reverse_zones_refuse_outside() {
    let s = start(ZoneConfig {
        reverse_zones: vec!["10.96.0.0/16".into()],
        ..ZoneConfig::default()
    })
    .await;
    let m = udp(s.addr, &query("10.0.96.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_eq!(positive(&m).len(), 1);
    let m = udp(s.addr, &query("99.0.96.10.in-addr.arpa.", RecordType::PTR)).await;
    negative(&m, ResponseCode::NXDomain, "96.10.in-addr.arpa.");
    // web-1's PTR is outside the configured reverse zone: not produced, and not ours.
    for q in [
        "11.1.244.10.in-addr.arpa.",
        "in-addr.arpa.",
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
    ] {
        let m = udp(s.addr, &query(q, RecordType::PTR)).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{q}: {m}");
        assert!(m.answers.is_empty() && m.authorities.is_empty());
    }
    s.stop().await;
}

#[tokio::test]
async fn endpoint_pod_names_name_the_srv_targets() {
    let mut view = cluster();
    let deploy = view
        .services
        .iter_mut()
        .find(|s| s.key.name == "deploy")
        .unwrap();
    deploy.endpoints[0].target_pod = Some("deploy-7d9f-abcde".into());
    deploy.endpoints[1].target_pod = Some("deploy-7d9f-fghij".into());
    let zone = ZoneConfig {
        endpoint_pod_names: true,
        ..zone_config()
    };
    let s = Server::start_zone(podns_server::ServerConfig::default(), &zone, &view).await;
    let m = udp(
        s.addr,
        &query(
            "_http._tcp.deploy.default.svc.cluster.local.",
            RecordType::SRV,
        ),
    )
    .await;
    assert_eq!(
        sorted(answers(&m)),
        [
            "0 50 8080 deploy-7d9f-abcde.deploy.default.svc.cluster.local.",
            "0 50 8080 deploy-7d9f-fghij.deploy.default.svc.cluster.local.",
        ]
    );
    let m = udp(
        s.addr,
        &query(
            "deploy-7d9f-abcde.deploy.default.svc.cluster.local.",
            RecordType::A,
        ),
    )
    .await;
    assert_eq!(
        positive(&m),
        ["deploy-7d9f-abcde.deploy.default.svc.cluster.local. 30 A 10.244.2.1"]
    );
    let m = udp(
        s.addr,
        &query(
            "10-244-2-1.deploy.default.svc.cluster.local.",
            RecordType::A,
        ),
    )
    .await;
    negative(&m, ResponseCode::NXDomain, "cluster.local.");
    // Hostnames still win.
    let m = udp(
        s.addr,
        &query("web-0.web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(positive(&m).len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn noendpoints_leaves_cluster_ip_services_only() {
    let s = start(ZoneConfig {
        no_endpoints: true,
        ..ZoneConfig::default()
    })
    .await;
    for q in [
        "web.default.svc.cluster.local.",
        "web-0.web.default.svc.cluster.local.",
        "10-244-2-1.deploy.default.svc.cluster.local.",
    ] {
        let m = udp(s.addr, &query(q, RecordType::A)).await;
        negative(&m, ResponseCode::NXDomain, "cluster.local.");
    }
    let m = udp(
        s.addr,
        &query("api.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(
        positive(&m),
        ["api.default.svc.cluster.local. 30 A 10.96.0.10"]
    );
    let m = udp(
        s.addr,
        &query(
            "_https._tcp.api.default.svc.cluster.local.",
            RecordType::SRV,
        ),
    )
    .await;
    assert_eq!(
        positive(&m),
        [
            "_https._tcp.api.default.svc.cluster.local. 30 SRV 0 100 443 api.default.svc.cluster.local."
        ]
    );
    s.stop().await;
}
