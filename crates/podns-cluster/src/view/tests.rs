use std::net::IpAddr;
use std::path::Path;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions as K8sConditions, EndpointPort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use std::sync::Arc;

use podns_view::{EndpointConditions, PortView, Protocol, ServiceKind};

use super::*;
use crate::controller::{ControllerConfig, derive};
use crate::source::manifest::load;
use crate::store::ClusterStore;

fn view_of_fixture(name: &str) -> ClusterView {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let store = ClusterStore::from_objects(load(&[path]).unwrap());
    cluster_view(
        &derive(&store, &ControllerConfig::default()).unwrap(),
        &ViewConfig::default(),
    )
}

fn svc<'a>(view: &'a ClusterView, name: &str) -> &'a ServiceView {
    view.services.iter().find(|s| s.key.name == name).unwrap()
}

fn mk_service(name: &str, spec: ServiceSpec) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("default".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn mk_slice(
    service: &str,
    name: &str,
    address_type: &str,
    endpoints: Vec<Endpoint>,
    ports: Vec<EndpointPort>,
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("default".to_owned()),
            labels: Some([("kubernetes.io/service-name".to_owned(), service.to_owned())].into()),
            ..ObjectMeta::default()
        },
        address_type: address_type.to_owned(),
        endpoints,
        ports: Some(ports),
    }
}

#[test]
fn seed_002_lab_gives_the_views_the_seed_shows() {
    let view = view_of_fixture("seed-002-redis-nginx");
    assert_eq!(view.namespaces, ["default"]);
    let names: Vec<&str> = view.services.iter().map(|s| s.key.name.as_str()).collect();
    assert_eq!(
        names,
        ["nginx-clusterip", "nginx-headless", "redis-headless"]
    );

    let redis = svc(&view, "redis-headless");
    assert_eq!(redis.kind, ServiceKind::Headless);
    let hosts: Vec<_> = redis
        .endpoints
        .iter()
        .map(|e| e.hostname.as_deref().unwrap())
        .collect();
    assert_eq!(hosts, ["redis-0", "redis-1", "redis-2"]);
    for e in &redis.endpoints {
        assert_eq!(e.conditions, EndpointConditions::READY);
        assert_eq!(
            &*e.ports,
            [PortView {
                name: Some("redis".to_owned()),
                protocol: Protocol::Tcp,
                port: 6379
            }]
        );
        assert_eq!(e.target_pod.as_deref(), e.hostname.as_deref());
    }

    let clusterip = svc(&view, "nginx-clusterip");
    assert_eq!(
        clusterip.kind,
        ServiceKind::ClusterIp {
            cluster_ips: vec!["10.96.204.67".parse().unwrap()]
        }
    );
    assert_eq!(
        clusterip.ports,
        [PortView {
            name: Some("http".to_owned()),
            protocol: Protocol::Tcp,
            port: 80
        }]
    );
    let nginx = svc(&view, "nginx-headless");
    assert_eq!(nginx.endpoints.len(), 2);
    assert!(nginx.endpoints.iter().all(|e| e.hostname.is_none()));
    assert!(nginx.endpoints.iter().all(|e| {
        e.target_pod
            .as_deref()
            .unwrap()
            .starts_with("nginx-deployment-")
    }));
}

#[test]
fn seed_000_external_name_and_manual_endpoints() {
    let view = view_of_fixture("seed-000-headless-basics");
    assert_eq!(
        svc(&view, "external-db").kind,
        ServiceKind::ExternalName {
            external_name: "database.example.com".to_owned()
        }
    );
    let manual = svc(&view, "manual-endpoints");
    let ips: Vec<IpAddr> = manual.endpoints.iter().map(|e| e.addresses[0]).collect();
    assert_eq!(
        ips,
        ["192.168.1.11", "192.168.1.12", "192.168.1.13"].map(|s| s.parse::<IpAddr>().unwrap())
    );
    // The Endpoints port has no name: no SRV name, so None.
    assert_eq!(
        &*manual.endpoints[0].ports,
        [PortView {
            name: None,
            protocol: Protocol::Tcp,
            port: 8080
        }]
    );
    // web-N pods' subdomain is headless-service, but their labels (app: web) do not match its
    // selector (app: my-app), as in the seed: no endpoints.
    assert!(svc(&view, "headless-service").endpoints.is_empty());
    let cassandra = svc(&view, "cassandra");
    assert_eq!(cassandra.ports.len(), 3);
}

