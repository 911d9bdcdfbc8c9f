//! UDP under bursts: many datagrams queued at once, as the batched loop (`recvmmsg` /
//! `sendmmsg` on Linux) takes them. Every answer must reach its own sender with its own ID
//! and question, whatever else shares the batch: malformed and oversized datagrams, a
//! sender whose port has closed, another address family in the same process. Shutdown must
//! stay prompt while datagrams keep coming.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::support::*;

/// How long a client waits for the next of its answers before it counts the rest as lost.
const NEXT_ANSWER: Duration = Duration::from_secs(2);
/// How long to wait before concluding that no (further) answer is coming.
const SILENCE: Duration = Duration::from_millis(300);

/// Query `i` of client `c`: its ID, and either a positive name (every third) or an NXDOMAIN
/// name that carries `c` and `i`, so a misdelivered answer shows in the echoed question.
fn burst_query(c: usize, i: usize) -> (u16, String, Vec<u8>) {
    let id = (c * 1000 + i) as u16;
    let name = if i.is_multiple_of(3) {
        "web.default.svc.cluster.local.".to_owned()
    } else {
        format!("c{c}-q{i}.nope.default.svc.cluster.local.")
    };
    let mut m = query(&name, RecordType::A);
    m.metadata.id = id;
    (id, name, m.to_vec().unwrap())
}

/// Sends `per_client` queries from each of `clients` sockets bound to `bind`, all before
/// reading any answer, then reads them and checks each one: ID, question, rcode, answers.
/// Returns how many were answered.
async fn burst(server: SocketAddr, bind: &str, clients: usize, per_client: usize) -> usize {
    let mut sockets = Vec::new();
    for _ in 0..clients {
        sockets.push(UdpSocket::bind(bind).await.unwrap());
    }
    // Interleaved, so that one batch holds datagrams from many senders.
    for i in 0..per_client {
        for (c, socket) in sockets.iter().enumerate() {
            socket.send_to(&burst_query(c, i).2, server).await.unwrap();
        }
    }
    let mut answered = 0;
    for (c, socket) in sockets.iter().enumerate() {
        let mut expected: HashMap<u16, String> = (0..per_client)
            .map(|i| {
                let (id, name, _) = burst_query(c, i);
                (id, name)
            })
            .collect();
        let mut buf = vec![0u8; 65535];
        while !expected.is_empty() {
            let (len, from) = tokio::time::timeout(NEXT_ANSWER, socket.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("client {c}: {} answers missing", expected.len()))
                .unwrap();
            assert_eq!(from, server);
            let m = Message::from_vec(&buf[..len]).unwrap();
            let name = expected.remove(&m.metadata.id).unwrap_or_else(|| {
                panic!("client {c}: unexpected or repeated ID {}", m.metadata.id)
            });
            assert_eq!(m.queries[0].name().to_string(), name, "client {c}");
            if name.starts_with("web.") {
                assert_eq!(m.metadata.response_code, ResponseCode::NoError);
                assert_eq!(m.answers.len(), 3, "{m}");
            } else {
                assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m}");
            }
            answered += 1;
        }
    }
    answered
}

