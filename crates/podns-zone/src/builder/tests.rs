//! The builder against the reference one-pass build: random change sequences must end in a
//! snapshot that answers every question exactly as a full build of the final view, plus the
//! publishing properties (serials, sharing of untouched shards).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use podns_view::{
    ClusterView, EndpointConditions, EndpointView, PodView, PortView, Protocol, ServiceKey,
    ServiceKind, ServiceView,
};
use proptest::prelude::*;

use super::*;
use crate::Lookup;
use crate::snapshot::reference;

const QTYPES: [RType; 10] = [
    RType::A,
    RType::AAAA,
    RType::SRV,
    RType::PTR,
    RType::CNAME,
    RType::TXT,
    RType::SOA,
    RType::NS,
    RType::ANY,
    RType(99),
];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn http() -> PortView {
    PortView {
        name: Some("http".into()),
        protocol: Protocol::Tcp,
        port: 80,
    }
}

fn ep(addr: &str, hostname: Option<&str>) -> EndpointView {
    EndpointView {
        addresses: vec![ip(addr)],
        hostname: hostname.map(str::to_owned),
        conditions: EndpointConditions::READY,
        ports: Arc::from(vec![PortView {
            port: 8080,
            ..http()
        }]),
        node_name: Some("node-1".into()),
        zone: None,
        target_pod: None,
    }
}

fn headless(ns: &str, name: &str, endpoints: Vec<EndpointView>) -> ServiceView {
    ServiceView {
        key: ServiceKey::new(ns, name),
        kind: ServiceKind::Headless,
        ports: vec![http()],
        endpoints,
    }
}

/// Every name either snapshot knows, with a child and a pod-style sibling of each (misses).
fn questions(a: &ZoneSnapshot, r: &reference::ZoneSnapshot) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = a
        .names()
        .into_iter()
        .chain(r.names().map(<[u8]>::to_vec))
        .collect();
    let mut misses = Vec::new();
    for n in &names {
        for label in [&b"zz"[..], b"10-0-0-1", b"fd00--1", b"_tcp"] {
            let mut miss = vec![label.len() as u8];
            miss.extend_from_slice(label);
            miss.extend_from_slice(n);
            misses.push(miss);
        }
    }
    names.extend(misses);
    names.push(Name::from_dotted("example.com").unwrap().as_wire().to_vec());
    names.sort();
    names.dedup();
    names
}