#[test]
fn conditions_get_api_defaults_ports_are_shared_and_bad_data_is_skipped() {
    let service = mk_service(
        "s",
        ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            ports: Some(vec![
                ServicePort {
                    name: Some(String::new()),
                    port: 53,
                    protocol: Some("UDP".to_owned()),
                    ..ServicePort::default()
                },
                ServicePort {
                    name: Some("x".to_owned()),
                    port: 1,
                    protocol: Some("QUIC".to_owned()),
                    ..ServicePort::default()
                },
            ]),
            ..ServiceSpec::default()
        },
    );
    let ep = |addrs: &[&str], hostname: Option<&str>, c: Option<K8sConditions>| Endpoint {
        addresses: addrs.iter().map(|a| (*a).to_owned()).collect(),
        hostname: hostname.map(str::to_owned),
        conditions: c,
        ..Endpoint::default()
    };
    let ports = vec![EndpointPort {
        name: Some("dns".to_owned()),
        port: Some(5353),
        protocol: Some("SCTP".to_owned()),
        app_protocol: None,
    }];
    let slice = mk_slice(
        "s",
        "s-1",
        "IPv4",
        vec![
            ep(&["10.0.0.1"], Some("a"), None),
            ep(
                &["10.0.0.2"],
                Some("Not_A_Label"),
                Some(K8sConditions {
                    ready: Some(false),
                    serving: None,
                    terminating: None,
                }),
            ),
            ep(&["not-an-ip"], None, None),
            ep(
                &["fd00::1", "10.0.0.3"],
                None,
                Some(K8sConditions {
                    ready: Some(false),
                    serving: Some(true),
                    terminating: Some(true),
                }),
            ),
        ],
        ports,
    );
    let other = mk_slice(
        "elsewhere",
        "e-1",
        "IPv4",
        vec![ep(&["10.9.9.9"], None, None)],
        vec![],
    );
    let derived = DerivedCluster {
        services: vec![service],
        endpoint_slices: vec![slice, other],
        ..DerivedCluster::default()
    };
    let view = cluster_view(&derived, &ViewConfig::default());
    let s = &view.services[0];
    assert_eq!(
        s.ports,
        [PortView {
            name: None,
            protocol: Protocol::Udp,
            port: 53
        }],
        "unknown protocol skipped, \"\" → None"
    );
    assert_eq!(s.endpoints.len(), 3);
    assert_eq!(s.endpoints[0].conditions, EndpointConditions::READY);
    assert_eq!(s.endpoints[0].hostname.as_deref(), Some("a"));
    assert_eq!(s.endpoints[1].hostname, None, "invalid hostname dropped");
    assert_eq!(
        s.endpoints[1].conditions,
        EndpointConditions {
            ready: false,
            serving: false,
            terminating: false
        }
    );
    assert_eq!(
        s.endpoints[2].addresses,
        ["10.0.0.3".parse::<IpAddr>().unwrap()],
        "IPv6 address in an IPv4 slice dropped"
    );
    assert_eq!(
        s.endpoints[2].conditions,
        EndpointConditions {
            ready: false,
            serving: true,
            terminating: true
        }
    );
    assert!(
        Arc::ptr_eq(&s.endpoints[0].ports, &s.endpoints[2].ports),
        "ports shared per slice"
    );
    assert_eq!(
        &*s.endpoints[0].ports,
        [PortView {
            name: Some("dns".to_owned()),
            protocol: Protocol::Sctp,
            port: 5353
        }]
    );
    assert_eq!(view.namespaces, ["default"]);
}

#[test]
fn dns_labels() {
    assert!(is_dns_label("redis-0"));
    assert!(is_dns_label("a"));
    assert!(!is_dns_label(""));
    assert!(!is_dns_label("-a"));
    assert!(!is_dns_label("a-"));
    assert!(!is_dns_label("A"));
    assert!(!is_dns_label("a.b"));
    assert!(!is_dns_label(&"a".repeat(64)));
}

