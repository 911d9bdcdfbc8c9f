//! Shared fixture for the server tests: a hand-built cluster, a server on 127.0.0.1:0, and
//! query helpers built on hickory-proto (the oracle for our hand-written wire code).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use podns_view::{
    ClusterView, EndpointConditions, EndpointView, PodView, PortView, Protocol, ServiceKey,
    ServiceKind, ServiceView,
};
use podns_zone::ZoneConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;

pub(crate) const TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) fn port(name: Option<&str>, protocol: Protocol, port: u16) -> PortView {
    PortView {
        name: name.map(str::to_owned),
        protocol,
        port,
    }
}

pub(crate) fn ep(
    ip: &str,
    hostname: Option<&str>,
    ready: bool,
    ports: &Arc<[PortView]>,
) -> EndpointView {
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

pub(crate) fn svc(
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

fn headless_many(name: &str, n: u8, third: u8, hostnames: bool) -> ServiceView {
    let ports: Arc<[PortView]> = vec![port(Some("http"), Protocol::Tcp, 8080)].into();
    let eps = (0..n)
        .map(|i| {
            let host = format!("{name}-{i}");
            ep(
                &format!("10.250.{third}.{}", i + 1),
                hostnames.then_some(host.as_str()),
                true,
                &ports,
            )
        })
        .collect();
    svc(
        name,
        ServiceKind::Headless,
        vec![port(Some("http"), Protocol::Tcp, 80)],
        eps,
    )
}

/// The test cluster:
/// - `web`: headless, StatefulSet-like: web-0..2 ready (10.244.1.10-12), web-3 not ready;
///   ports web (80 → 8080), metrics (9090 → 9091).
/// - `deploy`: headless, no hostnames: 10.244.2.1, 10.244.2.2; port http (80 → 8080).
/// - `api`: ClusterIP 10.96.0.10, ports https/443 and an unnamed 8443.
/// - `dual`: ClusterIP 10.96.0.20 + fd00::20, port http/80.
/// - `dual-hl`: headless, dual-hl-0 at fd00:1::5 and an unnamed-host fd00:1::6, port http.
/// - `ext`: ExternalName example.com.
/// - `down`: headless, one not-ready endpoint.
/// - `six`: headless, 6 hostname'd endpoints; `mid`: 40 endpoints; `big`: 100 endpoints.
pub(crate) fn cluster() -> ClusterView {
    let web_ports: Arc<[PortView]> = vec![
        port(Some("web"), Protocol::Tcp, 8080),
        port(Some("metrics"), Protocol::Tcp, 9091),
    ]
    .into();
    let http_ports: Arc<[PortView]> = vec![port(Some("http"), Protocol::Tcp, 8080)].into();
    let services = vec![
        svc(
            "web",
            ServiceKind::Headless,
            vec![
                port(Some("web"), Protocol::Tcp, 80),
                port(Some("metrics"), Protocol::Tcp, 9090),
            ],
            vec![
                ep("10.244.1.10", Some("web-0"), true, &web_ports),
                ep("10.244.1.11", Some("web-1"), true, &web_ports),
                ep("10.244.1.12", Some("web-2"), true, &web_ports),
                ep("10.244.1.13", Some("web-3"), false, &web_ports),
            ],
        ),
        svc(
            "deploy",
            ServiceKind::Headless,
            vec![port(Some("http"), Protocol::Tcp, 80)],
            vec![
                ep("10.244.2.1", None, true, &http_ports),
                ep("10.244.2.2", None, true, &http_ports),
            ],
        ),
        svc(
            "api",
            ServiceKind::ClusterIp {
                cluster_ips: vec!["10.96.0.10".parse().unwrap()],
            },
            vec![
                port(Some("https"), Protocol::Tcp, 443),
                port(None, Protocol::Tcp, 8443),
            ],
            vec![ep("10.244.9.9", None, true, &http_ports)],
        ),
        svc(
            "dual",
            ServiceKind::ClusterIp {
                cluster_ips: vec!["10.96.0.20".parse().unwrap(), "fd00::20".parse().unwrap()],
            },
            vec![port(Some("http"), Protocol::Tcp, 80)],
            vec![],
        ),
        svc(
            "dual-hl",
            ServiceKind::Headless,
            vec![port(Some("http"), Protocol::Tcp, 80)],
            vec![
                ep("fd00:1::5", Some("dual-hl-0"), true, &http_ports),
                ep("fd00:1::6", None, true, &http_ports),
            ],
        ),
        svc(
            "ext",
            ServiceKind::ExternalName {
                external_name: "example.com".into(),
            },
            vec![port(Some("http"), Protocol::Tcp, 80)],
            vec![],
        ),
        svc(
            "down",
            ServiceKind::Headless,
            vec![port(Some("http"), Protocol::Tcp, 80)],
            vec![ep("10.244.3.1", Some("down-0"), false, &http_ports)],
        ),
        headless_many("six", 6, 6, true),
        headless_many("mid", 40, 40, false),
        headless_many("big", 100, 100, false),
    ];
    ClusterView {
        namespaces: vec!["default".into(), "empty".into()],
        services,
        // Pods for `pods verified`: the web StatefulSet's ready pods and a dual-stack pod.
        pods: vec![
            PodView {
                namespace: "default".into(),
                name: "web-0".into(),
                addresses: vec!["10.244.1.10".parse().unwrap()],
            },
            PodView {
                namespace: "default".into(),
                name: "dual".into(),
                addresses: vec!["10.244.7.7".parse().unwrap(), "fd00:7::7".parse().unwrap()],
            },
        ],
    }
}

pub(crate) fn zone_config() -> ZoneConfig {
    ZoneConfig {
        nameservers: vec!["10.96.0.53".parse().unwrap()],
        ..ZoneConfig::default()
    }
}

/// A running server; dropping it does not stop it, call [`Server::stop`].
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub(crate) async fn start() -> Self {
        Self::start_with(podns_server::ServerConfig::default()).await
    }

    pub(crate) async fn start_with(config: podns_server::ServerConfig) -> Self {
        Self::start_zone(config, &zone_config(), &cluster()).await
    }

    /// A server for `view` built with `zone` (the option tests).
    pub(crate) async fn start_zone(
        config: podns_server::ServerConfig,
        zone: &ZoneConfig,
        view: &ClusterView,
    ) -> Self {
        Self::start_services(config, zone, view, None).await
    }

    /// A server for the test cluster that counts into `metrics` (the hostile tests).
    pub(crate) async fn start_metrics(
        config: podns_server::ServerConfig,
        metrics: Arc<podns_server::Metrics>,
    ) -> Self {
        Self::start_services(config, &zone_config(), &cluster(), Some(metrics)).await
    }

    /// A server for the test cluster that forwards other names with `forwarder`.
    #[allow(dead_code, reason = "used by the hostile suite only")]
    pub(crate) async fn start_forwarding(
        config: podns_server::ServerConfig,
        forwarder: podns_forward::Forwarder,
    ) -> Self {
        Self::start_services_with(config, &zone_config(), &cluster(), None, Some(forwarder)).await
    }

    async fn start_services(
        config: podns_server::ServerConfig,
        zone: &ZoneConfig,
        view: &ClusterView,
        metrics: Option<Arc<podns_server::Metrics>>,
    ) -> Self {
        Self::start_services_with(config, zone, view, metrics, None).await
    }

    async fn start_services_with(
        mut config: podns_server::ServerConfig,
        zone: &ZoneConfig,
        view: &ClusterView,
        metrics: Option<Arc<podns_server::Metrics>>,
        forwarder: Option<podns_forward::Forwarder>,
    ) -> Self {
        // A loopback address a test asks for (e.g. [::1]:0) is kept; anything else (the default
        // 0.0.0.0:53) becomes 127.0.0.1:0.
        if !config.listen.ip().is_loopback() {
            config.listen = "127.0.0.1:0".parse().unwrap();
        }
        // At most two workers (SO_REUSEPORT spreading is tested); a test may ask for one.
        config.udp_workers = config.udp_workers.clamp(1, 2);
        let snapshot = podns_zone::build(zone, view);
        let (_writer, reader) = podns_zone::pair(snapshot);
        let bound = podns_server::bind(&config).unwrap();
        let addr = bound.local_addr();
        let (tx, rx) = oneshot::channel();
        let mut services = podns_server::Services::new(reader);
        services.metrics = metrics;
        services.forward.store(forwarder.map(Arc::new));
        let task = tokio::spawn(podns_server::serve_with(
            bound,
            config,
            services,
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            addr,
            stop: Some(tx),
            task,
        }
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

pub(crate) fn query(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::new(0xBEEF, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m
}

pub(crate) fn with_edns(mut m: Message, payload: u16) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    m.set_edns(edns);
    m
}

pub(crate) fn query_class(name: &str, rtype: RecordType, class: DNSClass) -> Message {
    let mut m = query(name, rtype);
    m.queries[0].set_query_class(class);
    m
}

/// Sends raw bytes over UDP; `None` if no answer comes within `wait`.
pub(crate) async fn udp_raw(addr: SocketAddr, request: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(request, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
        Ok(Ok((len, _))) => Some(buf[..len].to_vec()),
        _ => None,
    }
}

pub(crate) async fn udp(addr: SocketAddr, request: &Message) -> Message {
    let bytes = udp_raw(addr, &request.to_vec().unwrap(), TIMEOUT)
        .await
        .expect("a UDP response");
    Message::from_vec(&bytes).expect("a response hickory can parse")
}

/// Sends all requests on one TCP connection in one write (pipelined), reads as many responses.
pub(crate) async fn tcp_raw(addr: SocketAddr, requests: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    for r in requests {
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(r);
    }
    stream.write_all(&out).await.unwrap();
    let mut responses = Vec::new();
    for _ in requests {
        let len = tokio::time::timeout(TIMEOUT, stream.read_u16())
            .await
            .unwrap()
            .unwrap();
        let mut buf = vec![0u8; len as usize];
        tokio::time::timeout(TIMEOUT, stream.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        responses.push(buf);
    }
    responses
}

pub(crate) async fn tcp(addr: SocketAddr, request: &Message) -> Message {
    let bytes = tcp_raw(addr, &[request.to_vec().unwrap()]).await.remove(0);
    Message::from_vec(&bytes).unwrap()
}

/// The RDATA of every answer record, as hickory displays it.
pub(crate) fn answers(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

pub(crate) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A raw message: ID 0x1234, the given flags word, QDCOUNT and ARCOUNT (AN = NS = 0), body.
pub(crate) fn raw(flags: u16, qd: u16, ar: u16, body: &[u8]) -> Vec<u8> {
    raw_counts(flags, [qd, 0, 0, ar], body)
}

/// A raw message: ID 0x1234, the given flags word, the four section counts, body.
pub(crate) fn raw_counts(flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![0x12, 0x34];
    m.extend_from_slice(&flags.to_be_bytes());
    for n in counts {
        m.extend_from_slice(&n.to_be_bytes());
    }
    m.extend_from_slice(body);
    m
}

/// The question `web.default.svc.cluster.local. A IN`, wire form.
pub(crate) const WEB_Q: &[u8] =
    b"\x03web\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01";
/// An OPT record: root owner, payload 1232, version 0, no options.
pub(crate) const OPT: &[u8] = &[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0];

/// Sends raw bytes over UDP and parses the response (which must come).
pub(crate) async fn rcode_of(addr: SocketAddr, request: &[u8]) -> (Message, Vec<u8>) {
    let bytes = udp_raw(addr, request, TIMEOUT).await.expect("a response");
    (Message::from_vec(&bytes).unwrap(), bytes)
}
