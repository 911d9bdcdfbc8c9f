//! Configuration of the forwarder: the typed [`ForwardConfig`], its defaults, and reading
//! upstreams from a `resolv.conf`.
//!
//! This module is responsible for turning what the operator says into checked values; it does no
//! I/O except the one file [`resolv_conf_upstreams`] is asked to read. The defaults follow
//! CoreDNS's `forward` and `cache` plugins wherever they have an equivalent:
//!
//! | field | default | CoreDNS |
//! |---|---|---|
//! | `timeout` | 2 s per attempt | `forward`: 2 s read timeout per exchange |
//! | `max_attempts` | 2 | `forward` retries until its 5 s overall deadline; 2 × 2 s answers before glibc's 5 s client timeout |
//! | `max_fails` / `fail_cooldown` | 2 / 5 s | `max_fails 2`, then health checks every 0.5 s (we use a cool-down instead of probes) |
//! | `policy` | random | `policy random` |
//! | `cache_capacity` | 10,000 entries | `cache`: 9,984 (10,000 rounded to 256 shards) |
//! | `cache_max_bytes` | 32 MiB | none (CoreDNS bounds entries only) |
//! | `max_ttl` | 3600 s | `success … 3600` |
//! | `max_negative_ttl` | 1800 s | `denial … 1800` |
//! | `max_in_flight` | 1000 | `max_concurrent` (unset by default; its docs suggest 1000) |
//! | `udp_payload` | 1232 | `bufsize`-like; DNS Flag Day 2020 |

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors of this crate (configuration only: forwarding itself never fails, it answers SERVFAIL).
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The resolv.conf could not be read.
    #[error("{}: {source}", path.display())]
    ReadResolvConf {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The resolv.conf names no usable `nameserver`.
    #[error("{}: no usable nameserver line", path.display())]
    NoNameservers {
        /// The file.
        path: PathBuf,
    },
    /// A configuration value is out of range.
    #[error("forward config: {0}")]
    InvalidConfig(&'static str),
}

/// `Result` with this crate's error.
pub type Result<T, E = ForwardError> = std::result::Result<T, E>;

/// In which order the upstreams are tried (healthy ones always before those marked down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// A fresh random order per query, spreading load (CoreDNS `policy random`, its default).
    #[default]
    Random,
    /// The configured order (CoreDNS `policy sequential`; glibc's resolv.conf behaviour).
    Sequential,
}

/// How the forwarder talks to its upstreams and caches their answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardConfig {
    /// Upstream resolvers; at least one. Usually from [`resolv_conf_upstreams`].
    pub upstreams: Vec<SocketAddr>,
    /// Time allowed for one attempt (one exchange over UDP, and the same again over TCP when
    /// the UDP answer was truncated). Default 2 s, as CoreDNS's read timeout. Must be > 0.
    pub timeout: Duration,
    /// Attempts per query before answering SERVFAIL, each on the next upstream in order
    /// (wrapping around when there are fewer upstreams). Default 2; at least 1.
    pub max_attempts: usize,
    /// Consecutive failures after which an upstream is marked down (tried only after the
    /// healthy ones) for `fail_cooldown`. Default 2 (CoreDNS `max_fails`); 0 never marks down.
    pub max_fails: u32,
    /// How long an upstream stays marked down. Default 5 s.
    pub fail_cooldown: Duration,
    /// Order of the upstreams. Default [`Policy::Random`].
    pub policy: Policy,
    /// Maximum cache entries; 0 disables the cache. Default 10,000.
    pub cache_capacity: usize,
    /// Maximum bytes held by the cache (messages, offsets and a per-entry overhead estimate),
    /// so 10,000 large answers cannot take 640 MiB. Default 32 MiB.
    pub cache_max_bytes: usize,
    /// Cap of positive TTLs, in the cache and in the answers we send. Default 3600 s.
    pub max_ttl: Duration,
    /// Cap of negative TTLs (RFC 2308 §5). Default 1800 s.
    pub max_negative_ttl: Duration,
    /// Concurrent upstream queries; beyond it a query is answered SERVFAIL at once, so memory
    /// stays bounded under overload or when upstreams hang. Cache hits do not count. Default 1000.
    pub max_in_flight: usize,
    /// UDP payload size advertised to upstreams and in our OPT to EDNS clients. Default 1232
    /// (DNS Flag Day 2020: no IP fragmentation, which is also a cache-poisoning vector); at least 512.
    pub udp_payload: u16,
}

