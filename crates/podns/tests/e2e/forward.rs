//! Forwarding end to end: names outside the served zones go to an upstream resolver that the
//! test runs on 127.0.0.1, through the cache; names inside never leave podns.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::harness::{Server, example, get_json};

/// A tiny recursive-resolver stand-in: `example.org A` → 192.0.2.1 (TTL 60), the PTR of
/// 192.0.2.1 → `upstream.example.`, anything else NXDOMAIN with an SOA.
struct Upstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (Arc::clone(&queries), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !halt.load(Ordering::Relaxed) {
                let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let response = answer(&query);
                let _ = socket.send_to(&response.to_vec().unwrap(), peer);
            }
        });
        Self {
            addr,
            queries,
            stop,
        }
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(query: &Message) -> Message {
    let mut response = Message::new(query.id, MessageType::Response, query.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    let question = query.queries[0].clone();
    let name = question.name().to_ascii().to_ascii_lowercase();
    response.add_query(question.clone());
    match (name.as_str(), question.query_type()) {
        ("example.org.", RecordType::A) => {
            response.add_answer(Record::from_rdata(
                question.name().clone(),
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        }
        ("1.2.0.192.in-addr.arpa.", RecordType::PTR) => {
            response.add_answer(Record::from_rdata(
                question.name().clone(),
                60,
                RData::PTR(PTR(Name::from_ascii("upstream.example.").unwrap())),
            ));
        }
        _ => {
            response.metadata.response_code = ResponseCode::NXDomain;
            let soa = SOA::new(
                Name::from_ascii("ns.example.").unwrap(),
                Name::from_ascii("hostmaster.example.").unwrap(),
                1,
                3600,
                600,
                86400,
                30,
            );
            response.add_authority(Record::from_rdata(
                Name::from_ascii("example.").unwrap(),
                30,
                RData::SOA(soa),
            ));
        }
    }
    response
}

#[test]
fn names_outside_the_zones_are_forwarded_and_cached() {
    let upstream = Upstream::start();
    let addr = upstream.addr.to_string();
    let server = Server::start(&[&example("redis-statefulset")], &["--upstream", &addr]);

    let first = server.dig(&["example.org"]);
    assert_eq!(first.status, "NOERROR", "{}", first.text);
    assert_eq!(first.data("A"), ["192.0.2.1"]);
    assert!(
        !first.flags.iter().any(|f| f == "aa"),
        "a forwarded answer is not authoritative:\n{}",
        first.text
    );
    assert_eq!(upstream.queries(), 1);

    // The second time from the cache: no upstream query, a TTL no larger than the original.
    let second = server.dig(&["example.org"]);
    assert_eq!(second.data("A"), ["192.0.2.1"]);
    assert!(second.answer[0].ttl <= 60, "{}", second.text);
    assert_eq!(upstream.queries(), 1);

    // Upstream NXDOMAIN comes back as NXDOMAIN, with the upstream's SOA.
    let missing = server.dig(&["nothing.example"]);
    assert_eq!(missing.status, "NXDOMAIN", "{}", missing.text);
    assert_eq!(missing.authority[0].rtype, "SOA", "{}", missing.text);

    // Cluster names never leave podns, positive or negative.
    let before = upstream.queries();
    server
        .dig(&["redis-headless.default.svc.cluster.local"])
        .assert_answers("A", 3, 30);
    server
        .dig(&["nope.default.svc.cluster.local"])
        .assert_negative("NXDOMAIN", "cluster.local.");
    assert_eq!(upstream.queries(), before);

    // Over TCP too.
    assert_eq!(
        server.dig(&["+tcp", "example.org"]).data("A"),
        ["192.0.2.1"]
    );

    let hits = server
        .metric("podns_cache_hits_total")
        .expect("cache hit counter");
    assert!(hits >= 1.0, "{hits}");
}

#[test]
fn reverse_lookups_of_other_addresses_fall_through_to_the_upstream() {
    let upstream = Upstream::start();
    let addr = upstream.addr.to_string();
    let dir = example("nginx-deployment");
    let server = Server::start(&[&dir], &["--upstream", &addr]);

    // Not a cluster address: in-addr.arpa falls through (kubeadm's `fallthrough in-addr.arpa`).
    let other = server.dig(&["-x", "192.0.2.1"]);
    assert_eq!(other.data("PTR"), ["upstream.example."], "{}", other.text);

    // A cluster VIP is answered by podns itself, authoritatively.
    let services = get_json(&dir, "services", &[]);
    let vip = services["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| {
            s["spec"]["clusterIP"]
                .as_str()
                .filter(|ip| *ip != "None")
                .map(str::to_owned)
        })
        .expect("a ClusterIP service");
    let own = server.dig(&["-x", &vip]);
    assert!(own.flags.iter().any(|f| f == "aa"), "{}", own.text);
    assert_eq!(own.answer.len(), 1, "{}", own.text);

    // Without fallthrough, other addresses are podns's NXDOMAIN.
    let strict = Server::start(&[&dir], &["--upstream", &addr, "--fallthrough", "none"]);
    strict
        .dig(&["-x", "192.0.2.1"])
        .assert_negative("NXDOMAIN", "in-addr.arpa.");
}
