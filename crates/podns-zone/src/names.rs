//! Domain names in wire form, and each name form of the Kubernetes DNS spec as a function.
//!
//! This module owns [`Name`], the one name representation of the zone: uncompressed wire form
//! (length-prefixed labels ending in the root label), lower-cased at construction so that
//! comparisons and hash lookups are plain byte comparisons (RFC 4343: DNS names compare
//! case-insensitively, ASCII only). It also owns the spelling of every name the spec defines;
//! which records those names carry is `records.rs`'s business.
//!
//! | name form | spec (v1.1.0) |
//! |---|---|
//! | `<service>.<ns>.svc.<zone>` | §2.3.1, §2.4.1 |
//! | `_<port>._<proto>.<service>.<ns>.svc.<zone>` | §2.3.2, §2.4.2 |
//! | `<hostname>.<service>.<ns>.svc.<zone>` | §2.4.1 |
//! | `<a>.<b>.<c>.<d>.in-addr.arpa`, nibbles `.ip6.arpa` | §2.3.3, §2.4.3 (RFC 1035 §3.5, RFC 3596 §2.5) |
//! | `dns-version.<zone>` | §2.2 |
//! | `<a>-<b>-<c>-<d>.<ns>.pod.<zone>` | removed in 1.1.0; CoreDNS `pods insecure\|verified` |
//! | reverse zones from CIDRs (`10.0.0.0/8` → `10.in-addr.arpa`) | CoreDNS reverse server keys |

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// RFC 1035 §2.3.4: labels are 63 octets or less.
pub const MAX_LABEL_LEN: usize = 63;
/// RFC 1035 §2.3.4: names are 255 octets or less, in wire form (length octets included).
pub const MAX_NAME_LEN: usize = 255;

/// Why a name could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A label was empty (two dots in a row, or a leading dot).
    #[error("empty label")]
    EmptyLabel,
    /// A label was longer than 63 octets (RFC 1035 §2.3.4).
    #[error("label longer than 63 octets")]
    LabelTooLong,
    /// The name was longer than 255 octets in wire form (RFC 1035 §2.3.4).
    #[error("name longer than 255 octets")]
    NameTooLong,
    /// A reverse zone given as a CIDR (`10.0.0.0/8`) does not parse; says what is wrong.
    #[error("not a valid CIDR: {0}")]
    InvalidCidr(&'static str),
}

/// A domain name in uncompressed, lower-cased wire form, always absolute.
///
/// Shared (`Arc`): building a zone copies each name into several places (RRset owners, RDATA
/// targets, the builder's maps), and a copy is then a reference count, not an allocation
/// (`cargo bench -p podns-zone --bench update`: about a third fewer instructions per update).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<[u8]>);

// === impl Name ===

impl Name {
    /// The root name (a single empty label).
    pub fn root() -> Self {
        Self(Arc::from(&[0u8][..]))
    }

    /// Parses a dotted name (`cluster.local`, with or without the trailing dot; `.` or `""`
    /// is the root). No escapes: Kubernetes names never need them.
    pub fn from_dotted(dotted: &str) -> Result<Self, NameError> {
        let dotted = dotted.strip_suffix('.').unwrap_or(dotted);
        if dotted.is_empty() {
            return Ok(Self::root());
        }
        let labels: Vec<&[u8]> = dotted.split('.').map(str::as_bytes).collect();
        Self::root().prefixed(&labels)
    }

    /// Builds from wire bytes that the caller knows are a valid, uncompressed name (lower-cases).
    pub fn from_wire(wire: &[u8]) -> Result<Self, NameError> {
        let mut labels = Vec::new();
        let mut i = 0;
        loop {
            let len = *wire.get(i).ok_or(NameError::EmptyLabel)? as usize;
            if len == 0 {
                break;
            }
            let label = wire.get(i + 1..i + 1 + len).ok_or(NameError::EmptyLabel)?;
            labels.push(label);
            i += 1 + len;
        }
        Self::root().prefixed(&labels)
    }

