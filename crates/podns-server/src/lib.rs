//! Bytes in, bytes out: the DNS query path and the UDP/TCP servers around it.
//!
//! `podns-server` answers DNS messages from a published [`podns_zone::ZoneSnapshot`]. It knows
//! nothing of Kubernetes; the zone crate decides what exists, this crate decides what goes on
//! the wire.
//!
//! ```text
//!  UDP socket ×N (SO_REUSEPORT) ─ udp.rs worker ─┐
//!                                                ├─▶ query::answer(request, snapshot, out) ─▶ response
//!  TCP listener ─ tcp.rs connection task ────────┘        │ wire.rs: header, question, OPT
//!                                                          ▼
//!                                          ZoneReader::load() (lock-free)
//! ```
//!
//! Start from [`bind`] and [`serve`]; [`query::answer`] is the sans-IO core that tests, benches
//! and fuzzers call directly. Invariants: the query path never allocates once its output buffer
//! has capacity; a failure on one datagram or connection never stops the server.

pub mod admin;
pub mod metrics;
pub mod query;
pub mod rrl;
mod tcp;
mod udp;
pub mod wire;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use podns_zone::ZoneReader;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use admin::{AdminConfig, Readiness, serve_admin, serve_admin_with};
pub use metrics::{
    ForwardSample, Metrics, QueryMetrics, ServiceKindLabel, UpstreamSample, ZoneObjects,
};
pub use query::{Outcome, QueryConfig, Transport, answer};
pub use rrl::RateLimitConfig;

/// How many times [`bind`] tries to find a port free for both UDP and TCP when the listen port
/// is 0.
const BIND_ATTEMPTS: usize = 16;
/// TCP accept backlog.
const TCP_BACKLOG: i32 = 1024;

/// Everything the server needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address for both UDP and TCP; port 0 picks one free for both. Default `0.0.0.0:53`.
    pub listen: SocketAddr,
    /// UDP sockets/workers on the listen address. Default: the available cores.
    pub udp_workers: usize,
    /// Per-query behaviour.
    pub query: QueryConfig,
    /// Open TCP connections at most; more are closed at once. Default 1024.
    pub max_tcp_connections: usize,
    /// How long a TCP connection may wait for its next message (RFC 7766 §6.2.3). Default 10 s.
    pub tcp_idle_timeout: Duration,
    /// How long the rest of a TCP message may take once it began, and how long writing the
    /// response may take (against Slowloris). Default 2 s.
    pub tcp_message_timeout: Duration,
    /// Forwarded UDP queries waiting for an upstream at once, over all workers; more get
    /// SERVFAIL at once (bounded memory when upstreams are slow). Default 1024.
    pub max_forwards_in_flight: usize,
    /// Response-rate limiting of UDP answers per client prefix ([`rrl`]). Default off
    /// (`responses_per_second = 0`).
    pub rate_limit: RateLimitConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 53)),
            udp_workers: std::thread::available_parallelism().map_or(1, usize::from),
            query: QueryConfig::default(),
            max_tcp_connections: 1024,
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_message_timeout: Duration::from_secs(2),
            max_forwards_in_flight: 1024,
            rate_limit: RateLimitConfig::default(),
        }
    }
}

/// Sockets bound by [`bind`], ready for [`serve`].
#[derive(Debug)]
pub struct BoundSockets {
    udp: Vec<std::net::UdpSocket>,
    tcp: std::net::TcpListener,
    local: SocketAddr,
}

// === impl BoundSockets ===

