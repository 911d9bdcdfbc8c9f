//! Targets: what a caller asks discovery to find.
//!
//! This module owns [`Target`] and its parsing. A target is a name, an optional port and the
//! kind of lookup ([`LookupKind`]). It is responsible for telling an SRV name from a host name
//! and for validating the name; the search list and the lookups belong to
//! [`resolve`](crate::resolve).
//!
//! | written                                               | lookup | port                     |
//! |-------------------------------------------------------|--------|--------------------------|
//! | `redis-headless:6379`                                 | A+AAAA | 6379                     |
//! | `redis-headless.default.svc.cluster.local:6379`       | A+AAAA | 6379                     |
//! | `_redis._tcp.redis-headless.default.svc.cluster.local`| SRV    | from each record         |
//! | `redis-headless` (bare)                               | A+AAAA | 0 (addresses only)       |
//! | `10.0.0.5:80`, `[fd00::5]:80`                          | none   | literal, no DNS          |
//!
//! [`Target::with_kind`] overrides the kind: `redis-headless:6379` with [`LookupKind::Srv`] asks
//! SRV at the service name (Kubernetes DNS answers it with every port of every endpoint) and keeps
//! the records for port 6379, which is how to learn pod hostnames and ordinals from a plain name.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::{Error, Result};

/// The record types a lookup asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LookupKind {
    /// A and AAAA together (dual-stack); the default for host names.
    #[default]
    Ip,
    /// A only.
    A,
    /// AAAA only.
    Aaaa,
    /// SRV, then the targets' addresses (from the additional section, else A+AAAA lookups).
    Srv,
}

/// What to discover: a name, an optional port and a [`LookupKind`].
///
/// ```
/// use podns_client::{LookupKind, Target};
/// let t: Target = "redis-headless:6379".parse()?;
/// assert_eq!((t.name(), t.port(), t.kind()), ("redis-headless", Some(6379), LookupKind::Ip));
/// let t = Target::parse("_redis._tcp.redis-headless.default.svc.cluster.local")?;
/// assert_eq!(t.kind(), LookupKind::Srv);
/// # Ok::<(), podns_client::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The DNS name (relative names go through the search list), or an IP literal.
    name: String,
    /// The port to connect to; for SRV lookups a filter on the records' port.
    port: Option<u16>,
    /// The record types to ask.
    kind: LookupKind,
}

// === impl Target ===

impl Target {
    /// Parses `host`, `host:port`, `[v6]:port`, an IP literal or an SRV name (see the module
    /// table).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidTarget {
            target: s.to_owned(),
            reason,
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        // IP literals: `[v6]:port`, `v4:port`, bare v4 or v6.
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Self::literal(addr.ip(), Some(addr.port())));
        }
        if let Ok(ip) = s
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Self::literal(ip, None));
        }
        let (name, port) = match s.rsplit_once(':') {
            Some((name, port)) => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| bad("port is not a number 0-65535"))?;
                (name, Some(port))
            }
            None => (s, None),
        };
        validate_name(name).map_err(bad)?;
        let kind = if name.starts_with('_') {
            LookupKind::Srv
        } else {
            LookupKind::Ip
        };
        Ok(Self {
            name: name.to_owned(),
            port,
            kind,
        })
    }

    /// A host name and port, looked up as A+AAAA.
    pub fn host(name: &str, port: u16) -> Result<Self> {
        validate_name(name).map_err(|reason| Error::InvalidTarget {
            target: name.to_owned(),
            reason,
        })?;
        Ok(Self {
            name: name.to_owned(),
            port: Some(port),
            kind: LookupKind::Ip,
        })
    }

    /// An SRV name (`_redis._tcp.redis-headless.default.svc.cluster.local`, or a service name to
    /// ask SRV at directly).
    pub fn srv(name: &str) -> Result<Self> {
        Ok(Self::parse(name)?.with_kind(LookupKind::Srv))
    }

    /// Returns the target with another lookup kind (the `--type` of `podns resolve`).
    #[must_use]
    pub fn with_kind(mut self, kind: LookupKind) -> Self {
        if !self.is_literal() {
            self.kind = kind;
        }
        self
    }

    /// Returns the target with a port (for SRV: keep only records with this port).
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The name as written (without the port).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port, if one was given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The lookup kind.
    pub fn kind(&self) -> LookupKind {
        self.kind
    }

    /// The IP address, when the target is a literal (no DNS needed).
    pub fn literal_ip(&self) -> Option<IpAddr> {
        self.name.parse().ok()
    }

    fn is_literal(&self) -> bool {
        self.literal_ip().is_some()
    }

    fn literal(ip: IpAddr, port: Option<u16>) -> Self {
        Self {
            name: ip.to_string(),
            port,
            kind: LookupKind::Ip,
        }
    }
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.port, self.literal_ip()) {
            (Some(port), Some(IpAddr::V6(ip))) => write!(f, "[{ip}]:{port}"),
            (Some(port), _) => write!(f, "{}:{port}", self.name),
            (None, _) => f.write_str(&self.name),
        }
    }
}

