//! Lookups under the CoreDNS-compatibility options: several cluster domains, narrow reverse
//! zones, `pods`, `endpoint_pod_names`, `noendpoints`, and the TTL range.

use std::sync::Arc;

use podns_view::{
    EndpointConditions, EndpointView, PodView, PortView, Protocol, ServiceKey, ServiceKind,
    ServiceView,
};

use super::*;
use crate::names::NameError;
use crate::records::RType;
use crate::{Error, PodMode, ZoneBuilder};

fn name(dotted: &str) -> Vec<u8> {
    Name::from_dotted(dotted).unwrap().as_wire().to_vec()
}

fn ep(ip: &str, hostname: Option<&str>, pod: Option<&str>) -> EndpointView {
    EndpointView {
        addresses: vec![ip.parse().unwrap()],
        hostname: hostname.map(str::to_owned),
        conditions: EndpointConditions::READY,
        ports: Arc::from(vec![PortView {
            name: Some("http".into()),
            protocol: Protocol::Tcp,
            port: 8080,
        }]),
        node_name: None,
        zone: None,
        target_pod: pod.map(str::to_owned),
    }
}

/// `web` headless (web-0 with a hostname; a pod `web-abc12` and a pod named `bad.name` without),
/// `api` ClusterIP 10.96.0.10, in `default`; namespace `empty`; pods in `default`.
fn view() -> ClusterView {
    let port = PortView {
        name: Some("http".into()),
        protocol: Protocol::Tcp,
        port: 80,
    };
    ClusterView {
        namespaces: vec!["default".into(), "empty".into()],
        services: vec![
            ServiceView {
                key: ServiceKey::new("default", "api"),
                kind: ServiceKind::ClusterIp {
                    cluster_ips: vec!["10.96.0.10".parse().unwrap()],
                },
                ports: vec![port.clone()],
                endpoints: vec![ep("10.244.9.9", None, Some("api-xyz"))],
            },
            ServiceView {
                key: ServiceKey::new("default", "web"),
                kind: ServiceKind::Headless,
                ports: vec![port],
                endpoints: vec![
                    ep("10.244.1.10", Some("web-0"), Some("web-0")),
                    ep("10.244.1.11", None, Some("web-abc12")),
                    ep("fd00::12", None, Some("bad.name")),
                ],
            },
        ],
        pods: vec![
            PodView {
                namespace: "default".into(),
                name: "web-0".into(),
                addresses: vec!["10.244.1.10".parse().unwrap(), "fd00::10".parse().unwrap()],
            },
            PodView {
                namespace: "empty".into(),
                name: "lonely".into(),
                addresses: vec!["10.244.5.5".parse().unwrap()],
            },
        ],
    }
}

fn snapshot(config: &ZoneConfig) -> ZoneSnapshot {
    build_with_serial(config, &view(), 1)
}

/// What a lookup gives, in words: `answer N`, `nodata <apex len>`, `nxdomain <apex len>`,
/// `pod <ip>`, `refused`. The apex is told apart by the negative's SOA owner length.
fn ask(s: &ZoneSnapshot, qname: &str, qtype: RType) -> String {
    match s.lookup(&name(qname), qtype.0) {
        Lookup::NotServed => "refused".into(),
        Lookup::Answer(a) => format!("answer {}", a.answer_count()),
        Lookup::NoData(n) => format!("nodata {}", soa_zone(s, n)),
        Lookup::NxDomain(n) => format!("nxdomain {}", soa_zone(s, n)),
        Lookup::PodAddress { ip, ttl } => format!("pod {ip} ttl {ttl}"),
    }
}

/// The apex of the zone whose negative answer `n` is.
fn soa_zone(s: &ZoneSnapshot, n: &Negative) -> String {
    s.zones
        .iter()
        .find(|z| std::ptr::eq(&z.negative, n))
        .map(|z| z.apex.to_string())
        .unwrap()
}