#[test]
fn external_names_must_be_host_names() {
    let external = |name: &str| {
        ParsedService::of(&mk_service(
            "ext",
            ServiceSpec {
                type_: Some("ExternalName".to_owned()),
                external_name: Some(name.to_owned()),
                ..ServiceSpec::default()
            },
        ))
        .view(&ServiceKey::new("default", "ext"))
        .map(|v| v.kind)
    };
    for good in [
        "db.example.com",
        "db.example.com.",
        "DB.Example.com",
        "localhost",
        "10.0.0.1",
    ] {
        assert_eq!(
            external(good),
            Some(ServiceKind::ExternalName {
                external_name: good.trim_end_matches('.').to_owned()
            }),
            "{good}"
        );
    }
    let long_label = format!("{}.example.com", "a".repeat(64));
    let long_name = ["abcdefghi"; 26].join(".");
    assert!(long_name.len() > 253);
    for bad in [
        "exa mple.com",
        "a..example.com",
        ".example.com",
        "bad_host.example.com",
        "-a.example.com",
        "a-.example.com",
        "caf\u{e9}.example.com",
        "..",
        long_label.as_str(),
        long_name.as_str(),
    ] {
        assert_eq!(external(bad), None, "{bad:?}");
    }
    assert!(is_host_name(&["abcdefghi"; 25].join(".")));
}

// === ViewConfig: CoreDNS's namespaces / labels / namespace_labels, and the pods view ===

fn meta(ns: &str, name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ObjectMeta::default()
    }
}

fn mk_namespace(name: &str, labels: &[(&str, &str)]) -> k8s_openapi::api::core::v1::Namespace {
    k8s_openapi::api::core::v1::Namespace {
        metadata: ObjectMeta {
            namespace: None,
            ..meta("", name, labels)
        },
        ..Default::default()
    }
}

fn mk_pod(ns: &str, name: &str, phase: &str, ips: &[&str]) -> k8s_openapi::api::core::v1::Pod {
    use k8s_openapi::api::core::v1::{Pod, PodIP, PodStatus};
    Pod {
        metadata: meta(ns, name, &[("app", name)]),
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.to_owned()),
            pod_ip: ips.first().map(|ip| (*ip).to_owned()),
            pod_ips: Some(
                ips.iter()
                    .map(|ip| PodIP {
                        ip: (*ip).to_owned(),
                    })
                    .collect(),
            ),
            ..PodStatus::default()
        }),
    }
}

/// Namespaces `a` (team=x) and `b` (team=y), `c` with no Namespace object; Services `web` (tier=
/// front) and `db` (tier=back) in each; pods in `a` and `c`.
fn filter_cluster() -> DerivedCluster {
    let mut services = Vec::new();
    for ns in ["a", "b", "c"] {
        for (name, tier) in [("web", "front"), ("db", "back")] {
            let mut s = mk_service(
                name,
                ServiceSpec {
                    cluster_ip: Some("None".into()),
                    ..ServiceSpec::default()
                },
            );
            s.metadata = meta(ns, name, &[("tier", tier)]);
            services.push(s);
        }
    }
    DerivedCluster {
        namespaces: vec![
            mk_namespace("a", &[("team", "x")]),
            mk_namespace("b", &[("team", "y")]),
            mk_namespace("empty", &[("team", "x")]),
        ],
        services,
        pods: vec![
            mk_pod("a", "web-1", "Running", &["10.1.0.1", "fd00::1"]),
            mk_pod("a", "pending", "Pending", &["10.1.0.2"]),
            mk_pod("a", "done", "Succeeded", &["10.1.0.3"]),
            mk_pod("a", "failed", "Failed", &["10.1.0.4"]),
            mk_pod("a", "lost", "Unknown", &["10.1.0.5"]),
            mk_pod("a", "no-ip", "Pending", &[]),
            mk_pod("c", "db-1", "Running", &["10.3.0.1"]),
        ],
        ..DerivedCluster::default()
    }
}

fn keys(view: &ClusterView) -> Vec<String> {
    view.services.iter().map(|s| s.key.to_string()).collect()
}

#[test]
fn default_view_config_exposes_everything() {
    let view = cluster_view(&filter_cluster(), &ViewConfig::default());
    assert_eq!(view.namespaces, ["a", "b", "c", "empty"]);
    assert_eq!(
        keys(&view),
        ["a/db", "a/web", "b/db", "b/web", "c/db", "c/web"]
    );
}

