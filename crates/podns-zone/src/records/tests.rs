use std::sync::Arc;

use podns_view::{ClusterView, EndpointConditions, PortView, ServiceKey};

use super::*;

fn zones() -> Zones {
    Zones {
        clusters: vec![Name::from_dotted("cluster.local").unwrap()],
        reverse: vec![
            Name::from_dotted("in-addr.arpa").unwrap(),
            Name::from_dotted("ip6.arpa").unwrap(),
        ],
    }
}

fn port(name: Option<&str>, protocol: Protocol, port: u16) -> PortView {
    PortView {
        name: name.map(str::to_owned),
        protocol,
        port,
    }
}

fn ep(ip: &str, hostname: Option<&str>, ready: bool, ports: &Arc<[PortView]>) -> EndpointView {
    EndpointView {
        addresses: vec![ip.parse().unwrap()],
        hostname: hostname.map(str::to_owned),
        conditions: EndpointConditions {
            ready,
            serving: ready,
            terminating: false,
        },
        ports: ports.clone(),
        node_name: None,
        zone: None,
        target_pod: None,
    }
}

fn svc(
    name: &str,
    kind: ServiceKind,
    ports: Vec<PortView>,
    endpoints: Vec<EndpointView>,
) -> ServiceView {
    ServiceView {
        key: ServiceKey::new("default", name),
        kind,
        ports,
        endpoints,
    }
}

fn records(services: Vec<ServiceView>) -> Records {
    let view = ClusterView {
        namespaces: vec!["default".into(), "empty".into()],
        services,
        pods: Vec::new(),
    };
    build_records(&ZoneConfig::default(), &zones(), 7, &view)
}

/// The zone-file lines of the RRset at `name`/`rtype`, or `None`.
fn lines(r: &Records, name: &str, rtype: RType) -> Option<Vec<String>> {
    let name = Name::from_dotted(name).unwrap();
    let set = r
        .rrsets
        .iter()
        .find(|s| s.name == name && s.rtype == rtype)?;
    Some(set.to_string().lines().map(str::to_owned).collect())
}

#[test]
fn apex_records_like_coredns() {
    let r = records(vec![]);
    assert_eq!(
        lines(&r, "cluster.local", RType::SOA).unwrap(),
        [
            "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 30"
        ]
    );
    assert_eq!(
        lines(&r, "cluster.local", RType::NS).unwrap(),
        ["cluster.local. 30 IN NS ns.dns.cluster.local."]
    );
    assert!(lines(&r, "in-addr.arpa", RType::SOA).is_some());
    assert!(lines(&r, "ip6.arpa", RType::NS).is_some());
    // Spec §2.2.
    assert_eq!(
        lines(&r, "dns-version.cluster.local", RType::TXT).unwrap(),
        ["dns-version.cluster.local. 30 IN TXT \"1.1.0\""]
    );
    let ns = Name::from_dotted("default.svc.cluster.local").unwrap();
    assert!(r.names.contains(&ns));
    assert!(
        r.names
            .contains(&Name::from_dotted("empty.svc.cluster.local").unwrap())
    );
}

#[test]
fn cluster_ip_records() {
    let r = records(vec![svc(
        "api",
        ServiceKind::ClusterIp {
            cluster_ips: vec!["10.96.0.10".parse().unwrap(), "fd00::10".parse().unwrap()],
        },
        vec![
            port(Some("https"), Protocol::Tcp, 443),
            port(Some("dns"), Protocol::Udp, 53),
            port(None, Protocol::Tcp, 8080),
        ],
        vec![],
    )]);
    assert_eq!(
        lines(&r, "api.default.svc.cluster.local", RType::A).unwrap(),
        ["api.default.svc.cluster.local. 30 IN A 10.96.0.10"]
    );
    assert_eq!(
        lines(&r, "api.default.svc.cluster.local", RType::AAAA).unwrap(),
        ["api.default.svc.cluster.local. 30 IN AAAA fd00::10"]
    );
    // §2.3.2: Service port, weight 100 for the one record.
    assert_eq!(
        lines(&r, "_https._tcp.api.default.svc.cluster.local", RType::SRV).unwrap(),
        [
            "_https._tcp.api.default.svc.cluster.local. 30 IN SRV 0 100 443 api.default.svc.cluster.local."
        ]
    );
    assert!(lines(&r, "_dns._udp.api.default.svc.cluster.local", RType::SRV).is_some());
    // The bare name: every named port, weight ⌊100/2⌋; the unnamed port gets nothing.
    assert_eq!(
        lines(&r, "api.default.svc.cluster.local", RType::SRV).unwrap(),
        [
            "api.default.svc.cluster.local. 30 IN SRV 0 50 443 api.default.svc.cluster.local.",
            "api.default.svc.cluster.local. 30 IN SRV 0 50 53 api.default.svc.cluster.local.",
        ]
    );
    assert_eq!(
        lines(&r, "10.0.96.10.in-addr.arpa", RType::PTR).unwrap(),
        ["10.0.96.10.in-addr.arpa. 30 IN PTR api.default.svc.cluster.local."]
    );
    let v6 = names::reverse("fd00::10".parse().unwrap()).to_string();
    assert!(lines(&r, &v6, RType::PTR).is_some());
}

