//! Forwarded queries are bounded: a slow upstream never builds a queue.

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::support::{Server, query};

/// With an upstream that never answers, at most `max_forwards_in_flight` queries wait for it;
/// every query beyond that gets SERVFAIL at once, and zone names are answered meanwhile.
#[tokio::test]
async fn forwards_beyond_the_bound_get_servfail_at_once() {
    // An upstream that reads and never answers (bound, so no ICMP error ends the wait early).
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut forward =
        podns_forward::ForwardConfig::with_upstreams(vec![silent.local_addr().unwrap()]);
    forward.timeout = Duration::from_secs(2);
    forward.max_attempts = 1;
    let forwarder = podns_forward::Forwarder::new(forward).unwrap();
    let config = podns_server::ServerConfig {
        max_forwards_in_flight: 4,
        udp_workers: 1,
        ..podns_server::ServerConfig::default()
    };
    let server = Server::start_forwarding(config, forwarder).await;

    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let started = Instant::now();
    for id in 0..12u16 {
        let mut q = query("example.org.", RecordType::A);
        q.metadata.id = id;
        client
            .send_to(&q.to_vec().unwrap(), server.addr)
            .await
            .unwrap();
    }
    // The 8 over the bound come back at once, as SERVFAIL.
    let mut buf = [0u8; 4096];
    let mut early = Vec::new();
    while early.len() < 8 {
        let len = tokio::time::timeout(Duration::from_millis(500), client.recv(&mut buf))
            .await
            .expect("SERVFAIL at once for forwards over the bound")
            .unwrap();
        let m = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        early.push(m.metadata.id);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The zone is answered while four forwards wait.
    let zone = crate::support::udp(
        server.addr,
        &query("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(zone.metadata.response_code, ResponseCode::NoError);
    assert!(!zone.answers.is_empty());
    // The four that waited fail after the upstream timeout, not before.
    let mut late = Vec::new();
    while late.len() < 4 {
        let len = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
            .await
            .expect("the waiting forwards end")
            .unwrap();
        let m = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        late.push(m.metadata.id);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    let mut all: Vec<u16> = early.into_iter().chain(late).collect();
    all.sort_unstable();
    assert_eq!(all, (0..12).collect::<Vec<_>>());
    drop(silent);
    server.stop().await;
}
