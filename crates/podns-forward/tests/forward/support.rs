//! Test support: a fake upstream DNS server on 127.0.0.1 (UDP and TCP on one port) with
//! scripted behaviour and query counters, and client-side helpers built on hickory-proto.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use podns_forward::{ForwardConfig, Policy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// Upper bound for every wait in these tests.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// How the fake upstream answers.
#[derive(Clone, Debug)]
pub(crate) enum Behaviour {
    /// `count` A records (192.0.2.1, .2, …) with `ttl`.
    Answer { ttl: u32, count: u8 },
    /// NXDOMAIN with an SOA in the authority section.
    NxDomain { soa_ttl: u32, minimum: u32 },
    /// NOERROR, no answer, SOA in the authority section.
    NoData { soa_ttl: u32, minimum: u32 },
    /// NXDOMAIN without SOA.
    NxDomainNoSoa,
    /// Over UDP: TC = 1 and no records; over TCP: like `Answer`.
    TruncateUdp { ttl: u32, count: u8 },
    /// Never answers (counts the query).
    Silent,
    /// Over UDP: first a response with a wrong ID (203.0.113.66), then one with the right ID
    /// for another question, then after 50 ms the real answer (192.0.2.1).
    SpoofFirst { ttl: u32 },
    /// SERVFAIL.
    ServFail,
    /// 64 octets of noise (not even the right ID).
    Garbage,
    /// The right ID and question, ANCOUNT 5, and nothing after the question.
    BrokenBody,
}

struct State {
    behaviour: Mutex<Behaviour>,
    udp: AtomicUsize,
    tcp: AtomicUsize,
    queries: Mutex<Vec<Message>>,
}