    /// `labels` (leftmost first) followed by `self`, lower-cased and checked.
    pub fn prefixed(&self, labels: &[&[u8]]) -> Result<Self, NameError> {
        let mut len = self.0.len();
        for label in labels {
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(NameError::LabelTooLong);
            }
            len += 1 + label.len();
        }
        if len > MAX_NAME_LEN {
            return Err(NameError::NameTooLong);
        }
        // Assembled on the stack, so the name is one allocation of its exact size.
        let mut wire = [0u8; MAX_NAME_LEN];
        let mut at = 0;
        for label in labels {
            wire[at] = label.len() as u8;
            for (to, from) in wire[at + 1..at + 1 + label.len()].iter_mut().zip(*label) {
                *to = from.to_ascii_lowercase();
            }
            at += 1 + label.len();
        }
        wire[at..len].copy_from_slice(&self.0);
        Ok(Self(Arc::from(&wire[..len])))
    }

    /// One label in front of `self`.
    pub fn child(&self, label: &str) -> Result<Self, NameError> {
        self.prefixed(&[label.as_bytes()])
    }

    /// The wire form (uncompressed, lower case).
    pub fn as_wire(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// The name without its leftmost label; `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        if self.is_root() {
            return None;
        }
        let skip = 1 + self.0[0] as usize;
        Some(Self(Arc::from(&self.0[skip..])))
    }

    /// The ancestor that starts at byte `at` of the wire form (`at` must be a label start).
    pub(crate) fn parent_at(&self, at: usize) -> Self {
        Self(Arc::from(&self.0[at..]))
    }

    /// Whether `self` is `zone` or below it (label-wise).
    pub fn is_in(&self, zone: &Self) -> bool {
        is_subdomain(&self.0, &zone.0)
    }

    /// Iterates over the labels, leftmost first (the root label excluded).
    pub fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.0 }
    }
}

/// Whether the wire name `name` equals `zone` or lies below it, comparing whole labels.
/// Both must be uncompressed and in the same case. O(number of labels of `name`).
pub fn is_subdomain(name: &[u8], zone: &[u8]) -> bool {
    suffix_offset(name, zone).is_some()
}

/// Where `zone` starts inside `name` as a label-aligned suffix, if it is one.
pub fn suffix_offset(name: &[u8], zone: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let rest = name.len().checked_sub(i)?;
        if rest == zone.len() {
            return (name[i..] == *zone).then_some(i);
        }
        if rest < zone.len() {
            return None;
        }
        let len = name[i] as usize;
        if len == 0 {
            return None;
        }
        i += 1 + len;
    }
}

impl From<&Self> for Name {
    /// A shared copy (hashbrown's `entry_ref` inserts keys this way).
    fn from(name: &Self) -> Self {
        name.clone()
    }
}

impl std::borrow::Borrow<[u8]> for Name {
    /// Hash maps keyed by [`Name`] can be queried with wire bytes: `Arc<[u8]>` hashes and
    /// compares exactly as `[u8]`.
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Name {
    /// Presentation form with the trailing dot (RFC 1035 §5.1); `.` for the root.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", b as char)?,
                    0x21..=0x7e => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// Labels of a [`Name`], leftmost first.
#[derive(Debug)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.rest.first()? as usize;
        if len == 0 {
            return None;
        }
        let label = &self.rest[1..1 + len];
        self.rest = &self.rest[1 + len..];
        Some(label)
    }
}

// === the spec's name forms ===

/// `svc.<zone>`: parent of every namespace's service names (spec §2.3.1 record format).
pub fn svc_parent(zone: &Name) -> Result<Name, NameError> {
    zone.child("svc")
}

/// `<ns>.svc.<zone>` (spec §2.3.1: "`<ns>` = namespace").
pub fn namespace(ns: &str, zone: &Name) -> Result<Name, NameError> {
    zone.prefixed(&[ns.as_bytes(), b"svc"])
}

/// `<service>.<ns>.svc.<zone>` (spec §2.3.1 for ClusterIP, §2.4.1 for headless, §2.5 for
/// ExternalName).
pub fn service(svc: &str, ns: &str, zone: &Name) -> Result<Name, NameError> {
    zone.prefixed(&[svc.as_bytes(), ns.as_bytes(), b"svc"])
}

/// `_<port>._<proto>.<service>.<ns>.svc.<zone>` (spec §2.3.2, §2.4.2). `proto_label` is
/// [`podns_view::Protocol::srv_label`] (already lower case and with its underscore).
pub fn srv(port_name: &str, proto_label: &str, service: &Name) -> Result<Name, NameError> {
    let port_label = format!("_{port_name}");
    service.prefixed(&[port_label.as_bytes(), proto_label.as_bytes()])
}

/// `<hostname>.<service>.<ns>.svc.<zone>` (spec §2.4.1: "`<hostname>` = this record's
/// hostname"); also used with [`dashed_label`] for endpoints without a hostname.
pub fn endpoint(label: &str, service: &Name) -> Result<Name, NameError> {
    service.child(label)
}