/// The sum of `podns_dns_requests_total` over all label sets.
fn requests_counted(metrics: &podns_server::Metrics) -> usize {
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("podns_dns_requests_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap() as usize)
        .sum()
}

fn one_worker() -> podns_server::ServerConfig {
    podns_server::ServerConfig {
        udp_workers: 1,
        ..Default::default()
    }
}

#[tokio::test]
async fn bursts_from_many_clients_are_answered_to_each_sender() {
    // One worker, so everything queues on one socket and batches fill.
    let metrics = Arc::new(podns_server::Metrics::new(&["cluster.local."]));
    let s = Server::start_metrics(one_worker(), Arc::clone(&metrics)).await;
    let (clients, per_client) = (8, 60);
    for _ in 0..3 {
        assert_eq!(
            burst(s.addr, "127.0.0.1:0", clients, per_client).await,
            clients * per_client
        );
    }
    // Each answer is counted once it went out; the count may trail the client by a moment.
    let began = Instant::now();
    while requests_counted(&metrics) < 3 * clients * per_client && began.elapsed() < TIMEOUT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(requests_counted(&metrics), 3 * clients * per_client);
    if cfg!(target_os = "linux") {
        // Every datagram came through a batch, and batches held more than one.
        let text = metrics.encode();
        let sample = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} in {text}")) as usize
        };
        let datagrams = sample("podns_dns_udp_batch_datagrams_sum");
        let batches = sample("podns_dns_udp_batch_datagrams_count");
        assert_eq!(datagrams, 3 * clients * per_client);
        assert!(
            batches < datagrams,
            "{batches} batches for {datagrams} datagrams"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn bursts_over_ipv6_and_ipv4_at_once() {
    // Two servers in one process, one per family, asked at the same time: answers go to the
    // right sender in both (the batched loop keeps per-family state per thread).
    let v6 = Server::start_with(podns_server::ServerConfig {
        listen: "[::1]:0".parse().unwrap(),
        ..one_worker()
    })
    .await;
    assert!(v6.addr.is_ipv6());
    let v4 = Server::start_with(one_worker()).await;
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            burst(v6.addr, "[::1]:0", 4, 50),
            burst(v4.addr, "127.0.0.1:0", 4, 50)
        );
        assert_eq!((a, b), (200, 200));
    }
    v6.stop().await;
    v4.stop().await;
}

/// A query for `web` with ID `id` and an OPT record carrying a padding option (RFC 7830) of
/// `padding` octets.
fn padded_query(id: u16, padding: usize) -> Vec<u8> {
    let mut opt = vec![0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0];
    opt.extend_from_slice(&((padding + 4) as u16).to_be_bytes());
    opt.extend_from_slice(&12u16.to_be_bytes());
    opt.extend_from_slice(&(padding as u16).to_be_bytes());
    opt.resize(opt.len() + padding, 0);
    let mut m = raw(0x0100, 1, 1, &[WEB_Q, &opt].concat());
    m[..2].copy_from_slice(&id.to_be_bytes());
    m
}

#[tokio::test]
async fn malformed_and_oversized_datagrams_share_a_burst_with_good_ones() {
    let s = Server::start_with(one_worker()).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let good = |id: u16| {
        let mut m = query("web.default.svc.cluster.local.", RecordType::A);
        m.metadata.id = id;
        m.to_vec().unwrap()
    };
    // What each ID should get: Some(rcode) or None (no answer at all).
    let mut expect: HashMap<u16, Option<ResponseCode>> = HashMap::new();
    let mut requests: Vec<(u16, Vec<u8>)> = Vec::new();
    for round in 0..4u16 {
        let base = round * 100;
        requests.push((base + 1, good(base + 1)));
        expect.insert(base + 1, Some(ResponseCode::NoError));
        // A runt: no header, no answer.
        requests.push((base + 2, vec![0x01, 0x02, 0x01]));
        // A response (QR = 1): never answered.
        let mut qr = good(base + 3);
        qr[2] |= 0x80;
        requests.push((base + 3, qr));
        expect.insert(base + 3, None);
        // Longer than the batched loop's receive buffer (4 KiB): it arrives cut short, so
        // FORMERR with the question echoed. (The portable loop reads 64 KiB and answers.)
        let oversized = if cfg!(target_os = "linux") {
            ResponseCode::FormErr
        } else {
            ResponseCode::NoError
        };
        requests.push((base + 4, padded_query(base + 4, 6000)));
        expect.insert(base + 4, Some(oversized));
        // The largest UDP datagram IPv4 carries, the same.
        requests.push((
            base + 5,
            padded_query(base + 5, 65507 - 12 - WEB_Q.len() - 15),
        ));
        expect.insert(base + 5, Some(oversized));
        // Exactly 4 KiB, a whole query: answered. The same query with junk after it is
        // FORMERR (trailing bytes), although its first 4 KiB alone would be a fine query.
        let exact = padded_query(base + 9, 4096 - 12 - WEB_Q.len() - 15);
        assert_eq!(exact.len(), 4096);
        requests.push((base + 9, exact.clone()));
        expect.insert(base + 9, Some(ResponseCode::NoError));
        let mut junk = exact;
        junk[..2].copy_from_slice(&(base + 10).to_be_bytes());
        junk.extend_from_slice(&[0xAB; 100]);
        requests.push((base + 10, junk));
        expect.insert(base + 10, Some(ResponseCode::FormErr));
        // Long but whole (a padded query under 4 KiB): answered as usual.
        requests.push((base + 6, padded_query(base + 6, 3000)));
        expect.insert(base + 6, Some(ResponseCode::NoError));
        // A cut-off question: FORMERR without echo.
        let mut cut = good(base + 7);
        cut.truncate(20);
        requests.push((base + 7, cut));
        expect.insert(base + 7, Some(ResponseCode::FormErr));
        requests.push((base + 8, good(base + 8)));
        expect.insert(base + 8, Some(ResponseCode::NoError));
    }
    for (_, r) in &requests {
        client.send_to(r, s.addr).await.unwrap();
    }
    let mut got: HashMap<u16, ResponseCode> = HashMap::new();
    let mut buf = vec![0u8; 65535];
    while let Ok(received) = tokio::time::timeout(SILENCE, client.recv_from(&mut buf)).await {
        let (len, _) = received.unwrap();
        let m = Message::from_vec(&buf[..len]).unwrap();
        let id = m.metadata.id;
        assert!(
            got.insert(id, m.metadata.response_code).is_none(),
            "ID {id} twice"
        );
        match id % 100 {
            1 | 6 | 8 | 9 => assert_eq!(m.answers.len(), 3, "ID {id}: {m}"),
            4 | 5 if cfg!(target_os = "linux") => {
                // The question came through whole, so it is echoed.
                assert_eq!(m.queries.len(), 1, "ID {id}: {m}");
                assert_eq!(
                    m.queries[0].name().to_string(),
                    "web.default.svc.cluster.local."
                );
                assert!(len < 100, "ID {id}: {len} octets");
            }
            _ => {}
        }
    }
    for (id, want) in &expect {
        assert_eq!(got.get(id), want.as_ref(), "ID {id}");
    }
    // Nothing else came back (the runts, IDs 2, are not even answerable).
    assert_eq!(got.len(), expect.values().filter(|w| w.is_some()).count());
    s.stop().await;
}