/// Asserts that `snapshot` answers every question as the reference build of `view`.
fn assert_equivalent(config: &ZoneConfig, view: &ClusterView, snapshot: &ZoneSnapshot) {
    let reference = reference::build_with_serial(config, view, snapshot.serial());
    assert_eq!(snapshot.serial(), reference.serial());
    for qname in questions(snapshot, &reference) {
        for qtype in QTYPES {
            let got: crate::snapshot::Said = snapshot.said(&qname, qtype.0);
            let want = reference.lookup(&qname, qtype.0);
            assert_eq!(
                got,
                want,
                "{:?} {qtype}",
                Name::from_wire(&qname).map(|n| n.to_string())
            );
        }
    }
    assert_eq!(snapshot.name_count(), reference.names().count());
    let sorted = |s: &[Skipped]| {
        let mut v: Vec<String> = s.iter().map(ToString::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(snapshot.skipped()), sorted(reference.skipped()));
}

/// How many shards of `b` are not shared with `a`.
fn copied_shards(a: &ZoneSnapshot, b: &ZoneSnapshot) -> usize {
    let flat = |s: &ZoneSnapshot| -> Vec<Arc<crate::snapshot::Shard>> {
        s.shards.iter().flat_map(|b| b.iter().cloned()).collect()
    };
    flat(a)
        .iter()
        .zip(&flat(b))
        .filter(|(x, y)| !Arc::ptr_eq(x, y))
        .count()
}

// === unit tests ===

#[test]
fn serial_increases_on_every_snapshot() {
    let mut b = ZoneBuilder::new(ZoneConfig::default());
    let first = b.snapshot();
    let second = b.snapshot();
    assert!(second.serial() > first.serial());
    let third = b.snapshot_with_serial(7);
    assert_eq!(third.serial(), 7);
    assert!(b.snapshot().serial() > 7);
}

/// The SRV type entry stored at `dotted` in `snapshot`: its bytes.
fn stored_srv(snapshot: &ZoneSnapshot, dotted: &str) -> Vec<u8> {
    let wire = Name::from_dotted(dotted).unwrap();
    let node = snapshot
        .shards
        .iter()
        .flat_map(|b| b.iter())
        .find_map(|s| s.get(wire.as_wire()))
        .expect("stored");
    let (_, bytes) = node.types().find(|(t, _)| *t == RType::SRV.0).expect("SRV");
    bytes.to_vec()
}

#[test]
fn one_named_port_shares_the_service_srv_answer_and_answers_as_before() {
    let config = ZoneConfig::default();
    let unnamed = PortView {
        name: None,
        port: 9000,
        ..http()
    };
    // `one`: a named and an unnamed port (the bare name's SRV is the named port's);
    // `two`: two named ports (the bare name's SRV holds both, nothing to share).
    let mut one = headless(
        "default",
        "one",
        (1..=12)
            .map(|i| ep(&format!("10.0.1.{i}"), Some(&format!("one-{i}"))))
            .collect(),
    );
    one.ports.push(unnamed);
    let mut two = headless(
        "default",
        "two",
        (1..=5)
            .map(|i| ep(&format!("10.0.2.{i}"), (i % 2 == 0).then_some("host")))
            .collect(),
    );
    two.ports.push(PortView {
        name: Some("grpc".into()),
        port: 81,
        ..http()
    });
    for e in &mut two.endpoints {
        e.ports = Arc::from(vec![
            PortView {
                port: 8080,
                ..http()
            },
            PortView {
                name: Some("grpc".into()),
                port: 8081,
                ..http()
            },
        ]);
    }
    let mut view = ClusterView {
        namespaces: vec!["default".into()],
        services: vec![one.clone(), two],
        pods: Vec::new(),
    };
    let mut b = ZoneBuilder::new(config.clone());
    b.replace_all(&view);
    let snapshot = b.snapshot();
    assert_equivalent(&config, &view, &snapshot);
    let link = b"\xFF\xFF\x0B\x05_http\x04_tcp";
    let bare = stored_srv(&snapshot, "one.default.svc.cluster.local");
    assert_eq!(bare, link, "a link to the port name");
    assert!(stored_srv(&snapshot, "_http._tcp.one.default.svc.cluster.local").len() > 12 * 40);
    let own = stored_srv(&snapshot, "two.default.svc.cluster.local");
    assert!(own.len() > 12 * 40, "two named ports: its own answer");
    // An update rewrites both names together: still linked, still answering as a full build.
    one.endpoints.truncate(3);
    b.upsert_service(&one);
    view.services[0] = one;
    let next = b.snapshot();
    assert_equivalent(&config, &view, &next);
    assert_eq!(stored_srv(&next, "one.default.svc.cluster.local"), link);
}

#[test]
fn published_snapshots_do_not_change_and_untouched_shards_are_shared() {
    let config = ZoneConfig::default();
    let mut b = ZoneBuilder::new(config.clone());
    let mut view = ClusterView {
        namespaces: vec!["default".into()],
        ..ClusterView::default()
    };
    for i in 0..200u32 {
        let eps = (0..10)
            .map(|e| ep(&format!("10.1.{i}.{e}"), Some(&format!("h{e}"))))
            .collect();
        view.services
            .push(headless("default", &format!("s{i}"), eps));
    }
    view.services.sort_by(|a, b| a.key.cmp(&b.key));
    b.replace_all(&view);
    let before = b.snapshot_with_serial(1);
    let q = Name::from_dotted("h3.s7.default.svc.cluster.local").unwrap();
    assert!(matches!(before.lookup(q.as_wire(), 1), Lookup::Answer(_)));

    // One endpoint of one Service goes away.
    let i = view
        .services
        .iter()
        .position(|s| s.key.name == "s7")
        .unwrap();
    view.services[i].endpoints.remove(3);
    b.upsert_service(&view.services[i]);
    let after = b.snapshot_with_serial(2);
    assert!(matches!(before.lookup(q.as_wire(), 1), Lookup::Answer(_)));
    assert!(matches!(after.lookup(q.as_wire(), 1), Lookup::NxDomain(_)));
    let copied = copied_shards(&before, &after);
    // The Service's shard, its PTR's shard, and the shards of the three apexes (cluster.local,
    // in-addr.arpa, ip6.arpa), whose SOA carries the serial.
    assert!(copied <= 5, "{copied} shards copied");
    assert_equivalent(&config, &view, &after);

    // An upsert that DNS cannot see (a node name) publishes nothing new but the SOA.
    view.services[i].endpoints[0].node_name = Some("elsewhere".into());
    b.upsert_service(&view.services[i]);
    let same = b.snapshot_with_serial(3);
    let copied = copied_shards(&after, &same);
    assert!(copied <= 3, "{copied} shards copied");
}

#[test]
fn shared_ptrs_and_empty_non_terminals_follow_their_contributors() {
    let config = ZoneConfig::default();
    let mut b = ZoneBuilder::new(config.clone());
    let a = headless("ns1", "a", vec![ep("10.0.0.1", Some("x"))]);
    let c = headless("ns1", "c", vec![ep("10.0.0.1", Some("y"))]);
    let ptr = Name::from_dotted("1.0.0.10.in-addr.arpa").unwrap();
    let ns = Name::from_dotted("ns1.svc.cluster.local").unwrap();
    b.upsert_service(&a);
    b.upsert_service(&c);
    let both = b.snapshot_with_serial(1);
    let Lookup::Answer(answer) = both.lookup(ptr.as_wire(), RType::PTR.0) else {
        panic!("PTR expected");
    };
    assert_eq!(answer.answer_count(), 2);
    // The namespace is not listed, yet exists: a Service is in it.
    assert!(matches!(both.lookup(ns.as_wire(), 1), Lookup::NoData(_)));
    let view = |services: Vec<ServiceView>| ClusterView {
        services,
        ..ClusterView::default()
    };
    assert_equivalent(&config, &view(vec![a.clone(), c.clone()]), &both);

    b.remove_service(&a.key);
    let one = b.snapshot_with_serial(2);
    let Lookup::Answer(answer) = one.lookup(ptr.as_wire(), RType::PTR.0) else {
        panic!("PTR expected");
    };
    assert_eq!(answer.answer_count(), 1);
    assert_equivalent(&config, &view(vec![c.clone()]), &one);

    b.remove_service(&c.key);
    let none = b.snapshot_with_serial(3);
    assert!(matches!(
        none.lookup(ptr.as_wire(), 12),
        Lookup::NxDomain(_)
    ));
    assert!(matches!(none.lookup(ns.as_wire(), 1), Lookup::NxDomain(_)));
    assert_equivalent(&config, &view(vec![]), &none);
}

#[test]
fn rrsets_merge_shared_owners() {
    let mut b = ZoneBuilder::new(ZoneConfig::default());
    b.upsert_service(&headless("ns1", "a", vec![ep("10.0.0.1", Some("x"))]));
    b.upsert_service(&headless("ns1", "c", vec![ep("10.0.0.1", Some("y"))]));
    b.snapshot_with_serial(5);
    let sets = b.rrsets();
    let ptr = Name::from_dotted("1.0.0.10.in-addr.arpa").unwrap();
    let ptrs: Vec<&RRset> = sets.iter().filter(|s| s.name == ptr).collect();
    assert_eq!(ptrs.len(), 1);
    assert_eq!(ptrs[0].rdata.len(), 2);
    assert!(sets.iter().any(|s| s.rtype == RType::SOA));
}

#[test]
fn nested_zones_are_still_exact() {
    // `svc.cluster.local` inside `cluster.local`: Service subtrees are not private any more.
    let config = ZoneConfig {
        cluster_domains: vec!["cluster.local".into(), "default.svc.cluster.local".into()],
        ..ZoneConfig::default()
    };
    let mut b = ZoneBuilder::new(config.clone());
    let a = headless("default", "a", vec![ep("10.0.0.1", Some("x"))]);
    let svc = headless("svc", "default", vec![ep("10.0.0.2", Some("a"))]);
    b.upsert_service(&a);
    b.upsert_service(&svc);
    let view = ClusterView {
        namespaces: vec!["default".into(), "svc".into()],
        services: vec![a, svc],
        pods: vec![],
    };
    b.set_namespaces(&view.namespaces);
    assert_equivalent(&config, &view, &b.snapshot_with_serial(1));
    b.remove_service(&ServiceKey::new("svc", "default"));
    let mut rest = view.clone();
    rest.services.pop();
    assert_equivalent(&config, &rest, &b.snapshot_with_serial(2));
}

// === the equivalence property ===

/// One change to the cluster.
#[derive(Clone, Debug)]
enum Change {
    Upsert(ServiceView),
    Remove(ServiceKey),
    Namespaces(Vec<String>),
    Pods(Vec<PodView>),
    /// `replace_all` with these Services (in key order when the flag is set, else as drawn).
    ReplaceAll(Vec<ServiceView>, bool),
    Publish,
}

const NAMESPACES: [&str; 2] = ["default", "prod"];
const SERVICES: [&str; 3] = ["a", "web", "db"];
const ADDRESSES: [&str; 6] = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.1.3",
    "10.96.0.1",
    "fd00::1",
    "fd00::2",
];