/// The system-assigned label of an endpoint without a hostname. Spec §2.4.2 only asks for "a
/// unique, system-assigned identifier"; CoreDNS (`endpointHostname`) uses the address as the
/// EndpointSlice writes it with `.` or `:` replaced by `-` (`10-244-1-5`, `2001-db8--1`: it
/// does *not* expand IPv6). Slices hold addresses in canonical RFC 5952 form (Go's
/// `net.IP.String`, as kubelet reports pod IPs), which is also what `Ipv6Addr`'s `Display`
/// writes, so SRV targets and `pods verified` names match CoreDNS's.
pub fn dashed_label(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// `<ns>.pod.<zone>`: the parent of a namespace's pod names (CoreDNS `pods insecure|verified`).
pub fn pod_namespace(ns: &str, zone: &Name) -> Result<Name, NameError> {
    zone.prefixed(&[ns.as_bytes(), b"pod"])
}

/// The address a pod label names, as CoreDNS's `findPods` reads it: three dashes and no `--`
/// is an IPv4 address (`10-244-1-5`), anything else is an IPv6 address with `-` for `:`
/// (`fd00--5`, or the expanded `fd00-0-0-0-0-0-0-5`). An IPv4-mapped IPv6 address is an IPv4
/// address (Go's `To4`, which picks CoreDNS's record type). `None` when it is not an address.
/// Allocation-free: the query path calls it for `pods insecure`.
pub fn parse_pod_label(label: &[u8]) -> Option<IpAddr> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN {
        return None;
    }
    let dashes = label.iter().filter(|&&b| b == b'-').count();
    let v4 = dashes == 3 && !label.windows(2).any(|w| w == b"--");
    let separator = if v4 { b'.' } else { b':' };
    let mut buf = [0u8; MAX_LABEL_LEN];
    for (out, &b) in buf.iter_mut().zip(label) {
        *out = if b == b'-' { separator } else { b };
    }
    let text = std::str::from_utf8(&buf[..label.len()]).ok()?;
    if v4 {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    } else {
        let v6 = text.parse::<Ipv6Addr>().ok()?;
        Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
    }
}

/// An RFC 1123 label as Kubernetes validates names: 1–63 of `[a-z0-9-]`, alphanumeric at both
/// ends. Pod names are DNS subdomains and may hold dots; only those that are labels can name
/// an endpoint under `endpoint_pod_names`.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL_LEN
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The apex names of a configured reverse zone: a domain name as given, or a CIDR converted as
/// CoreDNS converts reverse server keys. A prefix on a label boundary (octet for IPv4, nibble
/// for IPv6) is one zone (`10.0.0.0/8` → `10.in-addr.arpa`, `fd00::/8` → `d.f.ip6.arpa`); any
/// other prefix becomes the aligned zones it covers (`10.0.0.0/17` → 128 zones
/// `0.0.10.in-addr.arpa` … `127.0.10.in-addr.arpa`, as CoreDNS's `ClassfulFromCIDR` splits
/// IPv4; IPv6 is split on nibbles the same way, at most 8 zones), so that exactly the addresses
/// of the CIDR are served. Host bits are ignored, as Go's `ParseCIDR` masks them.
pub fn reverse_zones(zone: &str) -> Result<Vec<Name>, NameError> {
    let Some((addr, len)) = zone.split_once('/') else {
        return Name::from_dotted(zone).map(|name| vec![name]);
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| NameError::InvalidCidr("not an IP address before the '/'"))?;
    let len: u32 = len
        .parse()
        .map_err(|_| NameError::InvalidCidr("the prefix length is not a number"))?;
    let (bits, step, value, suffix): (u32, u32, u128, &[u8]) = match ip {
        IpAddr::V4(v4) => (32, 8, u128::from(u32::from(v4)), b"\x07in-addr\x04arpa\x00"),
        IpAddr::V6(v6) => (128, 4, u128::from(v6), b"\x03ip6\x04arpa\x00"),
    };
    if len > bits {
        return Err(NameError::InvalidCidr(
            "the prefix length is longer than the address",
        ));
    }
    let keep = |v: u128, n: u32| {
        if n == 0 {
            0
        } else {
            v >> (bits - n) << (bits - n)
        }
    };
    let network = keep(value, len);
    let aligned = len.div_ceil(step) * step;
    let mut zones = Vec::new();
    for i in 0..1u128 << (aligned - len) {
        let subnet = if aligned == 0 {
            network
        } else {
            network | i << (bits - aligned)
        };
        let mut wire = Vec::with_capacity(72);
        for k in (0..aligned / step).rev() {
            let digit = (subnet >> (bits - step * (k + 1))) & ((1 << step) - 1);
            let text = if step == 8 {
                digit.to_string()
            } else {
                format!("{digit:x}")
            };
            wire.push(text.len() as u8);
            wire.extend_from_slice(text.as_bytes());
        }
        wire.extend_from_slice(suffix);
        zones.push(Name(wire.into()));
    }
    Ok(zones)
}

