//! One upstream resolver: its health, its counters, and one exchange with it (UDP, then TCP
//! when the answer was truncated).
//!
//! This module is responsible for the network side of one attempt and for remembering how the
//! upstream has been doing; which upstream to try, and what to do with the answer, is the
//! forwarder's.
//!
//! Anti-spoofing (RFC 5452): every exchange uses a fresh random ID and a fresh socket. The UDP
//! socket is bound to port 0, so the kernel picks a random ephemeral source port (Linux
//! randomises them), and is connected, so the kernel drops datagrams from any other address.
//! A datagram that does not match our ID and question is ignored and we keep waiting until the
//! attempt's deadline; only a matching one ends the exchange.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

use crate::message::{self, ClientQuery, Failure, HEADER_LEN, Reply, Response};

/// Why one attempt failed (logged, and counted against the upstream).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttemptError {
    /// No matching answer before the deadline.
    #[error("timed out")]
    Timeout,
    /// Socket error (refused, unreachable, reset).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// An answer that is ours but not usable.
    #[error("{0}")]
    Bad(#[from] Failure),
}

/// An upstream's address, counters and health.
#[derive(Debug)]
pub(crate) struct Upstream {
    /// Where it listens (UDP and TCP).
    pub(crate) addr: SocketAddr,
    /// Attempts sent to it.
    pub(crate) requests: AtomicU64,
    /// Attempts that failed.
    pub(crate) failures: AtomicU64,
    /// Failures since the last success.
    consecutive_failures: AtomicU32,
    /// Marked down until this many milliseconds after the forwarder's epoch (0: up).
    down_until_ms: AtomicU64,
}

// === impl Upstream ===

impl Upstream {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            down_until_ms: AtomicU64::new(0),
        }
    }

    /// Whether it is not marked down at `now_ms` (milliseconds since the forwarder's epoch).
    pub(crate) fn healthy(&self, now_ms: u64) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    pub(crate) fn record_success(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.down_until_ms.store(0, Ordering::Relaxed);
    }

    /// Counts a failure; the `max_fails`-th in a row (and each after it) marks the upstream
    /// down for `cooldown`. Returns whether this call marked it down.
    pub(crate) fn record_failure(&self, max_fails: u32, cooldown: Duration, now_ms: u64) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if max_fails == 0 || n < max_fails {
            return false;
        }
        let until = now_ms.saturating_add(cooldown.as_millis().try_into().unwrap_or(u64::MAX));
        self.down_until_ms.store(until, Ordering::Relaxed);
        true
    }

    /// One attempt: UDP with `timeout`; if the answer has TC, the same question over TCP with
    /// another `timeout` (RFC 7766 §5: "the resolver SHOULD retry over TCP").
    pub(crate) async fn exchange(
        &self,
        q: &ClientQuery<'_>,
        udp_payload: u16,
        timeout: Duration,
    ) -> Result<Response, AttemptError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match self.udp(q, udp_payload, timeout).await? {
            Some(r) => Ok(r),
            None => self.tcp(q, udp_payload, timeout).await,
        }
    }

    /// `Ok(None)`: truncated, go to TCP.
    async fn udp(
        &self,
        q: &ClientQuery<'_>,
        udp_payload: u16,
        timeout: Duration,
    ) -> Result<Option<Response>, AttemptError> {
        let deadline = Instant::now() + timeout;
        let id: u16 = rand::random();
        let query = message::upstream_query(q, id, udp_payload);
        let local: SocketAddr = match self.addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(self.addr).await?;
        socket.send(&query).await?;
        // One octet more than any datagram we accept: a datagram that fills the buffer was cut
        // by the kernel, and is handled as truncated if it is ours.
        let mut buf = vec![0u8; usize::from(udp_payload).max(4096) + 1];
        loop {
            let n = match timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => return Err(AttemptError::Timeout),
                Ok(r) => r?,
            };
            let reply = if n == buf.len() {
                match message::parse_reply(&buf[..HEADER_LEN + q.question.len()], id, q.question) {
                    Reply::NotOurs => Reply::NotOurs,
                    _ => Reply::Truncated,
                }
            } else {
                message::parse_reply(&buf[..n], id, q.question)
            };
            match reply {
                Reply::NotOurs => {
                    tracing::debug!(upstream = %self.addr, len = n, "ignored a datagram that does not answer our query");
                }
                Reply::Truncated => return Ok(None),
                Reply::Failed(f) => return Err(f.into()),
                Reply::Usable(r) => return Ok(Some(r)),
            }
        }
    }

    async fn tcp(
        &self,
        q: &ClientQuery<'_>,
        udp_payload: u16,
        timeout: Duration,
    ) -> Result<Response, AttemptError> {
        let deadline = Instant::now() + timeout;
        let id: u16 = rand::random();
        let query = message::upstream_query(q, id, udp_payload);
        let exchange = async {
            let mut stream = TcpStream::connect(self.addr).await?;
            // RFC 7766 §8: length and message in one write, so they leave in one segment.
            let mut framed = Vec::with_capacity(2 + query.len());
            framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
            framed.extend_from_slice(&query);
            stream.write_all(&framed).await?;
            let len = stream.read_u16().await?;
            let mut buf = vec![0u8; usize::from(len)];
            stream.read_exact(&mut buf).await?;
            Ok::<_, io::Error>(buf)
        };
        let buf = timeout_at(deadline, exchange)
            .await
            .map_err(|_| AttemptError::Timeout)??;
        match message::parse_reply(&buf, id, q.question) {
            Reply::Usable(r) => Ok(r),
            Reply::Failed(f) => Err(f.into()),
            Reply::Truncated => Err(Failure::TruncatedTcp.into()),
            // Nobody else writes on our connection: a mismatch is a broken upstream.
            Reply::NotOurs => Err(Failure::Malformed.into()),
        }
    }
}
