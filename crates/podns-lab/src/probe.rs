//! Probes run inside the lab namespace: is a pod's port open, does DNS say what it should.
//!
//! The lab's addresses are reachable only from the lab's namespaces, and entering one needs
//! `setns(2)` (unsafe, or a new dependency). So `lab` runs the probes as a short-lived
//! `ip netns exec podns-<lab> podns lab probe ARGS…`; this module is both ends of that
//! contract: [`Probe::to_args`] writes the arguments, [`Probe::from_args`] reads them back and
//! [`Probe::run`] answers with the exit status.

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// One check, answered yes or no.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection to the address is accepted.
    Tcp(SocketAddr),
    /// The DNS server at `server` answers `name` A with (`present`) or without `ip`.
    Dns {
        /// The DNS server.
        server: SocketAddr,
        /// The absolute name asked (`A`, `IN`).
        name: String,
        /// The address looked for.
        ip: Ipv4Addr,
        /// Whether it should be in the answer (`true`) or absent from it.
        present: bool,
    },
}

/// How long one probe may take: each is retried by the caller until its own deadline.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

impl Probe {
    /// The arguments after `podns lab probe`.
    pub fn to_args(&self) -> Vec<String> {
        match self {
            Self::Tcp(addr) => vec!["tcp".to_owned(), addr.to_string()],
            Self::Dns {
                server,
                name,
                ip,
                present,
            } => vec![
                "dns".to_owned(),
                server.to_string(),
                name.clone(),
                if *present { "has" } else { "lacks" }.to_owned(),
                ip.to_string(),
            ],
        }
    }

    /// Reads the arguments [`Probe::to_args`] wrote.
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        let parse = |s: &String| s.parse().map_err(|e| format!("{s}: {e}"));
        match args {
            [kind, addr] if kind == "tcp" => Ok(Self::Tcp(parse(addr)?)),
            [kind, server, name, how, ip] if kind == "dns" => Ok(Self::Dns {
                server: server.parse().map_err(|e| format!("{server}: {e}"))?,
                name: name.clone(),
                ip: ip.parse().map_err(|e| format!("{ip}: {e}"))?,
                present: match how.as_str() {
                    "has" => true,
                    "lacks" => false,
                    other => return Err(format!("expected has or lacks, got {other}")),
                },
            }),
            _ => Err(format!(
                "unknown probe {args:?} (expected `tcp ADDR` or `dns SERVER NAME has|lacks IP`)"
            )),
        }
    }

    /// Whether the check holds now.
    pub fn run(&self) -> bool {
        match self {
            Self::Tcp(addr) => TcpStream::connect_timeout(addr, PROBE_TIMEOUT).is_ok(),
            Self::Dns {
                server,
                name,
                ip,
                present,
            } => query_a(*server, name).is_some_and(|ips| ips.contains(ip) == *present),
        }
    }
}

/// The A records for `name`, or `None` when the server does not answer in time. NXDOMAIN and
/// NODATA are an empty list.
fn query_a(server: SocketAddr, name: &str) -> Option<Vec<Ipv4Addr>> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    socket.connect(server).ok()?;
    let id = (std::process::id() & 0xffff) as u16;
    let mut query = Vec::with_capacity(64);
    query.extend_from_slice(&id.to_be_bytes());
    // Flags 0 (a standard query, no recursion), QDCOUNT 1, no other sections.
    query.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        query.push(u8::try_from(label.len()).ok()?);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.send(&query).ok()?;
    let mut buf = [0u8; 1500];
    let n = socket.recv(&mut buf).ok()?;
    parse_a(&buf[..n], id)
}

/// The A records of a response, skipping (compressed) names without decoding them.
fn parse_a(msg: &[u8], id: u16) -> Option<Vec<Ipv4Addr>> {
    if msg.len() < 12 || u16::from_be_bytes([msg[0], msg[1]]) != id {
        return None;
    }
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(msg, at)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..an {
        at = skip_name(msg, at)?;
        let rr = msg.get(at..at + 10)?;
        let (rtype, len) = (
            u16::from_be_bytes([rr[0], rr[1]]),
            usize::from(u16::from_be_bytes([rr[8], rr[9]])),
        );
        let data = msg.get(at + 10..at + 10 + len)?;
        if rtype == 1 && len == 4 {
            ips.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + len;
    }
    Some(ips)
}

fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        for probe in [
            Probe::Tcp("10.244.0.5:6379".parse().unwrap()),
            Probe::Dns {
                server: "10.244.0.1:53".parse().unwrap(),
                name: "redis-0.redis-headless.default.svc.cluster.local".to_owned(),
                ip: "10.244.0.5".parse().unwrap(),
                present: false,
            },
        ] {
            assert_eq!(Probe::from_args(&probe.to_args()), Ok(probe));
        }
    }

    #[test]
    fn parses_compressed_answers() {
        // id 7, 1 question (a.b A IN), 2 answers pointing at it: 10.0.0.1 and a CNAME-ish TXT.
        let mut msg = vec![0, 7, 0x84, 0, 0, 1, 0, 2, 0, 0, 0, 0];
        msg.extend_from_slice(&[1, b'a', 1, b'b', 0, 0, 1, 0, 1]);
        msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 1]);
        msg.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 30, 0, 2, 1, b'x']);
        assert_eq!(parse_a(&msg, 7), Some(vec![Ipv4Addr::new(10, 0, 0, 1)]));
        assert_eq!(parse_a(&msg, 8), None);
    }
}
