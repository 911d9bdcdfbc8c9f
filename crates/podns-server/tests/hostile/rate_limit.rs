//! Response-rate limiting over real UDP: bursts beyond the rate are dropped or slipped, per
//! client prefix, never on TCP, and off unless configured.
//!
//! Each burst is sent at once and collected afterwards, so it takes a few milliseconds and
//! the buckets barely refill while it runs. One UDP worker, so every client meets one table
//! (with several workers each has its own, see `src/rrl.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::support::*;
use crate::{SILENCE, assert_answers};

fn limited(responses_per_second: u32, slip: u32) -> podns_server::ServerConfig {
    podns_server::ServerConfig {
        udp_workers: 1,
        rate_limit: podns_server::RateLimitConfig {
            responses_per_second,
            slip,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// How a burst fared.
#[derive(Debug, Default, PartialEq, Eq)]
struct Burst {
    /// Complete answers.
    full: usize,
    /// TC=1 answers with no records.
    slipped: usize,
    /// No answer.
    dropped: usize,
}

/// Sends `n` queries (IDs 0..n) from `from` at once, then collects what comes back.
async fn burst(addr: SocketAddr, from: &str, n: u16) -> Burst {
    let socket = Arc::new(UdpSocket::bind((from, 0)).await.unwrap());
    let request = with_edns(query("web.default.svc.cluster.local.", RecordType::A), 1232)
        .to_vec()
        .unwrap();
    let mut sent = HashMap::new();
    for id in 0..n {
        let mut r = request.clone();
        r[..2].copy_from_slice(&id.to_be_bytes());
        sent.insert(id, r);
    }
    // Sent from a task while this one reads, so responses never pile up in the socket buffer.
    let sender = tokio::spawn({
        let socket = Arc::clone(&socket);
        let requests: Vec<Vec<u8>> = (0..n).map(|id| sent[&id].clone()).collect();
        async move {
            for r in requests {
                socket.send_to(&r, addr).await.unwrap();
            }
        }
    });
    let mut result = Burst::default();
    let mut buf = [0u8; 2048];
    while let Ok(Ok((len, _))) = tokio::time::timeout(SILENCE, socket.recv_from(&mut buf)).await {
        let response = &buf[..len];
        let id = u16::from_be_bytes([response[0], response[1]]);
        let request = sent.remove(&id).expect("one response per query");
        let m = assert_answers(&request, response, "rate limited");
        if m.metadata.truncation {
            // A slip: header and question only, smaller than the query (it had an OPT).
            assert_eq!(
                m.answers.len() + m.authorities.len() + m.additionals.len(),
                0
            );
            assert!(m.edns.is_none());
            assert_eq!(response[12..], request[12..len], "the question echoed");
            assert!(len < request.len());
            result.slipped += 1;
        } else {
            assert_eq!(m.answers.len(), 3);
            result.full += 1;
        }
    }
    sender.await.unwrap();
    result.dropped = sent.len();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_every_second_response_slips_and_the_rest_are_dropped() {
    let metrics = Arc::new(podns_server::Metrics::new(&["cluster.local."]));
    let s = Server::start_metrics(limited(5, 2), Arc::clone(&metrics)).await;
    let b = burst(s.addr, "127.0.0.1", 41).await;
    // The burst is one second's worth (5); a few ms of refill may add one more.
    assert!((5..=6).contains(&b.full), "{b:?}");
    let suppressed = 41 - b.full;
    assert_eq!(b.slipped, suppressed / 2, "{b:?}");
    assert_eq!(b.dropped, suppressed - suppressed / 2, "{b:?}");
    let text = metrics.encode();
    let slip = format!(
        r#"podns_dns_responses_rate_limited_total{{action="slip"}} {}"#,
        b.slipped
    );
    let drop = format!(
        r#"podns_dns_responses_rate_limited_total{{action="drop"}} {}"#,
        b.dropped
    );
    assert!(text.contains(&slip) && text.contains(&drop), "{text}");
    // Refilled at 5 per second: ~0.65 s after the first burst (0.5 s, plus 0.15 s waiting for
    // its last response) about three responses again, not the whole burst.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = burst(s.addr, "127.0.0.1", 10).await;
    assert!((2..=4).contains(&b.full), "{b:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_share_a_bucket_per_prefix_and_tcp_is_never_limited() {
    let s = Server::start_with(limited(2, 0)).await;
    let first = burst(s.addr, "127.0.0.1", 10).await;
    assert_eq!((first.full, first.slipped), (2, 0), "{first:?}");
    // Another address of 127.0.0.0/24: the same, already empty bucket.
    let neighbour = burst(s.addr, "127.0.0.2", 5).await;
    assert_eq!(neighbour.full, 0, "{neighbour:?}");
    // Another /24: its own bucket.
    let stranger = burst(s.addr, "127.0.1.1", 10).await;
    assert_eq!(stranger.full, 2, "{stranger:?}");
    // TCP from the limited prefix: every query answered.
    let requests: Vec<Vec<u8>> = (0..20)
        .map(|_| {
            query("web.default.svc.cluster.local.", RecordType::A)
                .to_vec()
                .unwrap()
        })
        .collect();
    let responses = tcp_raw(s.addr, &requests).await;
    assert_eq!(responses.len(), 20);
    assert!(responses.iter().all(|r| r[3] & 0x0F == 0 && r[7] == 3));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default() {
    let s = Server::start_with(podns_server::ServerConfig {
        udp_workers: 1,
        ..Default::default()
    })
    .await;
    // 200 at once: more than any sensible default rate, fewer than the ~256 small datagrams a
    // socket buffer of the default net.core.rmem_max (208 KiB) holds before the kernel drops.
    let b = burst(s.addr, "127.0.0.1", 200).await;
    assert_eq!(
        b,
        Burst {
            full: 200,
            slipped: 0,
            dropped: 0
        }
    );
    s.stop().await;
}
