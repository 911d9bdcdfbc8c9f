//! Hostile input over real sockets: what any pod can send, and that podns keeps serving.
//!
//! The server runs on 127.0.0.1:0 with short, explicit timeouts; requests are raw bytes (most
//! are not valid DNS), responses are checked octet by octet and parsed with hickory-proto.
//! `tests/server` covers the basic malformed cases (FORMERR table, REFUSED, BADVERS, one
//! NOTIMP opcode, runts, a malformed TCP frame, an idle TCP connection); this suite covers the
//! rest of the hostile-input issue's list, grouped by threat:
//!
//! | module | threat |
//! |---|---|
//! | [`packets`] | malformed and hostile messages: truncations, counts, pointers, limits, OPT, QR, opcodes, ANY, AXFR/IXFR, mutations |
//! | [`amplification`] | UDP responses larger than the client may receive (payload sweep 0..=65535) |
//! | [`tcp_abuse`] | connection floods, half-open and slow (slowloris) connections, clients that never read, pipelining |
//! | [`rate_limit`] | response-rate limiting per client prefix, slip, never on TCP |
//! | [`forwarding`] | a slow upstream: forwarded queries bounded in flight, SERVFAIL beyond |
//!
//! While each TCP abuse runs, a [`UdpProbe`] keeps asking over UDP and every one of its
//! queries must be answered promptly: abuse of one transport never costs the other.

#[path = "../server/support.rs"]
mod support;

mod amplification;
mod forwarding;
mod packets;
mod rate_limit;
mod tcp_abuse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use support::{query, udp_raw};

/// How long a probe query may take. Loopback answers take well under a millisecond; this
/// leaves room for a loaded CI machine, and is still far below any abuse's duration.
const PROMPT: Duration = Duration::from_millis(500);
/// How long to wait before concluding that no response is coming.
const SILENCE: Duration = Duration::from_millis(150);

/// Asks `web.default.svc.cluster.local. A` over UDP every 20 ms until stopped, and records
/// how each query fared.
struct UdpProbe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<ProbeReport>,
}

/// What a [`UdpProbe`] saw.
#[derive(Debug)]
struct ProbeReport {
    answered: usize,
    /// Queries without a correct answer within [`PROMPT`].
    failed: usize,
    slowest: Duration,
}

impl UdpProbe {
    fn start(addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = Arc::clone(&stop);
            async move {
                let request = query("web.default.svc.cluster.local.", RecordType::A)
                    .to_vec()
                    .unwrap();
                let mut report = ProbeReport {
                    answered: 0,
                    failed: 0,
                    slowest: Duration::ZERO,
                };
                // At least three queries, however short the abuse.
                while !stop.load(Ordering::Relaxed) || report.answered + report.failed < 3 {
                    let began = Instant::now();
                    let ok = udp_raw(addr, &request, PROMPT)
                        .await
                        .and_then(|r| Message::from_vec(&r).ok())
                        .is_some_and(|m| m.answers.len() == 3);
                    if ok {
                        report.answered += 1;
                        report.slowest = report.slowest.max(began.elapsed());
                    } else {
                        report.failed += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                report
            }
        });
        Self { stop, task }
    }

    /// Stops the probe (after its third query at the earliest) and asserts that every query
    /// was answered promptly.
    async fn finish(self, during: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let report = self.task.await.unwrap();
        assert_eq!(
            report.failed, 0,
            "UDP queries failed during {during}: {report:?}"
        );
        assert!(report.slowest < PROMPT, "{during}: {report:?}");
    }
}

/// What came back on one TCP connection.
#[derive(Debug)]
struct TcpSession {
    /// The response messages, in order (without their length prefixes).
    responses: Vec<Vec<u8>>,
    /// Whether the server closed the connection (EOF or reset) before `wait` ran out.
    closed: bool,
}

/// Connects, writes `bytes` (frames or garbage) at once, and reads framed responses until the
/// server closes the connection or `wait` passes without it.
async fn tcp_session(addr: SocketAddr, bytes: &[u8], wait: Duration) -> TcpSession {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A server that closes at once may make the write fail: that is an outcome, not an error.
    let _ = stream.write_all(bytes).await;
    let mut received = Vec::new();
    let closed = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    TcpSession {
        responses: frames(&received),
        closed,
    }
}

/// Splits a TCP byte stream into its messages; a trailing partial frame is left out.
fn frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let len = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
        let Some(message) = bytes.get(2..2 + len) else {
            break;
        };
        out.push(message.to_vec());
        bytes = &bytes[2 + len..];
    }
    out
}

/// `message` with its RFC 1035 §4.2.2 length prefix.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

/// The RCODE in a response header (low 4 bits).
fn rcode(response: &[u8]) -> u8 {
    response[3] & 0x0F
}

/// Asserts the header invariants of any response to `request`: the ID and OPCODE echoed, QR
/// set.
fn assert_header(request: &[u8], response: &[u8], what: &str) {
    assert!(response.len() >= 12, "{what}: {response:?}");
    assert_eq!(response[..2], request[..2], "{what}: ID");
    assert_ne!(response[2] & 0x80, 0, "{what}: QR");
    assert_eq!(response[2] & 0x78, request[2] & 0x78, "{what}: OPCODE");
}

/// [`assert_header`], and hickory-proto parses the response.
fn assert_answers(request: &[u8], response: &[u8], what: &str) -> Message {
    assert_header(request, response, what);
    Message::from_vec(response).unwrap_or_else(|e| panic!("{what}: unparseable response: {e}"))
}