#[test]
fn pods_are_those_coredns_verified_keeps() {
    let mut derived = filter_cluster();
    let mut deleting = mk_pod("a", "deleting", "Running", &["10.1.0.9"]);
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
    );
    derived.pods.push(deleting);
    let view = cluster_view(&derived, &ViewConfig::default());
    let pods: Vec<(String, String, Vec<IpAddr>)> = view
        .pods
        .iter()
        .map(|p| (p.namespace.clone(), p.name.clone(), p.addresses.clone()))
        .collect();
    assert_eq!(
        pods,
        [
            (
                "a".into(),
                "pending".into(),
                vec!["10.1.0.2".parse().unwrap()]
            ),
            (
                "a".into(),
                "web-1".into(),
                vec!["10.1.0.1".parse().unwrap(), "fd00::1".parse().unwrap()]
            ),
            ("c".into(), "db-1".into(), vec!["10.3.0.1".parse().unwrap()]),
        ]
    );
}

#[test]
fn namespaces_allow_list_removes_namespaces_with_their_services_and_pods() {
    let config = ViewConfig {
        namespaces: ["a".to_owned(), "empty".to_owned(), "nowhere".to_owned()].into(),
        ..ViewConfig::default()
    };
    let view = cluster_view(&filter_cluster(), &config);
    // `nowhere` is allowed but does not exist: still absent.
    assert_eq!(view.namespaces, ["a", "empty"]);
    assert_eq!(keys(&view), ["a/db", "a/web"]);
    assert!(view.pods.iter().all(|p| p.namespace == "a"));
}

#[test]
fn labels_selector_filters_services_and_pods_not_namespaces() {
    let config = ViewConfig {
        labels: Some("tier in (front),app!=db".parse().unwrap()),
        ..ViewConfig::default()
    };
    let view = cluster_view(&filter_cluster(), &config);
    assert_eq!(keys(&view), ["a/web", "b/web", "c/web"]);
    // Namespaces keep existing (NODATA, not NXDOMAIN) when their Services are filtered.
    assert_eq!(view.namespaces, ["a", "b", "c", "empty"]);
    // Pods carry `app=<name>` and no `tier`: `tier in (front)` selects none of them (CoreDNS
    // lists pods with the same selector).
    assert!(view.pods.is_empty());
}

#[test]
fn namespace_labels_need_a_matching_namespace_object() {
    let config = ViewConfig {
        namespace_labels: Some("team=x".parse().unwrap()),
        ..ViewConfig::default()
    };
    let view = cluster_view(&filter_cluster(), &config);
    // `c` has Services but no Namespace object, `b` has the wrong label.
    assert_eq!(view.namespaces, ["a", "empty"]);
    assert_eq!(keys(&view), ["a/db", "a/web"]);
    assert_eq!(view.pods.len(), 2);
}

#[test]
fn service_slices_stay_in_name_order_and_a_later_slice_replaces_its_namesake() {
    let parsed = |ip: &str| {
        let endpoint = Endpoint {
            addresses: vec![ip.to_owned()],
            ..Endpoint::default()
        };
        ParsedSlice::of(&mk_slice("db", "x", "IPv4", vec![endpoint], vec![]))
    };
    let mut slices = ServiceSlices::default();
    slices.insert("db-b".into(), parsed("10.0.0.2"));
    slices.insert("db-a".into(), parsed("10.0.0.1"));
    slices.insert("db-c".into(), parsed("10.0.0.3"));
    slices.insert("db-b".into(), parsed("10.0.0.4"));
    let names: Vec<&str> = slices.0.iter().map(|(n, _)| &**n).collect();
    assert_eq!(names, ["db-a", "db-b", "db-c"]);
    let mut endpoints = Vec::new();
    for slice in slices.iter() {
        slice.extend_views(&mut endpoints);
    }
    let addresses: Vec<String> = endpoints
        .iter()
        .map(|e| e.addresses[0].to_string())
        .collect();
    assert_eq!(addresses, ["10.0.0.1", "10.0.0.4", "10.0.0.3"]);
}

#[test]
fn packed_labels_unpack_to_the_map_they_were_made_from() {
    let map: BTreeMap<String, String> = [("app", "web"), ("tier", ""), ("z", "last")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let labels = Labels::of(Some(&map));
    assert_eq!(labels.to_map(), map);
    assert_eq!(labels.get("tier"), Some(""));
    assert_eq!(labels.get("missing"), None);
    assert!(Labels::of(None).to_map().is_empty());
}