#[test]
fn headless_records_follow_ready_endpoints() {
    let ports: Arc<[PortView]> = vec![
        port(Some("web"), Protocol::Tcp, 8080),
        port(Some("metrics"), Protocol::Tcp, 9090),
    ]
    .into();
    let r = records(vec![svc(
        "web",
        ServiceKind::Headless,
        // Service ports differ from endpoint ports: SRV must carry the endpoint's.
        vec![
            port(Some("web"), Protocol::Tcp, 80),
            port(Some("metrics"), Protocol::Tcp, 90),
            port(None, Protocol::Tcp, 1),
        ],
        vec![
            ep("10.244.1.5", Some("web-0"), true, &ports),
            ep("10.244.1.6", None, true, &ports),
            ep("10.244.1.7", Some("web-2"), false, &ports),
            // The same endpoint again (a second slice): deduplicated.
            ep("10.244.1.5", Some("web-0"), true, &ports),
        ],
    )]);
    assert_eq!(
        lines(&r, "web.default.svc.cluster.local", RType::A).unwrap(),
        [
            "web.default.svc.cluster.local. 30 IN A 10.244.1.5",
            "web.default.svc.cluster.local. 30 IN A 10.244.1.6"
        ]
    );
    assert!(lines(&r, "web-0.web.default.svc.cluster.local", RType::A).is_some());
    // The dashed name resolves (it is an SRV target) but has no PTR.
    assert_eq!(
        lines(&r, "10-244-1-6.web.default.svc.cluster.local", RType::A).unwrap(),
        ["10-244-1-6.web.default.svc.cluster.local. 30 IN A 10.244.1.6"]
    );
    assert!(lines(&r, "6.1.244.10.in-addr.arpa", RType::PTR).is_none());
    assert_eq!(
        lines(&r, "5.1.244.10.in-addr.arpa", RType::PTR).unwrap(),
        ["5.1.244.10.in-addr.arpa. 30 IN PTR web-0.web.default.svc.cluster.local."]
    );
    // Not ready: nothing at all.
    assert!(lines(&r, "web-2.web.default.svc.cluster.local", RType::A).is_none());
    assert!(lines(&r, "7.1.244.10.in-addr.arpa", RType::PTR).is_none());
    // 3 ready endpoint entries → weight ⌊100/3⌋ = 33; 2 distinct records.
    assert_eq!(
        lines(&r, "_web._tcp.web.default.svc.cluster.local", RType::SRV).unwrap(),
        [
            "_web._tcp.web.default.svc.cluster.local. 30 IN SRV 0 33 8080 web-0.web.default.svc.cluster.local.",
            "_web._tcp.web.default.svc.cluster.local. 30 IN SRV 0 33 8080 10-244-1-6.web.default.svc.cluster.local.",
        ]
    );
    // Bare name: 2 named ports × 3 entries = 6 → weight 16.
    let bare = lines(&r, "web.default.svc.cluster.local", RType::SRV).unwrap();
    assert_eq!(bare.len(), 4);
    assert!(bare.iter().all(|l| l.contains(" SRV 0 16 ")), "{bare:?}");
}

#[test]
fn srv_weights_count_duplicates_like_coredns() {
    // Consul-like: 8 named ports, 3 pods; TCP and UDP ports with the same number give
    // identical SRV RDATA at the bare name.
    let ps = vec![
        port(Some("http"), Protocol::Tcp, 8500),
        port(Some("dns-tcp"), Protocol::Tcp, 8600),
        port(Some("dns-udp"), Protocol::Udp, 8600),
        port(Some("serflan-tcp"), Protocol::Tcp, 8301),
        port(Some("serflan-udp"), Protocol::Udp, 8301),
        port(Some("serfwan-tcp"), Protocol::Tcp, 8302),
        port(Some("serfwan-udp"), Protocol::Udp, 8302),
        port(Some("server"), Protocol::Tcp, 8300),
    ];
    let ports: Arc<[PortView]> = ps.clone().into();
    let eps = (0..3)
        .map(|i| {
            ep(
                &format!("10.0.0.{i}"),
                Some(&format!("consul-{i}")),
                true,
                &ports,
            )
        })
        .collect();
    let r = records(vec![svc("consul", ServiceKind::Headless, ps, eps)]);
    let bare = lines(&r, "consul.default.svc.cluster.local", RType::SRV).unwrap();
    assert_eq!(bare.len(), 15);
    assert!(bare.iter().all(|l| l.contains(" SRV 0 4 ")), "{bare:?}");
}