/// CoreDNS's read timeout per upstream exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// CoreDNS `cache`: `success` maximum TTL.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(3600);
/// CoreDNS `cache`: `denial` maximum TTL.
pub const DEFAULT_MAX_NEGATIVE_TTL: Duration = Duration::from_secs(1800);
/// DNS Flag Day 2020 payload size; fits the IPv6 minimum MTU of 1280.
pub const DEFAULT_UDP_PAYLOAD: u16 = 1232;
/// RFC 1035 §4.2.1: every resolver accepts 512 octets over UDP.
pub const MIN_UDP_PAYLOAD: u16 = 512;

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_attempts: 2,
            max_fails: 2,
            fail_cooldown: Duration::from_secs(5),
            policy: Policy::Random,
            cache_capacity: 10_000,
            cache_max_bytes: 32 << 20,
            max_ttl: DEFAULT_MAX_TTL,
            max_negative_ttl: DEFAULT_MAX_NEGATIVE_TTL,
            max_in_flight: 1000,
            udp_payload: DEFAULT_UDP_PAYLOAD,
        }
    }
}

// === impl ForwardConfig ===

impl ForwardConfig {
    /// The defaults with these upstreams.
    pub fn with_upstreams(upstreams: Vec<SocketAddr>) -> Self {
        Self {
            upstreams,
            ..Self::default()
        }
    }

    /// Checks every range; the first violation is the error.
    pub(crate) fn validate(&self) -> Result<()> {
        let err = |what| Err(ForwardError::InvalidConfig(what));
        if self.upstreams.is_empty() {
            return err("at least one upstream is required");
        }
        if self.timeout.is_zero() {
            return err("timeout must be > 0");
        }
        if self.max_attempts == 0 {
            return err("max_attempts must be >= 1");
        }
        if self.max_in_flight == 0 {
            return err("max_in_flight must be >= 1");
        }
        if self.udp_payload < MIN_UDP_PAYLOAD {
            return err("udp_payload must be >= 512");
        }
        Ok(())
    }
}

/// The `nameserver` addresses of a resolv.conf, port 53, in file order.
///
/// Understands IPv4, IPv6 and IPv6 with a zone (`fe80::1%eth0` or `%2`; names are looked up in
/// `/sys/class/net/<name>/ifindex`). `#` and `;` start comments; other keywords (`search`,
/// `options`, …) are ignored, as are addresses that do not parse (glibc skips them too, with a
/// warning here). Unlike glibc, which uses the first three (`MAXNS`), all are returned, as
/// CoreDNS's `forward . /etc/resolv.conf` does.
pub fn resolv_conf_upstreams(path: &Path) -> Result<Vec<SocketAddr>> {
    let text = std::fs::read_to_string(path).map_err(|source| ForwardError::ReadResolvConf {
        path: path.to_owned(),
        source,
    })?;
    let upstreams = parse_resolv_conf(&text, path);
    if upstreams.is_empty() {
        return Err(ForwardError::NoNameservers {
            path: path.to_owned(),
        });
    }
    Ok(upstreams)
}

/// The parsing half of [`resolv_conf_upstreams`]; `path` is only for warnings.
fn parse_resolv_conf(text: &str, path: &Path) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else {
            continue;
        };
        match parse_nameserver(addr) {
            Some(a) => out.push(a),
            None => tracing::warn!(
                file = %path.display(),
                line = n + 1,
                addr,
                "resolv.conf: nameserver ignored (not an address)"
            ),
        }
    }
    out
}

/// One `nameserver` address, with port 53.
fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    let (ip, zone) = s.split_once('%')?;
    let ip = ip.parse::<std::net::Ipv6Addr>().ok()?;
    let scope = match zone.parse::<u32>() {
        Ok(n) => n,
        Err(_) => interface_index(zone)?,
    };
    Some(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, scope)))
}

/// An interface's index by name, without `libc` (and so without `unsafe`): Linux exposes it
/// in sysfs. `None` elsewhere or for unknown names.
fn interface_index(name: &str) -> Option<u32> {
    if name.is_empty() || name.contains(['/', '.']) {
        return None;
    }
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