impl BoundSockets {
    /// The address both UDP and TCP listen on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// Binds `config.udp_workers` UDP sockets and one TCP listener on the same address and port.
///
/// With port 0 the first UDP socket picks the port and TCP takes the same one; if that TCP
/// port is taken, it tries again with a new port (up to 16 times).
pub fn bind(config: &ServerConfig) -> io::Result<BoundSockets> {
    let workers = config.udp_workers.max(1);
    let attempts = if config.listen.port() == 0 {
        BIND_ATTEMPTS
    } else {
        1
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let first = udp_socket(config.listen)?;
        let local = first.local_addr()?;
        let tcp = match tcp_listener(local) {
            Ok(tcp) => tcp,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                last_error = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut udp = vec![first];
        for _ in 1..workers {
            udp.push(udp_socket(local)?);
        }
        return Ok(BoundSockets { udp, tcp, local });
    }
    Err(last_error.unwrap_or_else(|| io::ErrorKind::AddrInUse.into()))
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Each worker gets its own socket on the same port; the kernel balances between them.
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    // Bursts outrun one worker for a moment; the default ~208 KiB buffer dropped queries under
    // dnsperf where NSD (2 MiB) dropped none (BENCHMARKS.md). The kernel caps this at
    // net.core.rmem_max; a smaller buffer than asked is no error.
    if let Err(error) = socket.set_recv_buffer_size(UDP_RECV_BUFFER) {
        tracing::debug!(%error, "could not enlarge the UDP receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Requested UDP receive buffer per worker socket (NSD uses 2 MiB by default; so do we).
const UDP_RECV_BUFFER: usize = 2 * 1024 * 1024;

fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Rebind right after a restart despite connections in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket.into())
}

/// Where a forwarder is plugged in; empty means names outside the zones get podns's own
/// answer (REFUSED). Swapped atomically on a config reload, read per forwarded query.
pub type ForwardSlot = Arc<arc_swap::ArcSwapOption<podns_forward::Forwarder>>;

/// What the server answers from, besides the wire: the zone, and optionally metrics and a
/// forwarder.
#[derive(Clone)]
pub struct Services {
    /// The published zone.
    pub zone: ZoneReader,
    /// Where queries are counted; `None` counts nothing.
    pub metrics: Option<Arc<Metrics>>,
    /// The forwarder for names outside the served zones.
    pub forward: ForwardSlot,
}

impl Services {
    /// The zone alone: no metrics, no forwarding.
    pub fn new(zone: ZoneReader) -> Self {
        Self {
            zone,
            metrics: None,
            forward: ForwardSlot::default(),
        }
    }
}

/// Serves DNS on `bound` from the snapshots `zone` publishes until `shutdown` completes; then
/// stops accepting, lets TCP connections finish the query in flight, and returns.
///
/// Must run inside a Tokio runtime (UDP workers and TCP connections are tasks on it).
pub async fn serve(
    bound: BoundSockets,
    config: ServerConfig,
    zone: ZoneReader,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(bound, config, Services::new(zone), shutdown).await
}

/// [`serve`] with metrics and forwarding.
pub async fn serve_with(
    bound: BoundSockets,
    config: ServerConfig,
    services: Services,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let forwards = Arc::new(tokio::sync::Semaphore::new(config.max_forwards_in_flight));
    let mut tasks = JoinSet::new();
    for (worker, socket) in bound.udp.into_iter().enumerate() {
        let socket = Arc::new(tokio::net::UdpSocket::from_std(socket)?);
        tasks.spawn(udp::run(
            socket,
            worker as u32,
            config.query,
            config.rate_limit,
            services.clone(),
            Arc::clone(&forwards),
            stop_rx.clone(),
        ));
    }
    let listener = tokio::net::TcpListener::from_std(bound.tcp)?;
    tracing::info!(addr = %bound.local, udp_workers = tasks.len(), "serving DNS");
    tasks.spawn(tcp::run(listener, config, services, stop_rx));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined {
            tracing::error!(%error, "server task failed");
        }
    }
    Ok(())
}

/// Counts one answered query: its zone (from the question name), type, rcode, size, and the
/// time from its receipt to its answer going out.
fn record_query(
    metrics: &Metrics,
    request: &[u8],
    asked: query::Asked,
    rcode: u16,
    response_len: usize,
    took: std::time::Duration,
    transport: Transport,
) {
    let query_metrics = metrics.query();
    let zone = query_metrics.zone_index(asked.qname(request));
    query_metrics.record(zone, transport, asked.qtype, rcode, response_len, took);
}