/// The reverse name of an address: `<d>.<c>.<b>.<a>.in-addr.arpa` (RFC 1035 §3.5, spec
/// §2.3.3/§2.4.3) or the 32 nibbles under `ip6.arpa`, least significant first (RFC 3596 §2.5,
/// spec 1.1.0 §2.3.3/§2.4.3).
pub fn reverse(ip: IpAddr) -> Name {
    // Assembled on the stack (the longest, IPv6, is 74 octets): one allocation per name.
    let mut wire = [0u8; REVERSE_LEN];
    let len = reverse_into(ip, &mut wire);
    Name(Arc::from(&wire[..len]))
}

/// The longest reverse name (IPv6: 32 nibble labels and `ip6.arpa`).
pub(crate) const REVERSE_LEN: usize = 74;

/// [`reverse`] written into `wire`, without allocating; its length.
pub(crate) fn reverse_into(ip: IpAddr, wire: &mut [u8; REVERSE_LEN]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Byte by byte: the builder writes one per PTR of every update, and a `copy_from_slice`
    // of a few bytes is a call to `memcpy`.
    let mut at = 0;
    match ip {
        IpAddr::V4(v4) => {
            for &octet in v4.octets().iter().rev() {
                if octet >= 100 {
                    wire[at] = 3;
                    wire[at + 1] = b'0' + octet / 100;
                    wire[at + 2] = b'0' + octet / 10 % 10;
                    wire[at + 3] = b'0' + octet % 10;
                    at += 4;
                } else if octet >= 10 {
                    wire[at] = 2;
                    wire[at + 1] = b'0' + octet / 10;
                    wire[at + 2] = b'0' + octet % 10;
                    at += 3;
                } else {
                    wire[at] = 1;
                    wire[at + 1] = b'0' + octet;
                    at += 2;
                }
            }
            let tail = b"\x07in-addr\x04arpa\x00";
            wire[at..at + tail.len()].copy_from_slice(tail);
            at + tail.len()
        }
        IpAddr::V6(v6) => {
            for (k, octet) in v6.octets().iter().rev().enumerate() {
                let w = &mut wire[4 * k..4 * k + 4];
                w[0] = 1;
                w[1] = HEX[(octet & 0xf) as usize];
                w[2] = 1;
                w[3] = HEX[(octet >> 4) as usize];
            }
            at = 64;
            let tail = b"\x03ip6\x04arpa\x00";
            wire[at..at + tail.len()].copy_from_slice(tail);
            at + tail.len()
        }
    }
}

/// `dns-version.<zone>` (spec §2.2: "a TXT record ... containing the semantic version").
pub fn dns_version(zone: &Name) -> Result<Name, NameError> {
    zone.child("dns-version")
}

/// `ns.dns.<zone>`: the nameserver name in NS and SOA MNAME, as CoreDNS names it.
pub fn nameserver(zone: &Name) -> Result<Name, NameError> {
    zone.prefixed(&[b"ns", b"dns"])
}

