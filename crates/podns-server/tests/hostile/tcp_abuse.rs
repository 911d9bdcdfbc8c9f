//! TCP abuse: floods past the connection cap, half-open and slow connections, clients that
//! never read, and long pipelines; meanwhile UDP keeps answering.
//!
//! Every server here runs with short explicit limits (8 connections, 2 s idle, 1 s per
//! message), so each abuse is cut off within seconds and the suite stays bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;
use crate::{UdpProbe, frame, frames, tcp_session};

const MAX_CONNECTIONS: usize = 8;
const IDLE: Duration = Duration::from_secs(2);
const MESSAGE: Duration = Duration::from_secs(1);

async fn start() -> Server {
    Server::start_with(podns_server::ServerConfig {
        max_tcp_connections: MAX_CONNECTIONS,
        tcp_idle_timeout: IDLE,
        tcp_message_timeout: MESSAGE,
        ..Default::default()
    })
    .await
}

fn web_query(id: u16) -> Vec<u8> {
    let mut q = query("web.default.svc.cluster.local.", RecordType::A);
    q.metadata.id = id;
    q.to_vec().unwrap()
}

/// Reads until the server closes `stream`; returns what arrived, or `None` if it stays open
/// for `wait`.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    tokio::time::timeout(wait, async {
        let mut buf = [0u8; 65536];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| received)
}

/// Sends one query on an open connection and reads its answer.
async fn ask(stream: &mut TcpStream, id: u16) -> Message {
    stream.write_all(&frame(&web_query(id))).await.unwrap();
    let len = tokio::time::timeout(TIMEOUT, stream.read_u16())
        .await
        .expect("an answer in time")
        .unwrap();
    let mut buf = vec![0; len as usize];
    stream.read_exact(&mut buf).await.unwrap();
    let m = Message::from_vec(&buf).unwrap();
    assert_eq!(m.metadata.id, id);
    m
}