#[tokio::test]
async fn a_sender_whose_port_closed_does_not_cost_the_others_their_answers() {
    let s = Server::start_with(one_worker()).await;
    for _ in 0..5 {
        let good: Vec<UdpSocket> = vec![
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        ];
        let gone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let per_client = 40;
        for i in 0..per_client {
            gone.send_to(&burst_query(9, i).2, s.addr).await.unwrap();
            for (c, socket) in good.iter().enumerate() {
                socket.send_to(&burst_query(c, i).2, s.addr).await.unwrap();
            }
        }
        // Its answers now meet a closed port (ICMP port unreachable), in the same batches as
        // the good senders' answers.
        drop(gone);
        for (c, socket) in good.iter().enumerate() {
            let mut buf = vec![0u8; 4096];
            let mut ids = Vec::new();
            for _ in 0..per_client {
                let (len, _) = tokio::time::timeout(NEXT_ANSWER, socket.recv_from(&mut buf))
                    .await
                    .unwrap_or_else(|_| panic!("client {c}: only {} answers", ids.len()))
                    .unwrap();
                ids.push(Message::from_vec(&buf[..len]).unwrap().metadata.id);
            }
            ids.sort_unstable();
            let want: Vec<u16> = (0..per_client).map(|i| burst_query(c, i).0).collect();
            assert_eq!(ids, want, "client {c}");
        }
    }
    // And the server goes on answering.
    let m = udp(
        s.addr,
        &query("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(m.answers.len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn shutdown_is_prompt_while_datagrams_keep_coming() {
    let s = Server::start_with(podns_server::ServerConfig {
        udp_workers: 2,
        ..Default::default()
    })
    .await;
    let addr = s.addr;
    let stop = Arc::new(AtomicBool::new(false));
    // Two flooders that never read, bounded in count and time.
    let flooders: Vec<_> = (0..2)
        .map(|c| {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let began = Instant::now();
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed)
                    && sent < 500_000
                    && began.elapsed() < Duration::from_secs(5)
                {
                    let _ = socket.send_to(&burst_query(c, sent % 1000).2, addr).await;
                    sent += 1;
                    if sent.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let began = Instant::now();
    s.stop().await;
    let took = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    for f in flooders {
        sent += f.await.unwrap();
    }
    assert!(sent > 1000, "the flood was real: {sent} datagrams");
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
}
