//! Shared fixtures for the podns fuzz targets: a small, realistic zone and the response oracle.
//!
//! The zone is built once per process (the targets share it through a `LazyLock`): it has
//! every answer shape the query path writes (headless A rotation, SRV with additional
//! records, ClusterIP, dual stack, ExternalName CNAME, 100-endpoint answers that truncate,
//! PTR, `pods insecure` addresses), so fuzzed queries reach each of them.

use std::sync::Arc;

use podns_view::{
    ClusterView, EndpointConditions, EndpointView, PodView, PortView, Protocol, ServiceKey,
    ServiceKind, ServiceView,
};
use podns_zone::{PodMode, ZoneConfig, ZoneSnapshot};

/// The zone configuration the query target serves: defaults, plus `pods insecure` and a name
/// server address (so the apex has NS glue).
pub fn zone_config() -> ZoneConfig {
    ZoneConfig {
        nameservers: vec!["10.96.0.53".parse().expect("an address")],
        pods: PodMode::Insecure,
        ..ZoneConfig::default()
    }
}

fn endpoint(
    ip: &str,
    hostname: Option<&str>,
    ready: bool,
    ports: &Arc<[PortView]>,
) -> EndpointView {
    EndpointView {
        addresses: vec![ip.parse().expect("an address")],
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

fn port(name: Option<&str>, protocol: Protocol, port: u16) -> PortView {
    PortView {
        name: name.map(str::to_owned),
        protocol,
        port,
    }
}

fn service(
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

/// The cluster: a StatefulSet-like headless `web` (3 ready, 1 not), a hostname-less
/// headless `deploy`, ClusterIP `api`, dual-stack `dual`, ExternalName `ext`, and `big`
/// with 100 endpoints (larger than any UDP answer).
pub fn cluster() -> ClusterView {
    let web_ports: Arc<[PortView]> = vec![
        port(Some("web"), Protocol::Tcp, 8080),
        port(Some("metrics"), Protocol::Udp, 9091),
    ]
    .into();
    let http: Arc<[PortView]> = vec![port(Some("http"), Protocol::Tcp, 8080)].into();
    let big = (0..100u8)
        .map(|i| endpoint(&format!("10.250.0.{}", i + 1), None, true, &http))
        .collect();
    ClusterView {
        namespaces: vec!["default".into()],
        services: vec![
            service(
                "web",
                ServiceKind::Headless,
                vec![
                    port(Some("web"), Protocol::Tcp, 80),
                    port(Some("metrics"), Protocol::Udp, 9090),
                ],
                vec![
                    endpoint("10.244.1.10", Some("web-0"), true, &web_ports),
                    endpoint("10.244.1.11", Some("web-1"), true, &web_ports),
                    endpoint("10.244.1.12", Some("web-2"), true, &web_ports),
                    endpoint("10.244.1.13", Some("web-3"), false, &web_ports),
                ],
            ),
            service(
                "deploy",
                ServiceKind::Headless,
                vec![port(Some("http"), Protocol::Tcp, 80)],
                vec![
                    endpoint("10.244.2.1", None, true, &http),
                    endpoint("fd00:2::1", None, true, &http),
                ],
            ),
            service(
                "api",
                ServiceKind::ClusterIp {
                    cluster_ips: vec!["10.96.0.10".parse().expect("an address")],
                },
                vec![
                    port(Some("https"), Protocol::Tcp, 443),
                    port(None, Protocol::Tcp, 8443),
                ],
                vec![endpoint("10.244.9.9", None, true, &http)],
            ),
            service(
                "dual",
                ServiceKind::ClusterIp {
                    cluster_ips: vec![
                        "10.96.0.20".parse().expect("an address"),
                        "fd00::20".parse().expect("an address"),
                    ],
                },
                vec![port(Some("http"), Protocol::Tcp, 80)],
                vec![],
            ),
            service(
                "ext",
                ServiceKind::ExternalName {
                    external_name: "example.com".into(),
                },
                vec![],
                vec![],
            ),
            service(
                "big",
                ServiceKind::Headless,
                vec![port(Some("http"), Protocol::Tcp, 80)],
                big,
            ),
        ],
        pods: vec![PodView {
            namespace: "default".into(),
            name: "web-0".into(),
            addresses: vec!["10.244.1.10".parse().expect("an address")],
        }],
    }
}

/// The snapshot the query target answers from.
pub fn snapshot() -> ZoneSnapshot {
    podns_zone::build(&zone_config(), &cluster())
}