fn key() -> impl Strategy<Value = ServiceKey> {
    (0..NAMESPACES.len(), 0..SERVICES.len())
        .prop_map(|(n, s)| ServiceKey::new(NAMESPACES[n], SERVICES[s]))
}

fn address() -> impl Strategy<Value = IpAddr> {
    (0..ADDRESSES.len()).prop_map(|i| ip(ADDRESSES[i]))
}

fn port() -> impl Strategy<Value = PortView> {
    prop_oneof![
        Just(http()),
        Just(PortView {
            name: None,
            protocol: Protocol::Tcp,
            port: 81
        }),
        Just(PortView {
            name: Some("dns".into()),
            protocol: Protocol::Udp,
            port: 53
        }),
    ]
}

/// Endpoint labels: none, plain ones, one equal to another but for case, one spelled as an
/// address's dashed label (the same name as an endpoint without hostname at that address),
/// one that is also a `_<proto>` name of the Service, and labels at and over the length limit.
fn hostname() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        4 => Just(None),
        2 => Just(Some("h0")),
        2 => Just(Some("h1")),
        1 => Just(Some("H0")),
        1 => Just(Some("10-0-0-1")),
        1 => Just(Some("_tcp")),
        // The longest label, and one over (skipped: a name the path leaves to records).
        1 => Just(Some("x23456789012345678901234567890123456789012345678901234567890123")),
        1 => Just(Some("x234567890123456789012345678901234567890123456789012345678901234")),
    ]
}

