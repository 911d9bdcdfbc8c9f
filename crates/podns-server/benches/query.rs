//! `query::answer` on a 2,000-service snapshot (1,000 headless × 10 endpoints, 1,000
//! ClusterIP): the cost of each answer kind on the realistic mix (mostly NXDOMAIN search-path
//! misses, then AAAA NODATA, then positive A, a few SRV). This is the bench that justifies the
//! hand-written parser in `src/wire.rs`. Also times building that snapshot.
//!
//! Run with `cargo bench -p podns-server --bench query`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use podns_server::{QueryConfig, Transport, answer};
use podns_view::{
    ClusterView, EndpointConditions, EndpointView, PortView, Protocol, ServiceKey, ServiceKind,
    ServiceView,
};
use podns_zone::ZoneConfig;

fn cluster() -> ClusterView {
    let ports: Arc<[PortView]> = vec![PortView {
        name: Some("http".into()),
        protocol: Protocol::Tcp,
        port: 8080,
    }]
    .into();
    let svc_ports = vec![PortView {
        name: Some("http".into()),
        protocol: Protocol::Tcp,
        port: 80,
    }];
    let services = (0..2000u32)
        .map(|i| {
            let name = format!("svc-{i}");
            let (kind, endpoints) = if i % 2 == 0 {
                let eps = (0..10u32)
                    .map(|e| EndpointView {
                        addresses: vec![std::net::Ipv4Addr::from(0x0A00_0000 + i * 16 + e).into()],
                        hostname: Some(format!("{name}-{e}")),
                        conditions: EndpointConditions::READY,
                        ports: ports.clone(),
                        node_name: None,
                        zone: None,
                        target_pod: None,
                    })
                    .collect();
                (ServiceKind::Headless, eps)
            } else {
                let vip = std::net::Ipv4Addr::from(0x0A60_0000 + i).into();
                (
                    ServiceKind::ClusterIp {
                        cluster_ips: vec![vip],
                    },
                    Vec::new(),
                )
            };
            ServiceView {
                key: ServiceKey::new("default", name),
                kind,
                ports: svc_ports.clone(),
                endpoints,
            }
        })
        .collect();
    ClusterView {
        namespaces: vec!["default".into()],
        services,
        pods: Vec::new(),
    }
}

fn request(name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(1, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.to_vec().unwrap()
}

fn bench(c: &mut Criterion) {
    let view = cluster();
    let config = ZoneConfig::default();
    c.bench_function("build 2000 services", |b| {
        b.iter(|| podns_zone::build(&config, black_box(&view)))
    });
    let snapshot = podns_zone::build(&config, &view);
    let query_config = QueryConfig::default();
    let cases = [
        (
            "headless A (10 endpoints)",
            request("svc-10.default.svc.cluster.local.", RecordType::A),
        ),
        (
            "per-pod A",
            request("svc-10-3.svc-10.default.svc.cluster.local.", RecordType::A),
        ),
        (
            "SRV",
            request(
                "_http._tcp.svc-10.default.svc.cluster.local.",
                RecordType::SRV,
            ),
        ),
        (
            "ClusterIP A",
            request("svc-11.default.svc.cluster.local.", RecordType::A),
        ),
        (
            "NXDOMAIN search-path miss",
            request(
                "svc-11.default.svc.cluster.local.default.svc.cluster.local.",
                RecordType::A,
            ),
        ),
        (
            "AAAA NODATA",
            request("svc-11.default.svc.cluster.local.", RecordType::AAAA),
        ),
    ];
    let mut out = Vec::with_capacity(65535);
    let mut group = c.benchmark_group("answer");
    for (label, req) in &cases {
        let mut rotation = 0u32;
        group.bench_function(*label, |b| {
            b.iter(|| {
                rotation = rotation.wrapping_add(1);
                answer(
                    black_box(req),
                    Transport::Udp,
                    &query_config,
                    &snapshot,
                    rotation,
                    &mut out,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
