//! UDP serving: one worker per socket, each looping receive → answer → send.
//!
//! This module is responsible for moving datagrams. Each worker owns one socket (all bound to
//! the same address with SO_REUSEPORT, so the kernel spreads datagrams over them) and buffers
//! allocated once and reused for every datagram: no task and no allocation per datagram for
//! the zone's own names (unlike hickory's task-per-datagram server). Only a forwarded query
//! leaves the loop: it becomes a task, at most `max_forwards_in_flight` of them, so a slow
//! upstream never stalls answers from the zone; beyond that bound the query gets SERVFAIL at
//! once rather than a queue. Errors on a datagram are logged and the worker goes on; only
//! shutdown ends it.
//!
//! Two loops move the datagrams; [`Handler`] decides what each one gets, the same for both:
//!
//! | loop | where | per wake-up |
//! |---|---|---|
//! | [`batch`] | Linux | `recvmmsg` up to 64 datagrams, answer each, one `sendmmsg` for all answers |
//! | [`run_portable`] | elsewhere, and on Linux if `recvmmsg` is not available (`ENOSYS`) | `recv_from`, answer, `send_to` |
//!
//! With response-rate limiting on, each worker keeps its own [`RateLimiter`] table (no lock
//! between workers) and asks it before every response it would send or forward: a suppressed
//! query costs no upstream work, and its answer is dropped or slipped (TC=1, no records).

#[cfg(target_os = "linux")]
mod batch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

use crate::Services;
use crate::query::{self, Asked, Outcome, QueryConfig, Transport};
use crate::rrl::{self, RateLimitConfig, RateLimiter, Verdict};

/// Largest datagram the portable loop reads (RFC 1035 §4.2.1 + EDNS: the UDP payload is at
/// most 65,535), so it never sees one cut short.
const PORTABLE_RECV_BUFFER: usize = 65535;

/// Runs one UDP worker until `shutdown` turns true.
pub(crate) async fn run(
    socket: Arc<UdpSocket>,
    worker: u32,
    config: QueryConfig,
    rate_limit: RateLimitConfig,
    services: Services,
    forwards: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
) {
    let mut handler = Handler {
        config,
        limiter: RateLimiter::new(rate_limit),
        services,
        forwards,
        socket: Arc::clone(&socket),
        // Workers start at different rotations so that, together, they still spread evenly.
        rotation: worker.wrapping_mul(0x9E37_79B9),
    };
    #[cfg(target_os = "linux")]
    let shutdown = match batch::run(&socket, &mut handler, shutdown).await {
        batch::Ended::Shutdown => return,
        batch::Ended::Unsupported(shutdown) => shutdown,
    };
    run_portable(&socket, &mut handler, shutdown).await;
}

/// Largest response [`Handler::handle`] writes for UDP under `config`, so a buffer of this
/// capacity never grows: every answer fits the client's limit, at most the configured maximum
/// (or 512); error answers, slips and SERVFAILs are header + question (≤ 271 octets) + OPT.
fn max_udp_response(config: &QueryConfig) -> usize {
    usize::from(config.max_udp_payload.max(query::MIN_UDP_PAYLOAD))
}

/// One datagram at a time: what the worker does where `recvmmsg` is not available.
async fn run_portable(
    socket: &UdpSocket,
    handler: &mut Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut recv = vec![0u8; PORTABLE_RECV_BUFFER];
    let mut out = Vec::with_capacity(max_udp_response(&handler.config));
    loop {
        let received = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            received = socket.recv_from(&mut recv) => received,
        };
        let (len, peer) = match received {
            Ok(r) => r,
            Err(error) => {
                // E.g. ICMP errors surfacing on the socket: one datagram's problem.
                tracing::debug!(%error, "udp receive failed");
                continue;
            }
        };
        let started = Instant::now();
        let request = &recv[..len];
        let reply = handler.handle(request, false, peer, started, &mut out);
        if reply == Reply::Nothing {
            continue;
        }
        if let Err(error) = socket.send_to(&out, peer).await {
            tracing::debug!(%error, %peer, "udp send failed");
        }
        handler.sent(reply, request, out.len(), started.elapsed());
    }
}

/// One worker's per-datagram decisions, shared by both loops: answer, rate limit, forward,
/// count. Owns no buffer; the loop hands it one request and one output buffer at a time.
struct Handler {
    /// Per-query behaviour.
    config: QueryConfig,
    /// This worker's own response-rate limiter; `None` when rate limiting is off.
    limiter: Option<RateLimiter>,
    /// Zone, metrics, forwarder.
    services: Services,
    /// Permits for forwarded queries in flight, shared by all workers.
    forwards: Arc<Semaphore>,
    /// The worker's socket, for forwarded answers, which their tasks send themselves.
    socket: Arc<UdpSocket>,
    /// Advanced once per datagram; picks the first record of rotated answers.
    rotation: u32,
}