#[test]
fn headless_without_ready_endpoints_has_no_records() {
    let ports: Arc<[PortView]> = vec![port(Some("web"), Protocol::Tcp, 80)].into();
    let r = records(vec![svc(
        "down",
        ServiceKind::Headless,
        vec![port(Some("web"), Protocol::Tcp, 80)],
        vec![ep("10.0.0.1", Some("down-0"), false, &ports)],
    )]);
    let down = Name::from_dotted("down.default.svc.cluster.local").unwrap();
    assert!(
        r.rrsets.iter().all(
            |s| !s.name.is_in(&down) && !matches!(&s.rdata[0], RData::Ptr(t) if t.is_in(&down))
        )
    );
    assert!(!r.names.iter().any(|n| n.is_in(&down)));
}

#[test]
fn external_name_is_a_cname() {
    let r = records(vec![svc(
        "ext",
        ServiceKind::ExternalName {
            external_name: "Example.COM".into(),
        },
        vec![port(Some("http"), Protocol::Tcp, 80)],
        vec![],
    )]);
    assert_eq!(
        lines(&r, "ext.default.svc.cluster.local", RType::CNAME).unwrap(),
        ["ext.default.svc.cluster.local. 30 IN CNAME example.com."]
    );
    // No SRV or anything else under or at an ExternalName.
    let ext = Name::from_dotted("ext.default.svc.cluster.local").unwrap();
    assert_eq!(r.rrsets.iter().filter(|s| s.name.is_in(&ext)).count(), 1);
}

#[test]
fn overlong_names_are_skipped_not_broken() {
    let long = "a".repeat(64);
    let ports: Arc<[PortView]> = vec![].into();
    let r = records(vec![
        svc(
            &long,
            ServiceKind::Headless,
            vec![],
            vec![ep("10.0.0.1", None, true, &ports)],
        ),
        svc(
            "ok",
            ServiceKind::Headless,
            vec![],
            vec![ep("10.0.0.2", Some(&long), true, &ports)],
        ),
    ]);
    assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
    assert!(
        r.skipped
            .iter()
            .all(|s| s.reason == NameError::LabelTooLong)
    );
    // The service with the bad hostname still has its own A record.
    assert!(lines(&r, "ok.default.svc.cluster.local", RType::A).is_some());
}

#[test]
fn large_rrsets_keep_every_distinct_record_and_drop_duplicates() {
    // 5,000 hostnames whose SRV RDATA collide often under FxHash (names differing in two
    // nearby bytes), each endpoint listed twice: the duplicate check must be exact, not a
    // hash comparison, and every distinct record must stay, in first-seen order.
    let ports: Arc<[PortView]> = vec![port(Some("http"), Protocol::Tcp, 80)].into();
    let mut eps = Vec::new();
    for i in 0..5000u32 {
        let ip = std::net::Ipv4Addr::from(0x0A00_0000 + i).to_string();
        let host = format!("big-{i}");
        eps.push(ep(&ip, Some(&host), true, &ports));
        eps.push(ep(&ip, Some(&host), true, &ports));
    }
    let ps = vec![port(Some("http"), Protocol::Tcp, 80)];
    let r = records(vec![svc("big", ServiceKind::Headless, ps, eps)]);
    let srv = lines(&r, "_http._tcp.big.default.svc.cluster.local", RType::SRV).unwrap();
    assert_eq!(srv.len(), 5000);
    for (i, line) in srv.iter().enumerate() {
        assert!(
            line.ends_with(&format!(" 80 big-{i}.big.default.svc.cluster.local.")),
            "{line}"
        );
    }
    let a = lines(&r, "big.default.svc.cluster.local", RType::A).unwrap();
    assert_eq!(a.len(), 5000);
    let ptr = lines(&r, "0.0.0.10.in-addr.arpa", RType::PTR).unwrap();
    assert_eq!(ptr.len(), 1);
}