fn endpoint() -> impl Strategy<Value = EndpointView> {
    (
        // Mostly one address; sometimes none (not published), two (dual-stack, or a repeat).
        prop_oneof![
            1 => Just(Vec::new()),
            6 => address().prop_map(|a| vec![a]),
            2 => (address(), address()).prop_map(|(a, b)| vec![a, b]),
        ],
        hostname(),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some("p0")), Just(Some("bad.name"))],
        prop::collection::vec(port(), 0..3),
    )
        .prop_map(|(addresses, hostname, ready, pod, ports)| {
            let ports = target_ports(ports);
            EndpointView {
                addresses,
                hostname: hostname.map(str::to_owned),
                conditions: EndpointConditions {
                    ready,
                    ..EndpointConditions::READY
                },
                ports: ports.into(),
                node_name: None,
                zone: None,
                target_pod: pod.map(str::to_owned),
            }
        })
}

fn service() -> impl Strategy<Value = ServiceView> {
    let kind = prop_oneof![
        3 => Just(ServiceKind::Headless),
        2 => prop::collection::vec(address(), 0..3)
            .prop_map(|cluster_ips| ServiceKind::ClusterIp { cluster_ips }),
        1 => prop_oneof![Just("example.com"), Just("bad..name")].prop_map(|n| {
            ServiceKind::ExternalName {
                external_name: n.to_owned(),
            }
        }),
    ];
    (
        key(),
        kind,
        prop::collection::vec(port(), 0..3),
        prop::collection::vec(endpoint(), 0..5),
    )
        .prop_map(|(key, kind, ports, endpoints)| ServiceView {
            key,
            kind,
            ports,
            endpoints,
        })
}