/// What the loop does with the output buffer after [`Handler::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    /// Send nothing: dropped, suppressed by rate limiting, or handed to a forwarding task.
    Nothing,
    /// Send it; nothing more to count (a slipped answer, counted as rate-limited already).
    Slip,
    /// Send it, then count the query ([`Handler::sent`]) if its question parsed.
    Answer {
        /// The question, when it parsed.
        asked: Option<Asked>,
        /// The RCODE sent.
        rcode: u16,
    },
}

// === impl Handler ===

impl Handler {
    /// Decides what `request` from `peer`, received at `started`, gets; writes it into `out`.
    /// `cut` says the datagram was larger than the receive buffer (`MSG_TRUNC`): only its
    /// start is in `request`, so it gets FORMERR.
    fn handle(
        &mut self,
        request: &[u8],
        cut: bool,
        peer: SocketAddr,
        started: Instant,
        out: &mut Vec<u8>,
    ) -> Reply {
        self.rotation = self.rotation.wrapping_add(1);
        let outcome = if cut {
            query::formerr_truncated(request, out)
        } else {
            let snapshot = self.services.zone.load();
            query::answer(
                request,
                Transport::Udp,
                &self.config,
                &snapshot,
                self.rotation,
                out,
            )
        };
        if let Some(limiter) = &mut self.limiter
            && !matches!(outcome, Outcome::Drop)
        {
            match limiter.check(peer.ip(), started) {
                Verdict::Send => {}
                verdict => {
                    let slipped = verdict == Verdict::Slip;
                    if slipped {
                        let asked = match outcome {
                            Outcome::Respond { asked, .. } => asked,
                            Outcome::Forward { asked, .. } => Some(asked),
                            Outcome::Drop => None,
                        };
                        // QNAME, QTYPE and QCLASS.
                        rrl::slip(out, asked.map(|a| a.qname_len + 4));
                    }
                    if let Some(metrics) = &self.services.metrics {
                        metrics.query().record_rate_limited(slipped);
                    }
                    return if slipped { Reply::Slip } else { Reply::Nothing };
                }
            }
        }
        match outcome {
            Outcome::Drop => {
                if let Some(metrics) = &self.services.metrics {
                    metrics.query().record_dropped(Transport::Udp);
                }
                Reply::Nothing
            }
            Outcome::Respond { rcode, asked, .. } => Reply::Answer { asked, rcode },
            Outcome::Forward {
                asked,
                rcode,
                max_len,
            } => self.forward(request, peer, started, asked, rcode, max_len, out),
        }
    }

    /// A query for a name outside the zones: to the forwarder in a task of its own if there
    /// is one and a permit is free, else podns's own answer (already in `out`) or SERVFAIL.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        request: &[u8],
        peer: SocketAddr,
        started: Instant,
        asked: Asked,
        rcode: u16,
        max_len: usize,
        out: &mut Vec<u8>,
    ) -> Reply {
        // No forwarder: `out` already holds podns's own answer (REFUSED / NXDOMAIN).
        let Some(forwarder) = self.services.forward.load_full() else {
            return Reply::Answer {
                asked: Some(asked),
                rcode,
            };
        };
        let Ok(permit) = Arc::clone(&self.forwards).try_acquire_owned() else {
            tracing::debug!(%peer, "too many forwarded queries in flight: SERVFAIL");
            query::servfail(request, out);
            return Reply::Answer {
                asked: Some(asked),
                rcode: query::rcode::SERVFAIL,
            };
        };
        let query = request.to_vec();
        let socket = Arc::clone(&self.socket);
        let metrics = self.services.metrics.clone();
        tokio::spawn(async move {
            let response = forwarder.forward(&query, max_len).await;
            if let Err(error) = socket.send_to(&response, peer).await {
                tracing::debug!(%error, %peer, "udp send failed");
            }
            if let Some(metrics) = metrics {
                crate::record_query(
                    &metrics,
                    &query,
                    asked,
                    query::response_rcode(&response),
                    response.len(),
                    started.elapsed(),
                    Transport::Udp,
                );
            }
            drop(permit);
        });
        Reply::Nothing
    }

    /// Counts a reply once it went out (or failed to), `took` after the receipt of `request`.
    fn sent(&self, reply: Reply, request: &[u8], response_len: usize, took: Duration) {
        if let (
            Some(metrics),
            Reply::Answer {
                asked: Some(asked),
                rcode,
            },
        ) = (&self.services.metrics, reply)
        {
            crate::record_query(
                metrics,
                request,
                asked,
                rcode,
                response_len,
                took,
                Transport::Udp,
            );
        }
    }
}
