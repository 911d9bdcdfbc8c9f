//! Amplification: no UDP response is ever larger than the client may receive.
//!
//! The limit is 512 octets without EDNS (RFC 1035 §4.2.1), and with EDNS the client's
//! advertised payload size, counted as 512 when smaller (RFC 6891 §6.2.3, §6.2.5) and clamped
//! to our own maximum. The sweep asks with every advertised size from 0 to 65535 against
//! answers of every shape (long A RRsets, SRV with additional records, ANY, negative), and
//! compares each datagram with the complete answer fetched over TCP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::support::*;

/// Names and types whose complete answers range from ~100 octets to several KiB.
const ASKED: [(&str, RecordType); 7] = [
    ("big.default.svc.cluster.local.", RecordType::A),
    ("mid.default.svc.cluster.local.", RecordType::A),
    ("big.default.svc.cluster.local.", RecordType::SRV),
    ("_http._tcp.six.default.svc.cluster.local.", RecordType::SRV),
    ("web.default.svc.cluster.local.", RecordType::ANY),
    ("big.default.svc.cluster.local.", RecordType::ANY),
    ("nope.default.svc.cluster.local.", RecordType::A),
];

/// Queries in flight at once: small enough that their responses fit the client socket's
/// receive buffer, so the sweep does not lose datagrams to its own burst.
const WINDOW: usize = 32;

/// A complete answer, fetched over TCP with the same request.
struct Full {
    len: usize,
    answers: u16,
}

fn request(i: usize, edns: Option<u16>) -> Vec<u8> {
    let (name, rtype) = ASKED[i % ASKED.len()];
    let Some(size) = edns else {
        return query(name, rtype).to_vec().unwrap();
    };
    let mut r = with_edns(query(name, rtype), 1232).to_vec().unwrap();
    // The payload size goes in as raw octets: hickory would raise sizes below 512.
    let opt = r.len() - 11;
    assert_eq!(
        r[opt..opt + 3],
        [0, 0, 41],
        "the OPT record ends the request"
    );
    r[opt + 3..opt + 5].copy_from_slice(&size.to_be_bytes());
    r
}

fn ancount(m: &[u8]) -> u16 {
    u16::from_be_bytes([m[6], m[7]])
}

/// The complete answers, with and without EDNS, keyed by (ASKED index, with EDNS).
async fn full_answers(addr: SocketAddr) -> HashMap<(usize, bool), Full> {
    let mut full = HashMap::new();
    for i in 0..ASKED.len() {
        for edns in [None, Some(4096)] {
            let r = tcp_raw(addr, &[request(i, edns)]).await.remove(0);
            let answers = ancount(&r);
            full.insert(
                (i, edns.is_some()),
                Full {
                    len: r.len(),
                    answers,
                },
            );
        }
    }
    full
}

/// Sends the queries for `sizes` (the ID of each is its advertised size; the payload size and
/// the name asked follow from it) in windows, retrying lost ones, and checks every datagram.
async fn sweep(addr: SocketAddr, max_udp: u16, sizes: impl Iterator<Item = u16>) -> usize {
    let full = full_answers(addr).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 65535];
    let sizes: Vec<u16> = sizes.collect();
    let mut checked = 0;
    for window in sizes.chunks(WINDOW) {
        let mut pending: Vec<u16> = window.to_vec();
        for _attempt in 0..5 {
            for &size in &pending {
                let mut r = request(size as usize, Some(size));
                r[..2].copy_from_slice(&size.to_be_bytes());
                socket.send_to(&r, addr).await.unwrap();
            }
            while !pending.is_empty() {
                let Ok(Ok((len, _))) =
                    tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf))
                        .await
                else {
                    break;
                };
                let response = &buf[..len];
                let size = u16::from_be_bytes([response[0], response[1]]);
                let Some(at) = pending.iter().position(|&s| s == size) else {
                    continue; // a late duplicate of a retried query
                };
                pending.swap_remove(at);
                let allowed = size.max(512).min(max_udp) as usize;
                let complete = &full[&(size as usize % ASKED.len(), true)];
                check(response, allowed, complete, &format!("payload {size}"));
                checked += 1;
            }
            if pending.is_empty() {
                break;
            }
        }
        assert!(
            pending.is_empty(),
            "no response for payload sizes {pending:?}"
        );
    }
    checked
}

/// One datagram: within `allowed`; the complete answer when that fits, else either TC with
/// no answer records (RFC 2181 §9) or every answer record with fewer additional records.
fn check(response: &[u8], allowed: usize, complete: &Full, what: &str) {
    assert!(
        response.len() <= allowed,
        "{what}: {} > {allowed} octets",
        response.len()
    );
    let m = Message::from_vec(response).unwrap_or_else(|e| panic!("{what}: {e}"));
    if complete.len <= allowed {
        assert!(
            !m.metadata.truncation,
            "{what}: TC although {} fits",
            complete.len
        );
        assert_eq!(response.len(), complete.len, "{what}");
    } else if m.metadata.truncation {
        assert_eq!(ancount(response), 0, "{what}: a partial RRset with TC");
    } else {
        assert_eq!(
            ancount(response),
            complete.answers,
            "{what}: answers dropped without TC"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_payload_size_is_honoured() {
    // A server maximum of 4096 lets the client's size decide over most of the range.
    let config = podns_server::ServerConfig {
        query: podns_server::QueryConfig {
            max_udp_payload: 4096,
            ..Default::default()
        },
        ..Default::default()
    };
    let s = Server::start_with(config).await;
    let checked = sweep(s.addr, 4096, 0..=u16::MAX).await;
    assert_eq!(checked, 65536);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_maximum_caps_oversized_claims() {
    // Default 1232 (DNS Flag Day 2020): claims up to 65535 get at most 1232. Every size around
    // the thresholds, and a stride through the rest.
    let s = Server::start().await;
    let sizes = (0..=600)
        .chain(1200..=1300)
        .chain((1301..=u16::MAX).step_by(61))
        .chain([u16::MAX]);
    let checked = sweep(s.addr, 1232, sizes).await;
    assert!(checked > 1700, "{checked}");
    s.stop().await;
}

#[tokio::test]
async fn without_edns_every_answer_fits_512() {
    let s = Server::start_with(podns_server::ServerConfig {
        query: podns_server::QueryConfig {
            max_udp_payload: 4096,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let full = full_answers(s.addr).await;
    for i in 0..ASKED.len() {
        let r = request(i, None);
        // Several rotations: the size must not depend on which record comes first.
        for _ in 0..4 {
            let response = udp_raw(s.addr, &r, TIMEOUT).await.expect("a response");
            check(
                &response,
                512,
                &full[&(i, false)],
                &format!("{:?} without EDNS", ASKED[i]),
            );
            assert!(Message::from_vec(&response).unwrap().edns.is_none());
        }
    }
    s.stop().await;
}