/// `hostmaster.<zone>`: the SOA RNAME, as CoreDNS writes it.
pub fn hostmaster(zone: &Name) -> Result<Name, NameError> {
    zone.child("hostmaster")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_round_trip_and_lower_case() {
        let n = Name::from_dotted("Web.Default.svc.CLUSTER.local.").unwrap();
        assert_eq!(n.to_string(), "web.default.svc.cluster.local.");
        assert_eq!(
            n,
            Name::from_dotted("web.default.svc.cluster.local").unwrap()
        );
        assert_eq!(Name::from_dotted(".").unwrap(), Name::root());
        assert_eq!(Name::from_dotted("a..b"), Err(NameError::EmptyLabel));
    }

    #[test]
    fn limits() {
        let l63 = "a".repeat(63);
        assert!(Name::from_dotted(&l63).is_ok());
        assert_eq!(
            Name::from_dotted(&"a".repeat(64)),
            Err(NameError::LabelTooLong)
        );
        // 4 labels of 63 = 4*64 + 1 = 257 > 255.
        let long = [l63.as_str(); 4].join(".");
        assert_eq!(Name::from_dotted(&long), Err(NameError::NameTooLong));
        // 3*64 + 62 + 1 = 255: exactly the limit.
        let max = format!("{l63}.{l63}.{l63}.{}", "a".repeat(61));
        assert_eq!(Name::from_dotted(&max).unwrap().as_wire().len(), 255);
    }

    #[test]
    fn spec_name_forms() {
        let zone = Name::from_dotted("cluster.local").unwrap();
        let svc = service("web", "default", &zone).unwrap();
        assert_eq!(svc.to_string(), "web.default.svc.cluster.local.");
        assert_eq!(
            srv("http", "_tcp", &svc).unwrap().to_string(),
            "_http._tcp.web.default.svc.cluster.local."
        );
        assert_eq!(
            endpoint("web-0", &svc).unwrap().to_string(),
            "web-0.web.default.svc.cluster.local."
        );
        assert_eq!(
            dns_version(&zone).unwrap().to_string(),
            "dns-version.cluster.local."
        );
        assert_eq!(
            nameserver(&zone).unwrap().to_string(),
            "ns.dns.cluster.local."
        );
    }

    #[test]
    fn dashed_labels_like_coredns() {
        assert_eq!(dashed_label("10.244.1.5".parse().unwrap()), "10-244-1-5");
        assert_eq!(dashed_label("2001:db8::1".parse().unwrap()), "2001-db8--1");
    }

    #[test]
    fn pod_labels_like_coredns_find_pods() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(parse_pod_label(b"10-244-1-5"), ip("10.244.1.5"));
        assert_eq!(parse_pod_label(b"fd00--5"), ip("fd00::5"));
        assert_eq!(parse_pod_label(b"fd00-0-0-0-0-0-0-5"), ip("fd00::5"));
        assert_eq!(
            parse_pod_label(b"fd00-0000-0000-0000-0000-0000-0000-0005"),
            ip("fd00::5")
        );
        // Go's To4: an IPv4-mapped address is answered as A.
        assert_eq!(parse_pod_label(b"--ffff-a00-1"), ip("10.0.0.1"));
        for bad in [
            &b"blah"[..],
            b"10-244-1",
            b"10-244-1-256",
            b"010-1-1-1",
            b"1-2-3-4-5",
            b"",
            b"a-b-c-d",
        ] {
            assert_eq!(
                parse_pod_label(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn reverse_zones_from_names_and_cidrs() {
        let zones = |s: &str| {
            reverse_zones(s)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(zones("10.in-addr.arpa"), ["10.in-addr.arpa."]);
        assert_eq!(zones("10.0.0.0/8"), ["10.in-addr.arpa."]);
        assert_eq!(zones("10.1.2.3/16"), ["1.10.in-addr.arpa."]);
        assert_eq!(zones("0.0.0.0/0"), ["in-addr.arpa."]);
        assert_eq!(zones("192.168.1.7/32"), ["7.1.168.192.in-addr.arpa."]);
        let split = zones("10.0.0.0/17");
        assert_eq!(split.len(), 128);
        assert_eq!(split[0], "0.0.10.in-addr.arpa.");
        assert_eq!(split[127], "127.0.10.in-addr.arpa.");
        assert_eq!(
            zones("10.0.0.0/7"),
            ["10.in-addr.arpa.", "11.in-addr.arpa."]
        );
        assert_eq!(zones("fd00::/8"), ["d.f.ip6.arpa."]);
        assert_eq!(zones("fd00::/7"), ["c.f.ip6.arpa.", "d.f.ip6.arpa."]);
        assert_eq!(zones("::/0"), ["ip6.arpa."]);
        assert_eq!(zones("2001:db8::/32"), ["8.b.d.0.1.0.0.2.ip6.arpa."]);
        assert!(matches!(
            reverse_zones("10.0.0.0/33"),
            Err(NameError::InvalidCidr(_))
        ));
        assert!(matches!(
            reverse_zones("10.0.0/8"),
            Err(NameError::InvalidCidr(_))
        ));
        assert!(matches!(
            reverse_zones("10.0.0.0/x"),
            Err(NameError::InvalidCidr(_))
        ));
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse("10.244.1.5".parse().unwrap()).to_string(),
            "5.1.244.10.in-addr.arpa."
        );
        assert_eq!(
            reverse("2001:db8::567:89ab".parse().unwrap()).to_string(),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
    }

    #[test]
    fn subdomain_is_label_aligned() {
        let zone = Name::from_dotted("cluster.local").unwrap();
        let inside = Name::from_dotted("a.cluster.local").unwrap();
        let outside = Name::from_dotted("acluster.local").unwrap();
        assert!(inside.is_in(&zone));
        assert!(zone.is_in(&zone));
        assert!(!outside.is_in(&zone));
        assert_eq!(suffix_offset(inside.as_wire(), zone.as_wire()), Some(2));
        assert!(zone.is_in(&Name::root()));
    }
}