/// A fake upstream; its tasks end when it is dropped.
pub(crate) struct FakeUpstream {
    pub(crate) addr: SocketAddr,
    state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeUpstream {
    pub(crate) async fn start(behaviour: Behaviour) -> Self {
        // UDP and TCP on the same port: retry if another test took the TCP port meanwhile.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let state = Arc::new(State {
            behaviour: Mutex::new(behaviour),
            udp: AtomicUsize::new(0),
            tcp: AtomicUsize::new(0),
            queries: Mutex::new(Vec::new()),
        });
        let tasks = vec![
            tokio::spawn(serve_udp(udp, state.clone())),
            tokio::spawn(serve_tcp(tcp, state.clone())),
        ];
        Self { addr, state, tasks }
    }

    pub(crate) fn udp_queries(&self) -> usize {
        self.state.udp.load(Ordering::SeqCst)
    }

    pub(crate) fn tcp_queries(&self) -> usize {
        self.state.tcp.load(Ordering::SeqCst)
    }

    /// Every query received, in order, decoded.
    pub(crate) fn queries(&self) -> Vec<Message> {
        self.state.queries.lock().unwrap().clone()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve_udp(socket: UdpSocket, state: Arc<State>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        state.udp.fetch_add(1, Ordering::SeqCst);
        state.queries.lock().unwrap().push(query.clone());
        let behaviour = state.behaviour.lock().unwrap().clone();
        for (delay, reply) in replies(&query, &buf[..n], &behaviour, false) {
            tokio::time::sleep(delay).await;
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok(len) = stream.read_u16().await else {
                    return;
                };
                let mut buf = vec![0u8; len.into()];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Ok(query) = Message::from_vec(&buf) else {
                    return;
                };
                state.tcp.fetch_add(1, Ordering::SeqCst);
                state.queries.lock().unwrap().push(query.clone());
                let behaviour = state.behaviour.lock().unwrap().clone();
                for (_, reply) in replies(&query, &buf, &behaviour, true) {
                    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&reply);
                    if stream.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// The datagrams (or TCP messages) to send for `query`, each after its delay.
fn replies(query: &Message, raw: &[u8], b: &Behaviour, tcp: bool) -> Vec<(Duration, Vec<u8>)> {
    let now = Duration::ZERO;
    let q = &query.queries[0];
    // Echo the question lower-cased: the forwarder must match it case-insensitively.
    let name = q.name().to_lowercase();
    let mut m = Message::response(query.metadata.id, OpCode::Query);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_query(Query::query(name.clone(), q.query_type()));
    if query.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    let a = |i: u8, ttl| Record::from_rdata(name.clone(), ttl, RData::A(A::new(192, 0, 2, i)));
    let soa = |ttl, minimum| {
        let zone = Name::from_ascii("example.").unwrap();
        let soa = SOA::new(zone.clone(), zone.clone(), 1, 3600, 600, 86400, minimum);
        Record::from_rdata(zone, ttl, RData::SOA(soa))
    };
    match b.clone() {
        Behaviour::Answer { ttl, count } => {
            for i in 1..=count {
                m.add_answer(a(i, ttl));
            }
        }
        Behaviour::NxDomain { soa_ttl, minimum } => {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(soa(soa_ttl, minimum));
        }
        Behaviour::NoData { soa_ttl, minimum } => {
            m.add_authority(soa(soa_ttl, minimum));
        }
        Behaviour::NxDomainNoSoa => m.metadata.response_code = ResponseCode::NXDomain,
        Behaviour::TruncateUdp { ttl, count } => {
            if tcp {
                for i in 1..=count {
                    m.add_answer(a(i, ttl));
                }
            } else {
                m.metadata.truncation = true;
            }
        }
        Behaviour::Silent => return Vec::new(),
        Behaviour::SpoofFirst { ttl } => {
            let mut wrong_id = m.clone();
            wrong_id.metadata.id ^= 0x5555;
            wrong_id.add_answer(Record::from_rdata(
                name.clone(),
                ttl,
                RData::A(A::new(203, 0, 113, 66)),
            ));
            let mut wrong_q = wrong_id.clone();
            wrong_q.metadata.id = query.metadata.id;
            wrong_q.queries[0] =
                Query::query(Name::from_ascii("evil.example.").unwrap(), q.query_type());
            m.add_answer(a(1, ttl));
            return vec![
                (now, wrong_id.to_vec().unwrap()),
                (now, wrong_q.to_vec().unwrap()),
                (Duration::from_millis(50), m.to_vec().unwrap()),
            ];
        }
        Behaviour::ServFail => m.metadata.response_code = ResponseCode::ServFail,
        Behaviour::Garbage => {
            let mut x: u32 = 0x9E37_79B9 ^ u32::from(query.metadata.id);
            let noise = (0..64)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 24) as u8
                })
                .collect();
            return vec![(now, noise)];
        }
        Behaviour::BrokenBody => {
            let mut broken = [&raw[..12], question_bytes(raw)].concat();
            broken[2] |= 0x80;
            broken[6..12].copy_from_slice(&[0, 5, 0, 0, 0, 0]);
            return vec![(now, broken)];
        }
    }
    vec![(now, m.to_vec().unwrap())]
}

/// A 127.0.0.1 address where nothing listens (UDP and TCP are refused at once).
pub(crate) async fn closed_addr() -> SocketAddr {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    s.local_addr().unwrap()
}

/// A config for tests: these upstreams in this order, short timeout.
pub(crate) fn config(upstreams: &[SocketAddr]) -> ForwardConfig {
    ForwardConfig {
        policy: Policy::Sequential,
        timeout: Duration::from_millis(500),
        ..ForwardConfig::with_upstreams(upstreams.to_vec())
    }
}

/// A client query with ID 0xBEEF, RD, and optionally EDNS (payload, DO).
pub(crate) fn query(name: &str, rtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = Message::new(0xBEEF, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some((payload, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// Same as [`query`] with another ID.
pub(crate) fn with_id(mut q: Vec<u8>, id: u16) -> Vec<u8> {
    q[..2].copy_from_slice(&id.to_be_bytes());
    q
}

pub(crate) fn parse(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).expect("a response hickory can parse")
}

/// The A addresses of the answer, as text.
pub(crate) fn addresses(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

/// The question section (name as sent, QTYPE, QCLASS) of a message.
pub(crate) fn question_bytes(msg: &[u8]) -> &[u8] {
    let mut pos = 12;
    while msg[pos] != 0 {
        pos += 1 + msg[pos] as usize;
    }
    &msg[12..pos + 5]
}

/// Runs `f` with [`TIMEOUT`] so no test can hang.
pub(crate) async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .expect("test finished in time")
}