/// Connects until a connection is served (slots free up as the server notices closed ones).
async fn connect_served(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let asked = tokio::time::timeout(Duration::from_millis(300), async {
            stream.write_all(&frame(&web_query(7))).await.ok()?;
            stream.read_u16().await.ok()
        })
        .await;
        if let Ok(Some(len)) = asked {
            let mut buf = vec![0; len as usize];
            stream.read_exact(&mut buf).await.unwrap();
            return stream;
        }
        assert!(Instant::now() < deadline, "no connection served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_by_the_message_timeout() {
    let s = start().await;
    let probe = UdpProbe::start(s.addr);
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let message = frame(&web_query(1));
    let began = Instant::now();
    // One octet every 300 ms: each arrives well within the idle timeout, but the message as a
    // whole would take 300 ms × 49 ≈ 15 s.
    let mut cut_after = None;
    for (i, octet) in message.iter().enumerate() {
        if stream.write_all(&[*octet]).await.is_err() {
            cut_after = Some(i);
            break;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await {
            Err(_elapsed) => {}
            Ok(Ok(0) | Err(_)) => {
                cut_after = Some(i + 1);
                break;
            }
            Ok(Ok(n)) => panic!("a response to a partial message: {:?}", &buf[..n]),
        }
    }
    let elapsed = began.elapsed();
    let sent = cut_after.expect("the connection was never closed");
    assert!(sent < message.len(), "the whole message got through");
    // Closed by the 1 s message timeout (not the 2 s idle one, which trickling defeats).
    assert!(
        elapsed >= MESSAGE && elapsed < MESSAGE + Duration::from_millis(900),
        "{elapsed:?}"
    );
    probe.finish("slowloris").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_fill_the_cap_then_time_out() {
    let s = start().await;
    let probe = UdpProbe::start(s.addr);
    // Connect and never send: every slot taken.
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The next one is closed at once, unanswered.
    let extra = tcp_session(s.addr, &frame(&web_query(2)), Duration::from_millis(500)).await;
    assert!(extra.closed && extra.responses.is_empty(), "{extra:?}");
    // The idle timeout frees every slot, well before a client could hold them for long ...
    let began = Instant::now();
    for stream in &mut idle {
        let got = read_until_closed(stream, IDLE + Duration::from_secs(1)).await;
        assert_eq!(got, Some(Vec::new()), "closed without a response");
    }
    assert!(began.elapsed() < IDLE + Duration::from_millis(500));
    // ... and TCP serves again.
    let mut stream = connect_served(s.addr).await;
    ask(&mut stream, 3).await;
    probe.finish("a half-open connection flood").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_past_the_cap_leaves_served_connections_alone() {
    let s = start().await;
    let probe = UdpProbe::start(s.addr);
    let mut served = Vec::new();
    for i in 0..MAX_CONNECTIONS {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        ask(&mut stream, i as u16).await;
        served.push(stream);
    }
    // 100 more, all at once: each closed without an answer.
    let flood: Vec<_> = (0..100)
        .map(|i| {
            let addr = s.addr;
            tokio::spawn(async move { tcp_session(addr, &frame(&web_query(i)), TIMEOUT).await })
        })
        .collect();
    for session in flood {
        let session = session.await.unwrap();
        assert!(
            session.closed && session.responses.is_empty(),
            "{session:?}"
        );
    }
    // The connections within the cap are still served.
    for (i, stream) in served.iter_mut().enumerate() {
        ask(stream, 100 + i as u16).await;
    }
    // Closing some frees their slots for newcomers.
    served.truncate(MAX_CONNECTIONS - 2);
    let mut newcomer = connect_served(s.addr).await;
    ask(&mut newcomer, 200).await;
    probe.finish("a connection flood").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_closed_connection_gets_its_answers_then_closes() {
    let s = start().await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let requests = [frame(&web_query(1)), frame(&web_query(2))].concat();
    stream.write_all(&requests).await.unwrap();
    stream.shutdown().await.unwrap();
    let got = read_until_closed(&mut stream, TIMEOUT)
        .await
        .expect("closed after answering");
    let ids: Vec<u16> = frames(&got)
        .iter()
        .map(|r| u16::from_be_bytes([r[0], r[1]]))
        .collect();
    assert_eq!(ids, [1, 2]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_pipeline_in_odd_segments_is_answered_in_order() {
    let s = start().await;
    let probe = UdpProbe::start(s.addr);
    let names = [
        ("web.default.svc.cluster.local.", RecordType::A),
        ("big.default.svc.cluster.local.", RecordType::A),
        ("nope.default.svc.cluster.local.", RecordType::AAAA),
        ("_web._tcp.web.default.svc.cluster.local.", RecordType::SRV),
    ];
    let n = 400u16;
    let mut bytes = Vec::new();
    for id in 0..n {
        let (name, rtype) = names[id as usize % names.len()];
        let mut q = query(name, rtype);
        q.metadata.id = id;
        bytes.extend(frame(&q.to_vec().unwrap()));
    }
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    // No Nagle: each write leaves as its own segment.
    stream.set_nodelay(true).unwrap();
    let reader = {
        let (mut rd, mut wr) = stream.into_split();
        let writer = tokio::spawn(async move {
            // Segments of 1 to 97 octets, splitting length prefixes and messages anywhere.
            let mut at = 0;
            let mut step = 1;
            while at < bytes.len() {
                let end = (at + step).min(bytes.len());
                wr.write_all(&bytes[at..end]).await.unwrap();
                at = end;
                step = (step * 7 + 3) % 97 + 1;
            }
            wr
        });
        let mut responses = Vec::new();
        let mut buf = Vec::new();
        while responses.len() < n as usize {
            let len = tokio::time::timeout(TIMEOUT, rd.read_u16())
                .await
                .unwrap()
                .unwrap();
            buf.resize(len as usize, 0);
            rd.read_exact(&mut buf).await.unwrap();
            responses.push(buf.clone());
        }
        stream = rd.reunite(writer.await.unwrap()).unwrap();
        responses
    };
    for (id, r) in reader.iter().enumerate() {
        let m = Message::from_vec(r).unwrap();
        assert_eq!(m.metadata.id, id as u16, "in order");
        assert_eq!(m.queries[0].query_type(), names[id % names.len()].1);
    }
    // The connection is still usable afterwards.
    ask(&mut stream, 9999).await;
    probe.finish("a long pipeline").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off_by_the_write_timeout() {
    let s = start().await;
    let probe = UdpProbe::start(s.addr);
    // A small receive window, so the server's writes block soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let mut q = query("big.default.svc.cluster.local.", RecordType::A);
    q.metadata.id = 1;
    let one = frame(&q.to_vec().unwrap());
    // ~1.7 KB per answer: 10,000 answers are far more than the socket buffers hold.
    let sent = 10_000;
    let requests = one.repeat(sent);
    // Write in the background: the server stops reading once its writes block.
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&requests).await;
        wr
    });
    tokio::time::sleep(MESSAGE * 2 + Duration::from_millis(500)).await;
    let mut received = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, rd.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "the connection stayed open");
    let answered = frames(&received).len();
    assert!(answered < sent, "every answer was written: {answered}");
    writer.abort();
    probe.finish("a client that never reads").await;
    s.stop().await;
}
