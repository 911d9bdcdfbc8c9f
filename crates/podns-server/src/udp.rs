//! UDP serving: one worker per socket, each looping receive → answer → send.
//!
//! This module is responsible for moving datagrams. Each worker owns one socket (all bound to
//! the same address with SO_REUSEPORT, so the kernel spreads datagrams over them), one receive
//! buffer and one response buffer, reused for every datagram: no task and no allocation per
//! datagram (unlike hickory's task-per-datagram server). Errors on a datagram are logged and
//! the worker goes on; only shutdown ends it.

use std::sync::Arc;

use podns_zone::ZoneReader;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::query::{self, Outcome, QueryConfig, Transport};

/// Largest datagram we read (RFC 1035 §4.2.1 + EDNS: the UDP payload is at most 65,535).
const RECV_BUFFER: usize = 65535;

/// Runs one UDP worker until `shutdown` turns true.
pub(crate) async fn run(
    socket: Arc<UdpSocket>,
    worker: u32,
    config: QueryConfig,
    zone: ZoneReader,
    mut shutdown: watch::Receiver<bool>,
) {
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
        rotation = rotation.wrapping_add(1);
        let snapshot = zone.load();
        let outcome = query::answer(
            &recv[..len],
            Transport::Udp,
            &config,
            &snapshot,
            rotation,
            &mut out,
        );
        drop(snapshot);
        if let Outcome::Respond { .. } = outcome
            && let Err(error) = socket.send_to(&out, peer).await
        {
            tracing::debug!(%error, %peer, "udp send failed");
        }
    }
}