/// Checks a DNS name: labels of 1–63 letters, digits, `-` or `_`, at most 253 characters, an
/// optional trailing dot.
fn validate_name(name: &str) -> Result<(), &'static str> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("empty name");
    }
    if trimmed.len() > 253 {
        return Err("name longer than 253 characters");
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("a label holds a character other than a-z, 0-9, '-', '_'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        let t = Target::parse("redis-headless:6379").unwrap();
        assert_eq!(t.name(), "redis-headless");
        assert_eq!(t.port(), Some(6379));
        assert_eq!(t.kind(), LookupKind::Ip);
        let t = Target::parse("redis-headless.default.svc.cluster.local:6379").unwrap();
        assert_eq!(t.name(), "redis-headless.default.svc.cluster.local");
        assert_eq!(
            t.to_string(),
            "redis-headless.default.svc.cluster.local:6379"
        );
        let t = Target::parse("web.default.svc.cluster.local.:80").unwrap();
        assert_eq!(t.name(), "web.default.svc.cluster.local.");
    }

    #[test]
    fn srv_names() {
        let t = Target::parse("_redis._tcp.redis-headless.default.svc.cluster.local").unwrap();
        assert_eq!(t.kind(), LookupKind::Srv);
        assert_eq!(t.port(), None);
        let t = Target::srv("redis-headless").unwrap();
        assert_eq!(t.kind(), LookupKind::Srv);
        let t = Target::parse("redis-headless:6379")
            .unwrap()
            .with_kind(LookupKind::Srv);
        assert_eq!((t.kind(), t.port()), (LookupKind::Srv, Some(6379)));
    }

    #[test]
    fn bare_names_and_literals() {
        let t = Target::parse("redis-headless").unwrap();
        assert_eq!((t.port(), t.kind()), (None, LookupKind::Ip));
        let t = Target::parse("10.0.0.5:80").unwrap();
        assert_eq!(t.literal_ip(), Some("10.0.0.5".parse().unwrap()));
        assert_eq!(t.port(), Some(80));
        let t = Target::parse("[fd00::5]:80").unwrap();
        assert_eq!(t.to_string(), "[fd00::5]:80");
        let t = Target::parse("fd00::5").unwrap();
        assert_eq!((t.port(), t.kind()), (None, LookupKind::Ip));
        assert_eq!(t.with_kind(LookupKind::Srv).kind(), LookupKind::Ip);
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "   ",
            "redis:",
            "redis:99999",
            "redis:http",
            "re dis:80",
            "a..b:80",
            ".:80",
            "café:80",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let long = format!("{}.svc", "a".repeat(64));
        assert!(Target::parse(&long).is_err());
        let err = Target::parse("redis:http").unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("redis:http"));
    }
}
