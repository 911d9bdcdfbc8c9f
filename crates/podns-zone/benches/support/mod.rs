//! The synthetic zone both update benches build: headless Services whose endpoints have
//! hostnames and one named port, so each endpoint has its own A, PTR and SRV records.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use podns_view::{
    ClusterView, EndpointConditions, EndpointView, PortView, Protocol, ServiceKey, ServiceKind,
    ServiceView,
};

/// The endpoints' one port, shared by every endpoint as a slice's ports are.
pub(crate) fn ports() -> Arc<[PortView]> {
    vec![PortView {
        name: Some("http".into()),
        protocol: Protocol::Tcp,
        port: 8080,
    }]
    .into()
}

/// Headless Service `namespace/name` of `endpoints` endpoints at consecutive IPv4 addresses
/// from `base`, named `<name>-<e>`.
pub(crate) fn headless(
    namespace: &str,
    name: &str,
    endpoints: u32,
    base: u32,
    ports: &Arc<[PortView]>,
) -> ServiceView {
    ServiceView {
        key: ServiceKey::new(namespace, name),
        kind: ServiceKind::Headless,
        ports: vec![PortView {
            name: Some("http".into()),
            protocol: Protocol::Tcp,
            port: 80,
        }],
        endpoints: (0..endpoints)
            .map(|e| EndpointView {
                addresses: vec![IpAddr::from(Ipv4Addr::from(base + e))],
                hostname: Some(format!("{name}-{e}")),
                conditions: EndpointConditions::READY,
                ports: Arc::clone(ports),
                node_name: Some(format!("node-{}", e % 50)),
                zone: None,
                target_pod: Some(format!("{name}-{e}")),
            })
            .collect(),
    }
}

/// `services` headless Services `svc-<i>` × 10 endpoints in namespaces `ns-0` … `ns-99`,
/// addresses in 10.0.0.0/8.
pub(crate) fn cluster(services: u32) -> ClusterView {
    let ports = ports();
    let mut views: Vec<ServiceView> = (0..services)
        .map(|i| {
            let namespace = format!("ns-{}", i % 100);
            headless(
                &namespace,
                &format!("svc-{i}"),
                10,
                0x0A00_0000 + i * 16,
                &ports,
            )
        })
        .collect();
    views.sort_by(|a, b| a.key.cmp(&b.key));
    let mut namespaces: Vec<String> = (0..100).map(|n| format!("ns-{n}")).collect();
    namespaces.sort();
    ClusterView {
        namespaces,
        services: views,
        pods: Vec::new(),
    }
}
