//! UDP serving: one worker per socket, each looping receive → answer → send.
//!
//! This module is responsible for moving datagrams. Each worker owns one socket (all bound to
//! the same address with SO_REUSEPORT, so the kernel spreads datagrams over them), one receive
//! buffer and one response buffer, reused for every datagram: no task and no allocation per
//! datagram for the zone's own names (unlike hickory's task-per-datagram server). Only a
//! forwarded query leaves the loop: it becomes a task, at most `max_forwards_in_flight` of
//! them, so a slow upstream never stalls answers from the zone; beyond that bound the query
//! gets SERVFAIL at once rather than a queue. Errors on a datagram are logged and the worker
//! goes on; only shutdown ends it.
//!
//! With response-rate limiting on, each worker keeps its own [`RateLimiter`] table (no lock
//! between workers) and asks it before every response it would send or forward: a suppressed
//! query costs no upstream work, and its answer is dropped or slipped (TC=1, no records).

use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

use crate::Services;
use crate::query::{self, Outcome, QueryConfig, Transport};
use crate::rrl::{self, RateLimitConfig, RateLimiter, Verdict};

/// Largest datagram we read (RFC 1035 §4.2.1 + EDNS: the UDP payload is at most 65,535).
const RECV_BUFFER: usize = 65535;

/// Runs one UDP worker until `shutdown` turns true.
pub(crate) async fn run(
    socket: Arc<UdpSocket>,
    worker: u32,
    config: QueryConfig,
    rate_limit: RateLimitConfig,
    services: Services,
    forwards: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut limiter = RateLimiter::new(rate_limit);
    let mut recv = vec![0u8; RECV_BUFFER];
    let mut out = Vec::with_capacity(RECV_BUFFER);
    // Workers start at different rotations so that, together, they still spread evenly.
    let mut rotation = worker.wrapping_mul(0x9E37_79B9);
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
        rotation = rotation.wrapping_add(1);
        let request = &recv[..len];
        let outcome = {
            let snapshot = services.zone.load();
            query::answer(
                request,
                Transport::Udp,
                &config,
                &snapshot,
                rotation,
                &mut out,
            )
        };
        if let Some(limiter) = &mut limiter
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
                        rrl::slip(&mut out, asked.map(|a| a.qname_len + 4));
                        if let Err(error) = socket.send_to(&out, peer).await {
                            tracing::debug!(%error, %peer, "udp send failed");
                        }
                    }
                    if let Some(metrics) = &services.metrics {
                        metrics.query().record_rate_limited(slipped);
                    }
                    continue;
                }
            }
        }
        let (asked, rcode) = match outcome {
            Outcome::Drop => {
                if let Some(metrics) = &services.metrics {
                    metrics.query().record_dropped(Transport::Udp);
                }
                continue;
            }
            Outcome::Respond { rcode, asked, .. } => (asked, rcode),
            Outcome::Forward {
                asked,
                rcode,
                max_len,
            } => match services.forward.load_full() {
                // No forwarder: `out` already holds podns's own answer (REFUSED / NXDOMAIN).
                None => (Some(asked), rcode),
                Some(forwarder) => match Arc::clone(&forwards).try_acquire_owned() {
                    Ok(permit) => {
                        let query = request.to_vec();
                        let socket = Arc::clone(&socket);
                        let metrics = services.metrics.clone();
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
                                    started,
                                    Transport::Udp,
                                );
                            }
                            drop(permit);
                        });
                        continue;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "too many forwarded queries in flight: SERVFAIL");
                        query::servfail(request, &mut out);
                        (Some(asked), query::rcode::SERVFAIL)
                    }
                },
            },
        };
        if let Err(error) = socket.send_to(&out, peer).await {
            tracing::debug!(%error, %peer, "udp send failed");
        }
        if let (Some(metrics), Some(asked)) = (&services.metrics, asked) {
            crate::record_query(
                metrics,
                request,
                asked,
                rcode,
                out.len(),
                started,
                Transport::Udp,
            );
        }
    }
}
