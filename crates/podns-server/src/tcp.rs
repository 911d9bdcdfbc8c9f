//! TCP serving: RFC 7766 framing, pipelining, a connection cap and timeouts.
//!
//! This module is responsible for DNS over TCP. Each connection is a task reading
//! length-prefixed messages (RFC 1035 §4.2.2) and answering them in order as they arrive, so
//! a client may pipeline several queries (RFC 7766 §6.2.1.1). Defences:
//!
//! | limit | default | against |
//! |---|---|---|
//! | `max_tcp_connections` | 1024 | descriptor exhaustion; new connections beyond it are closed at once |
//! | `tcp_idle_timeout` (wait for the next message) | 10 s | idle connections holding slots (RFC 7766 §6.2.3) |
//! | `tcp_message_timeout` (rest of a message once it began; writing the answer) | 2 s | Slowloris-style trickling, clients that never read |
//! | frame shorter than a header, or a message we drop | close | garbage and reflection |
//!
//! On shutdown the listener closes; a connection waiting for its next message closes, one in
//! the middle of a message finishes answering it first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::query::{self, Outcome, QueryConfig, Transport};
use crate::wire::HEADER_LEN;
use crate::{ServerConfig, Services};

/// Back-off after a failed accept (e.g. EMFILE), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections until `shutdown`, then waits for open connections to finish.
pub(crate) async fn run(
    listener: TcpListener,
    config: ServerConfig,
    services: Services,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(config.max_tcp_connections));
    let mut connections = JoinSet::new();
    // Each connection starts its rotation elsewhere: most clients ask one question per
    // connection, and with every connection starting at the same rotation they would all get
    // the same first record.
    let mut opened: u32 = 0;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(%error, "tcp accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "tcp connection limit reached; closing");
            continue;
        };
        opened = opened.wrapping_add(1);
        let conn = Connection {
            rotation: opened.wrapping_mul(0x9E37_79B9),
            config: config.query,
            idle_timeout: config.tcp_idle_timeout,
            message_timeout: config.tcp_message_timeout,
            services: services.clone(),
            shutdown: shutdown.clone(),
        };
        connections.spawn(async move {
            if let Err(error) = conn.serve(stream).await {
                tracing::debug!(%error, %peer, "tcp connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// The size a connection's buffers start with: most queries and answers fit.
const TYPICAL_MESSAGE: usize = 1232;

/// One client connection's settings and state.
struct Connection {
    /// Where this connection's answer rotation starts.
    rotation: u32,
    config: QueryConfig,
    idle_timeout: Duration,
    message_timeout: Duration,
    services: Services,
    shutdown: watch::Receiver<bool>,
}

// === impl Connection ===

impl Connection {
    async fn serve(mut self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let mut stream = BufReader::new(stream);
        // Buffers start at a typical message's size and grow to the largest this connection
        // has seen, then stay: a connection allocates a few times in its life, not per
        // message. Sizing them at 64 KiB up front cost ~80 KiB of resident memory per idle
        // connection (the zeroed request buffer) once malloc hands out reused memory.
        let mut request = Vec::with_capacity(TYPICAL_MESSAGE);
        let mut out = Vec::with_capacity(TYPICAL_MESSAGE);
        let mut frame = Vec::with_capacity(TYPICAL_MESSAGE + 2);
        let mut rotation = self.rotation;
        loop {
            // Idle: wait for the first octet of the next length prefix.
            let first = tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|stop| *stop) => return Ok(()),
                first = timeout(self.idle_timeout, stream.read_u8()) => first,
            };
            let first = match first {
                Err(_elapsed) => return Ok(()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(r) => r?,
            };
            // A message has begun: it must arrive completely within the message timeout.
            let read = timeout(self.message_timeout, async {
                let second = stream.read_u8().await?;
                let len = u16::from_be_bytes([first, second]) as usize;
                if len < HEADER_LEN {
                    return Ok(None);
                }
                request.clear();
                request.resize(len, 0);
                stream.read_exact(&mut request).await?;
                Ok::<_, std::io::Error>(Some(len))
            });
            let Some(len) = read.await.map_err(|_| std::io::ErrorKind::TimedOut)?? else {
                // RFC 7766 §8: a frame too short to be a message; the stream is unusable.
                if let Some(metrics) = &self.services.metrics {
                    metrics.query().record_dropped(Transport::Tcp);
                }
                return Ok(());
            };
            let started = Instant::now();
            rotation = rotation.wrapping_add(1);
            let request = &request[..len];
            let outcome = {
                let snapshot = self.services.zone.load();
                query::answer(
                    request,
                    Transport::Tcp,
                    &self.config,
                    &snapshot,
                    rotation,
                    &mut out,
                )
            };
            let (asked, rcode) = match outcome {
                Outcome::Drop => {
                    if let Some(metrics) = &self.services.metrics {
                        metrics.query().record_dropped(Transport::Tcp);
                    }
                    return Ok(());
                }
                Outcome::Respond { rcode, asked, .. } => (asked, rcode),
                Outcome::Forward {
                    asked,
                    rcode,
                    max_len,
                } => match self.services.forward.load_full() {
                    None => (Some(asked), rcode),
                    // In line: later queries pipelined on this connection wait for this one,
                    // which RFC 7766 allows; the connection cap bounds how many wait at once.
                    Some(forwarder) => {
                        let response = forwarder.forward(request, max_len).await;
                        out.clear();
                        out.extend_from_slice(&response);
                        (Some(asked), query::response_rcode(&out))
                    }
                },
            };
            frame.clear();
            frame.extend_from_slice(&(out.len() as u16).to_be_bytes());
            frame.extend_from_slice(&out);
            timeout(self.message_timeout, stream.get_mut().write_all(&frame))
                .await
                .map_err(|_| std::io::ErrorKind::TimedOut)??;
            if let (Some(metrics), Some(asked)) = (&self.services.metrics, asked) {
                crate::record_query(
                    metrics,
                    request,
                    asked,
                    rcode,
                    out.len(),
                    started.elapsed(),
                    Transport::Tcp,
                );
            }
        }
    }
}