fn pods() -> impl Strategy<Value = Vec<PodView>> {
    prop::collection::vec(
        (0..NAMESPACES.len(), prop::collection::vec(address(), 1..3)),
        0..4,
    )
    .prop_map(|pods| {
        pods.into_iter()
            .enumerate()
            .map(|(i, (ns, addresses))| PodView {
                namespace: NAMESPACES[ns].into(),
                name: format!("pod-{i}"),
                addresses,
            })
            .collect()
    })
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => service().prop_map(Change::Upsert),
        2 => key().prop_map(Change::Remove),
        1 => prop::sample::subsequence(NAMESPACES.to_vec(), 0..=2)
            .prop_map(|n| Change::Namespaces(n.into_iter().map(str::to_owned).collect())),
        1 => pods().prop_map(Change::Pods),
        1 => (prop::collection::vec(service(), 0..5), any::<bool>())
            .prop_map(|(services, sorted)| Change::ReplaceAll(services, sorted)),
        2 => Just(Change::Publish),
    ]
}

fn config() -> impl Strategy<Value = ZoneConfig> {
    (
        prop_oneof![
            Just(PodMode::Disabled),
            Just(PodMode::Insecure),
            Just(PodMode::Verified)
        ],
        any::<bool>(),
        prop_oneof![4 => Just(false), 1 => Just(true)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(pods, pod_names, no_endpoints, two_domains, ns_address)| {
            let mut config = ZoneConfig {
                pods,
                endpoint_pod_names: pod_names,
                no_endpoints,
                ..ZoneConfig::default()
            };
            if two_domains {
                config.cluster_domains.push("example.local".into());
                config.reverse_zones = vec!["10.0.0.0/16".into(), "fd00::/8".into()];
            }
            if ns_address {
                config.nameservers = vec![ip("10.96.0.10")];
            }
            config
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The test that matters most: any sequence of changes, published at any points, ends in
    /// a snapshot that answers every (name, type) as a full reference build of the final view.
    #[test]
    fn incremental_snapshots_answer_as_a_full_build(
        config in config(),
        changes in prop::collection::vec(change(), 1..24),
    ) {
        let mut builder = ZoneBuilder::new(config.clone());
        let mut services: BTreeMap<ServiceKey, ServiceView> = BTreeMap::new();
        let mut view = ClusterView::default();
        let mut serial = 1;
        let mut published = None;
        for change in changes {
            match change {
                Change::Upsert(svc) => {
                    builder.upsert_service(&svc);
                    services.insert(svc.key.clone(), svc);
                }
                Change::Remove(key) => {
                    builder.remove_service(&key);
                    services.remove(&key);
                }
                Change::Namespaces(ns) => {
                    builder.set_namespaces(&ns);
                    view.namespaces = ns;
                }
                Change::Pods(pods) => {
                    builder.set_pods(&pods);
                    view.pods = pods;
                }
                Change::ReplaceAll(list, sorted) => {
                    // A view lists each key once; the last one wins when a list repeats one.
                    let mut next: BTreeMap<ServiceKey, ServiceView> = BTreeMap::new();
                    for svc in list {
                        next.insert(svc.key.clone(), svc);
                    }
                    let mut all = view.clone();
                    all.services = if sorted {
                        next.values().cloned().collect()
                    } else {
                        next.values().rev().cloned().collect()
                    };
                    builder.replace_all(&all);
                    services = next;
                }
                Change::Publish => {
                    serial += 1;
                    view.services = services.values().cloned().collect();
                    let snapshot = builder.snapshot_with_serial(serial);
                    assert_equivalent(&config, &view, &snapshot);
                    // Kept, as a published snapshot is: the next changes copy what they write.
                    published = Some(snapshot);
                }
            }
        }
        serial += 1;
        view.services = services.values().cloned().collect();
        assert_equivalent(&config, &view, &builder.snapshot_with_serial(serial));
        drop(published);
        // And a fresh builder fed the final view at once (what `build` does) agrees too.
        assert_equivalent(&config, &view, &crate::build_with_serial(&config, &view, serial));
    }
}

/// An endpoint of a large Service: addresses and hostnames from ranges wide enough that RRsets
/// grow past the size where duplicates are found by hash (`records.rs`), and narrow enough
/// that duplicates (shared addresses, repeated hostnames) still occur.
fn big_endpoint() -> impl Strategy<Value = EndpointView> {
    (
        (0u8..3, 1u8..40),
        prop_oneof![2 => (0u8..30).prop_map(Some), 1 => Just(None)],
        prop_oneof![9 => Just(true), 1 => Just(false)],
        prop::collection::vec(port(), 0..3),
    )
        .prop_map(|((c, d), host, ready, ports)| {
            let ports = target_ports(ports);
            EndpointView {
                addresses: vec![IpAddr::from([10, 0, c, d])],
                hostname: host.map(|h| format!("h{h}")),
                conditions: EndpointConditions {
                    ready,
                    ..EndpointConditions::READY
                },
                ports: ports.into(),
                node_name: None,
                zone: None,
                target_pod: None,
            }
        })
}

fn big_service() -> impl Strategy<Value = ServiceView> {
    (
        key(),
        prop::collection::vec(port(), 1..3),
        prop::collection::vec(big_endpoint(), 8..60),
    )
        .prop_map(|(key, ports, endpoints)| ServiceView {
            key,
            kind: ServiceKind::Headless,
            ports,
            endpoints,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Large headless Services (RRsets past the hashed duplicate check, shards rewritten as a
    /// whole) updated in place, removed and re-added: each published snapshot answers as a
    /// full reference build.
    #[test]
    fn large_services_incrementally_answer_as_a_full_build(
        two_domains in any::<bool>(),
        changes in prop::collection::vec(
            prop_oneof![4 => big_service().prop_map(Change::Upsert), 1 => key().prop_map(Change::Remove)],
            1..8,
        ),
    ) {
        let mut config = ZoneConfig::default();
        if two_domains {
            config.cluster_domains.push("example.local".into());
        }
        let mut builder = ZoneBuilder::new(config.clone());
        let mut services: BTreeMap<ServiceKey, ServiceView> = BTreeMap::new();
        let mut view = ClusterView {
            namespaces: NAMESPACES.iter().map(|n| (*n).to_owned()).collect(),
            ..ClusterView::default()
        };
        builder.set_namespaces(&view.namespaces);
        let mut published = None;
        for (serial, change) in (1..).zip(changes) {
            match change {
                Change::Upsert(svc) => {
                    builder.upsert_service(&svc);
                    services.insert(svc.key.clone(), svc);
                }
                Change::Remove(key) => {
                    builder.remove_service(&key);
                    services.remove(&key);
                }
                _ => unreachable!("not drawn"),
            }
            view.services = services.values().cloned().collect();
            let snapshot = builder.snapshot_with_serial(serial);
            assert_equivalent(&config, &view, &snapshot);
            // Kept alive, as a published snapshot is, on every other round: shards the next
            // change writes are then copied (with its names at once), else written in place.
            published = (serial % 2 == 0).then_some(snapshot);
        }
        drop(published);
    }
}

/// An endpoint's ports: a Service's ports moved to 8000 + port, as targetPorts often are.
fn target_ports(ports: Vec<PortView>) -> Vec<PortView> {
    ports
        .into_iter()
        .map(|p| PortView {
            port: p.port + 8000,
            ..p
        })
        .collect()
}

#[test]
fn a_shard_set_gives_each_written_shard_once_in_order_and_empties() {
    let mut set = ShardSet::default();
    for index in [4095, 7, 64, 7, 0, 63, 4095, 65] {
        set.insert(index);
    }
    assert_eq!(set.take().collect::<Vec<_>>(), [0, 7, 63, 64, 65, 4095]);
    assert_eq!(set.take().count(), 0, "taking leaves the set empty");
    set.insert(SHARDS - 1);
    assert_eq!(set.take().collect::<Vec<_>>(), [SHARDS - 1]);
}