/// The RDATA of the answer, as the RRset prints it (from the builder's `rrsets`).
fn rdata(config: &ZoneConfig, owner: &str, rtype: RType) -> Vec<String> {
    let owner = Name::from_dotted(owner).unwrap();
    let mut builder = ZoneBuilder::new(config.clone());
    builder.replace_all(&view());
    builder
        .rrsets()
        .iter()
        .filter(|r| r.name == owner && r.rtype == rtype)
        .flat_map(|r| {
            r.to_string()
                .lines()
                .map(|l| l.rsplit(' ').next().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_name_is_served_under_each_cluster_domain_with_its_own_soa() {
    let config = ZoneConfig {
        cluster_domains: vec!["cluster.local".into(), "example.local.".into()],
        ..ZoneConfig::default()
    };
    let s = snapshot(&config);
    for zone in ["cluster.local", "example.local"] {
        assert_eq!(
            ask(&s, &format!("api.default.svc.{zone}"), RType::A),
            "answer 1"
        );
        assert_eq!(
            ask(&s, &format!("web-0.web.default.svc.{zone}"), RType::A),
            "answer 1"
        );
        assert_eq!(
            ask(&s, &format!("dns-version.{zone}"), RType::TXT),
            "answer 1"
        );
        assert_eq!(ask(&s, zone, RType::SOA), "answer 1");
        assert_eq!(ask(&s, zone, RType::NS), "answer 1");
        // Negative answers carry the SOA of the zone they fall in.
        assert_eq!(
            ask(&s, &format!("nope.default.svc.{zone}"), RType::A),
            format!("nxdomain {zone}.")
        );
        assert_eq!(
            ask(&s, &format!("api.default.svc.{zone}"), RType::AAAA),
            format!("nodata {zone}.")
        );
        assert_eq!(
            rdata(&config, zone, RType::NS),
            [format!("ns.dns.{zone}.")],
            "each zone names its own nameserver"
        );
        // SRV targets stay inside the zone that was asked.
        assert_eq!(
            rdata(
                &config,
                &format!("_http._tcp.web.default.svc.{zone}"),
                RType::SRV
            )[0],
            format!("web-0.web.default.svc.{zone}.")
        );
    }
    // PTR targets are in the primary (first) zone only, one PTR per address.
    assert_eq!(
        rdata(&config, "10.0.96.10.in-addr.arpa", RType::PTR),
        ["api.default.svc.cluster.local."]
    );
    assert_eq!(ask(&s, "example.com", RType::A), "refused");
}

#[test]
fn narrow_reverse_zones_from_names_and_cidrs() {
    let config = ZoneConfig {
        reverse_zones: vec![
            "10.96.0.0/16".into(),
            "244.10.in-addr.arpa".into(),
            "fd00::/8".into(),
        ],
        ..ZoneConfig::default()
    };
    let s = snapshot(&config);
    assert_eq!(ask(&s, "10.0.96.10.in-addr.arpa", RType::PTR), "answer 1");
    assert_eq!(ask(&s, "10.1.244.10.in-addr.arpa", RType::PTR), "answer 1");
    // Inside a served reverse zone, no record: NXDOMAIN with that zone's SOA.
    assert_eq!(
        ask(&s, "99.0.96.10.in-addr.arpa", RType::PTR),
        "nxdomain 96.10.in-addr.arpa."
    );
    assert_eq!(
        ask(&s, "1.1.1.244.10.in-addr.arpa", RType::PTR),
        "nxdomain 244.10.in-addr.arpa."
    );
    assert_eq!(ask(&s, "96.10.in-addr.arpa", RType::SOA), "answer 1");
    // Outside every configured reverse zone: not ours (REFUSED, later forwarded).
    assert_eq!(ask(&s, "1.0.0.10.in-addr.arpa", RType::PTR), "refused");
    assert_eq!(ask(&s, "10.in-addr.arpa", RType::SOA), "refused");
    assert_eq!(ask(&s, "1.1.168.192.in-addr.arpa", RType::PTR), "refused");
    assert_eq!(ask(&s, "in-addr.arpa", RType::SOA), "refused");
    let v6 = names::reverse("fd00::99".parse().unwrap()).to_string();
    assert_eq!(ask(&s, &v6, RType::PTR), "nxdomain d.f.ip6.arpa.");
    let other = names::reverse("2001:db8::1".parse().unwrap()).to_string();
    assert_eq!(ask(&s, &other, RType::PTR), "refused");
}

#[test]
fn pods_disabled_is_nxdomain_everywhere_under_pod() {
    let s = snapshot(&ZoneConfig::default());
    for q in [
        "10-244-1-10.default.pod.cluster.local",
        "default.pod.cluster.local",
        "pod.cluster.local",
    ] {
        assert_eq!(ask(&s, q, RType::A), "nxdomain cluster.local.", "{q}");
    }
}

#[test]
fn pods_verified_answers_existing_pod_addresses_only() {
    let config = ZoneConfig {
        pods: PodMode::Verified,
        ..ZoneConfig::default()
    };
    let s = snapshot(&config);
    assert_eq!(
        ask(&s, "10-244-1-10.default.pod.cluster.local", RType::A),
        "answer 1"
    );
    assert_eq!(
        ask(&s, "fd00--10.default.pod.cluster.local", RType::AAAA),
        "answer 1"
    );
    assert_eq!(
        ask(&s, "10-244-1-10.default.pod.cluster.local", RType::AAAA),
        "nodata cluster.local."
    );
    // A pod of another namespace, or no pod at all: NXDOMAIN.
    assert_eq!(
        ask(&s, "10-244-5-5.default.pod.cluster.local", RType::A),
        "nxdomain cluster.local."
    );
    assert_eq!(
        ask(&s, "10-244-5-5.empty.pod.cluster.local", RType::A),
        "answer 1"
    );
    assert_eq!(
        ask(&s, "10-244-1-99.default.pod.cluster.local", RType::A),
        "nxdomain cluster.local."
    );
    // CoreDNS: `<ns>.pod.<zone>` is NODATA for an existing namespace, NXDOMAIN otherwise.
    assert_eq!(
        ask(&s, "default.pod.cluster.local", RType::A),
        "nodata cluster.local."
    );
    assert_eq!(
        ask(&s, "empty.pod.cluster.local", RType::A),
        "nodata cluster.local."
    );
    assert_eq!(
        ask(&s, "nons.pod.cluster.local", RType::A),
        "nxdomain cluster.local."
    );
    // Verified does not read addresses from labels.
    assert_eq!(
        ask(&s, "1-2-3-4.default.pod.cluster.local", RType::A),
        "nxdomain cluster.local."
    );
}

#[test]
fn pods_insecure_answers_any_well_formed_label_in_an_existing_namespace() {
    let config = ZoneConfig {
        pods: PodMode::Insecure,
        ttl: 7,
        cluster_domains: vec!["cluster.local".into(), "example.local".into()],
        ..ZoneConfig::default()
    };
    let s = snapshot(&config);
    assert_eq!(
        ask(&s, "10-240-0-1.default.pod.cluster.local", RType::A),
        "pod 10.240.0.1 ttl 7"
    );
    assert_eq!(
        ask(&s, "172-0-0-2.empty.pod.example.local", RType::ANY),
        "pod 172.0.0.2 ttl 7"
    );
    assert_eq!(
        ask(
            &s,
            "fd00-0-0-0-0-0-0-5.default.pod.cluster.local",
            RType::AAAA
        ),
        "pod fd00::5 ttl 7"
    );
    assert_eq!(
        ask(&s, "fd00--5.default.pod.cluster.local", RType::AAAA),
        "pod fd00::5 ttl 7"
    );
    // The name exists without the other family or type: NODATA, SOA of its zone.
    assert_eq!(
        ask(&s, "10-240-0-1.default.pod.example.local", RType::AAAA),
        "nodata example.local."
    );
    assert_eq!(
        ask(&s, "10-240-0-1.default.pod.cluster.local", RType::TXT),
        "nodata cluster.local."
    );
    // Malformed labels, missing namespaces and deeper names: NXDOMAIN (CoreDNS errNoItems).
    for q in [
        "blah.default.pod.cluster.local",
        "10-240-0-256.default.pod.cluster.local",
        "10-240-0-1.nons.pod.cluster.local",
        "x.10-240-0-1.default.pod.cluster.local",
        "10-240-0-1.default.svc.cluster.local",
    ] {
        assert_eq!(ask(&s, q, RType::A), "nxdomain cluster.local.", "{q}");
    }
    assert_eq!(
        ask(&s, "default.pod.cluster.local", RType::A),
        "nodata cluster.local."
    );
    // Insecure ignores the pod list: no precomputed pod names.
    assert!(rdata(&config, "10-244-1-10.default.pod.cluster.local", RType::A).is_empty());
}

#[test]
fn endpoint_pod_names_name_endpoints_without_hostname_by_their_pod() {
    let off = snapshot(&ZoneConfig::default());
    assert_eq!(
        ask(&off, "10-244-1-11.web.default.svc.cluster.local", RType::A),
        "answer 1"
    );
    assert_eq!(
        ask(&off, "web-abc12.web.default.svc.cluster.local", RType::A),
        "nxdomain cluster.local."
    );
    let config = ZoneConfig {
        endpoint_pod_names: true,
        ..ZoneConfig::default()
    };
    let on = snapshot(&config);
    assert_eq!(
        ask(&on, "web-abc12.web.default.svc.cluster.local", RType::A),
        "answer 1"
    );
    assert_eq!(
        ask(&on, "10-244-1-11.web.default.svc.cluster.local", RType::A),
        "nxdomain cluster.local."
    );
    // The hostname still wins; a pod name that is not a label falls back to the dashed address.
    assert_eq!(
        ask(&on, "web-0.web.default.svc.cluster.local", RType::A),
        "answer 1"
    );
    assert_eq!(
        ask(&on, "fd00--12.web.default.svc.cluster.local", RType::AAAA),
        "answer 1"
    );
    let targets = rdata(
        &config,
        "_http._tcp.web.default.svc.cluster.local",
        RType::SRV,
    );
    assert!(targets.contains(&"web-abc12.web.default.svc.cluster.local.".to_owned()));
    assert_eq!(
        rdata(&config, "11.1.244.10.in-addr.arpa", RType::PTR),
        ["web-abc12.web.default.svc.cluster.local."]
    );
}

#[test]
fn noendpoints_drops_endpoint_records_but_keeps_cluster_ip_records() {
    let config = ZoneConfig {
        no_endpoints: true,
        ..ZoneConfig::default()
    };
    let s = snapshot(&config);
    for q in [
        "web.default.svc.cluster.local",
        "web-0.web.default.svc.cluster.local",
        "10-244-1-11.web.default.svc.cluster.local",
        "_http._tcp.web.default.svc.cluster.local",
    ] {
        assert_eq!(ask(&s, q, RType::A), "nxdomain cluster.local.", "{q}");
    }
    assert_eq!(
        ask(&s, "10.1.244.10.in-addr.arpa", RType::PTR),
        "nxdomain in-addr.arpa."
    );
    assert_eq!(
        ask(&s, "api.default.svc.cluster.local", RType::A),
        "answer 1"
    );
    assert_eq!(
        ask(&s, "_http._tcp.api.default.svc.cluster.local", RType::SRV),
        "answer 1"
    );
    assert_eq!(
        ask(&s, "api.default.svc.cluster.local", RType::SRV),
        "answer 1"
    );
    assert_eq!(ask(&s, "10.0.96.10.in-addr.arpa", RType::PTR), "answer 1");
}

#[test]
fn validate_checks_ttl_range_zones_and_cidrs() {
    let ok = ZoneConfig {
        ttl: 3600,
        reverse_zones: vec!["10.0.0.0/17".into(), "fd00::/7".into()],
        ..ZoneConfig::default()
    };
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(
        ZoneConfig {
            ttl: 0,
            ..ZoneConfig::default()
        }
        .validate(),
        Ok(())
    );
    assert_eq!(
        ZoneConfig {
            ttl: 3601,
            ..ZoneConfig::default()
        }
        .validate(),
        Err(Error::InvalidTtl { ttl: 3601 })
    );
    assert_eq!(
        ZoneConfig {
            cluster_domains: vec![],
            ..ZoneConfig::default()
        }
        .validate(),
        Err(Error::NoClusterDomain)
    );
    let bad_cidr = ZoneConfig {
        reverse_zones: vec!["10.0.0.0/40".into()],
        ..ZoneConfig::default()
    };
    assert!(matches!(
        bad_cidr.validate(),
        Err(Error::InvalidZone {
            reason: NameError::InvalidCidr(_),
            ..
        })
    ));
    let bad_second = ZoneConfig {
        cluster_domains: vec!["cluster.local".into(), "a..b".into()],
        ..ZoneConfig::default()
    };
    assert!(matches!(
        bad_second.validate(),
        Err(Error::InvalidZone { .. })
    ));
}

/// A node whose whole content is its name and `payload` (enough for the shard's bookkeeping).
/// A node of one type whose answer is `payload` bytes (at least 6) of no records.
fn node(dotted: &str, payload: usize) -> NodeBuf {
    let name = Name::from_dotted(dotted).unwrap();
    let body = opaque(payload);
    NodeBuf::encode(
        name.as_wire(),
        0,
        &[(1, 0, payload)],
        0,
        &body,
        &mut Vec::new(),
    )
}

/// A prepared answer of `len` bytes (at least 6): the general form without records, then
/// filler its last bound covers.
fn opaque(len: usize) -> Vec<u8> {
    let mut body = vec![0, 0, 0, 0];
    body.extend_from_slice(&((len - 6) as u16).to_be_bytes());
    body.resize(len, 0xAB);
    body
}

#[test]
fn a_node_beyond_64_kib_keeps_its_answers_apart() {
    // Two answers near the limit of one (a 16-bit length each): the node's own length no
    // longer fits 16 bits, and nothing in it needs to.
    let wire = Name::from_dotted("big.example").unwrap();
    let (a, b) = (opaque(60_000), opaque(50_000));
    let body = [&a[..], &b[..]].concat();
    let big = NodeBuf::encode(
        wire.as_wire(),
        0,
        &[(1, 0, a.len()), (28, a.len(), body.len())],
        1,
        &body,
        &mut Vec::new(),
    );
    let mut shard = Shard::default();
    for i in 0..3 {
        shard.insert(node(&format!("n{i}.example"), 40).as_bytes());
    }
    shard.insert(big.as_bytes());
    shard.insert(node("after.example", 9).as_bytes());
    for copy in [shard.clone(), shard.compacted(0)] {
        let found = copy.get(wire.as_wire()).expect("stored");
        let encoded = Node::encoded(big.as_bytes());
        assert_eq!(
            found.len() - found.name_len(),
            encoded.len() - encoded.name_len(),
            "the same tail"
        );
        let types: Vec<(u16, usize)> = found.types().map(|(t, a)| (t, a.len())).collect();
        assert_eq!(types, [(28, 50_000), (1, 60_000)], "the ANY answer first");
        assert_eq!(found.answer(1).map(<[u8]>::len), Some(60_000));
        assert_eq!(found.answer(255).map(<[u8]>::len), Some(50_000));
        assert_eq!(found.answer(16), None);
        let after = copy.get(&name("after.example")).expect("the next node");
        assert_eq!(after.answer(1).map(<[u8]>::len), Some(9));
    }
}

#[test]
fn links_and_answers_of_either_form_say_their_length() {
    let wire = Name::from_dotted("s.example").unwrap();
    let mut body = Vec::new();
    let single = [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1];
    body.extend_from_slice(&single);
    write_link(&mut body, b"\x05_http\x04_tcp");
    body.extend_from_slice(&opaque(6));
    let types = [
        (1, 0, 16),
        (33, 16, body.len() - 6),
        (16, body.len() - 6, body.len()),
    ];
    let n = NodeBuf::encode(wire.as_wire(), 0, &types, 0, &body, &mut Vec::new());
    let node = Node::encoded(n.as_bytes());
    assert_eq!(node.len(), n.as_bytes().len());
    assert_eq!(node.answer(1), Some(&single[..]));
    assert_eq!(node.answer(33), Some(&b"\xFF\xFF\x0B\x05_http\x04_tcp"[..]));
    assert_eq!(node.answer(16).map(<[u8]>::len), Some(6));
    // Types are stored in a byte: 257 (CAA) is not A, whose low byte it shares.
    assert_eq!(node.answer(1 + 256), None);
    // Flags share a byte with the count.
    let flags = FLAG_CNAME | FLAG_INSECURE_PODS;
    let n = NodeBuf::encode(
        wire.as_wire(),
        flags,
        &types[..1],
        0,
        &body,
        &mut Vec::new(),
    );
    let node = Node::encoded(n.as_bytes());
    assert_eq!((node.flags(), node.types().count()), (flags, 1));
    assert_eq!(
        node.answer(28),
        Some(&single[..]),
        "a CNAME owner answers every type"
    );
}

#[test]
fn shards_replace_remove_and_compact_without_losing_nodes() {
    let mut shard = Shard::default();
    let names: Vec<String> = (0..300).map(|i| format!("n{i}.example")).collect();
    for n in &names {
        assert!(shard.insert(node(n, 40).as_bytes()));
    }
    // Replacing every node many times leaves dead bytes behind, which compaction reclaims.
    for round in 1..=5 {
        for n in &names {
            assert!(
                !shard.insert(node(n, 40 + round).as_bytes()),
                "{n} replaced, not added"
            );
        }
        let live: usize = shard.iter().map(|n| n.len()).sum();
        assert_eq!(live + shard.dead, shard.bytes.len());
        assert!(
            shard.bytes.len() <= 2 * live + 4096,
            "compacted: {}",
            shard.bytes.len()
        );
    }
    for (i, n) in names.iter().enumerate() {
        let found = shard.get(&name(n)).expect("still there");
        let payload = found.types().next().unwrap().1.len();
        assert_eq!(payload, 45, "{i}: the newest copy");
    }
    for n in names.iter().step_by(2) {
        assert!(shard.remove(&name(n)));
        assert!(!shard.remove(&name(n)));
    }
    shard.trim();
    assert_eq!(shard.dead, 0);
    assert_eq!(shard.bytes.len(), shard.bytes.capacity());
    let copy = shard.clone();
    for (i, n) in names.iter().enumerate() {
        assert_eq!(copy.get(&name(n)).is_some(), i % 2 == 1, "{n}");
        assert_eq!(shard.contains(&name(n)), i % 2 == 1, "{n}");
    }
    assert_eq!(copy.iter().count(), 150);
}

#[test]
fn a_rewritten_shard_holds_the_kept_and_the_new_nodes_at_exact_capacity() {
    let mut shard = Shard::default();
    for i in 0..100 {
        shard.insert(node(&format!("n{i}.a.example"), 30).as_bytes());
        shard.insert(node(&format!("n{i}.b.example"), 30).as_bytes());
    }
    // Dead bytes in the source are not copied.
    for i in 0..50 {
        shard.insert(node(&format!("n{i}.b.example"), 31).as_bytes());
    }
    let under_a = |n: &[u8]| crate::names::is_subdomain(n, &name("a.example"));
    let mut fresh = NodeBatch::default();
    for i in 0..120 {
        fresh.push(&node(&format!("m{i}.a.example"), 7).0);
    }
    let (copy, dropped) = shard.rewritten(|n| !under_a(n), &fresh);
    assert_eq!(dropped, 100);
    assert_eq!(copy.iter().count(), 220);
    assert_eq!(copy.dead, 0);
    assert_eq!(copy.bytes.len(), copy.bytes.capacity());
    for i in 0..100 {
        assert!(copy.get(&name(&format!("n{i}.a.example"))).is_none());
        let b = copy.get(&name(&format!("n{i}.b.example"))).expect("kept");
        let want = if i < 50 { 31 } else { 30 };
        assert_eq!(b.types().next().unwrap().1.len(), want, "the live copy");
    }
    for i in 0..120 {
        let m = copy.get(&name(&format!("m{i}.a.example"))).expect("added");
        assert_eq!(m.types().next().unwrap().1.len(), 7);
    }
    // The source is untouched (it may still be published).
    assert_eq!(shard.iter().count(), 200);
}

#[test]
fn a_shard_keeps_names_as_first_label_and_one_shared_parent() {
    let mut shard = Shard::default();
    // Same first labels under different parents, a parent that is itself stored, a one-label
    // name and the root.
    let names = [
        "web-0.a.example",
        "web-1.a.example",
        "web-0.b.example",
        "a.example",
        "example",
        ".",
    ];
    for n in names {
        assert!(shard.insert(node(n, 10).as_bytes()), "{n} new");
    }
    for n in names {
        assert!(shard.contains(&name(n)), "{n}");
    }
    for miss in [
        "web-2.a.example",
        "web-1.b.example",
        "a.b.example",
        "b.example",
        "web-0",
    ] {
        assert!(!shard.contains(&name(miss)), "{miss}");
    }
    // Parents: `a.example`, `b.example`, `example` and the root, once each.
    let parents = |s: &Shard| {
        let mut all = Vec::new();
        let mut at = 0;
        while at < s.parents.len() {
            let len = s.parents[at] as usize;
            all.push(s.parents[at + 1..at + 1 + len].to_vec());
            at += 1 + len;
        }
        all.sort();
        all
    };
    assert_eq!(parents(&shard).len(), 4);
    let mut stored = Vec::new();
    shard.for_each_named(|n, node| {
        assert_eq!(node.types().count(), 1);
        stored.push(n.to_vec());
    });
    stored.sort();
    let mut want: Vec<Vec<u8>> = names.iter().map(|n| name(n)).collect();
    want.sort();
    assert_eq!(stored, want, "full names read back");
    // A copy drops the parents nothing refers to any more.
    let under_b = |n: &[u8]| crate::names::is_subdomain(n, &name("b.example"));
    let (copy, dropped) = shard.rewritten(|n| !under_b(n), &NodeBatch::default());
    assert_eq!(dropped, 1);
    assert_eq!(parents(&copy).len(), 3, "b.example no longer a parent");
    assert!(copy.contains(&name("web-1.a.example")));
    assert!(!copy.contains(&name("web-0.b.example")));
    for _ in 0..3 {
        for n in names {
            shard.insert(node(n, 2000).as_bytes());
        }
        shard.remove(&name("web-0.b.example"));
        assert!(shard.insert(node("web-0.b.example", 2000).as_bytes()));
    }
    assert!(shard.dead > 0);
    for copy in [shard.compacted(0), shard.clone()] {
        assert_eq!(copy.dead, 0, "compacted");
        assert_eq!(parents(&copy).len(), 4);
        for n in names {
            let found = copy.get(&name(n)).unwrap();
            assert_eq!(found.types().next().unwrap().1.len(), 2000, "{n}");
        }
    }
}
