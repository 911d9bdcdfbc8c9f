//! The Kubernetes DNS spec as data: record rules, prepared answers and zone snapshots.
//!
//! `podns-zone` turns a [`podns_view::ClusterView`] into a [`ZoneSnapshot`] that answers every
//! question inside the served zones (the cluster domains and the reverse zones) from bytes
//! computed at build time (except `pods insecure` answers, which name any address and are
//! read from the question by [`ZoneSnapshot::lookup`]). It knows nothing of sockets, async
//! runtimes or Kubernetes objects. [`ZoneConfig`] carries the CoreDNS `kubernetes` options
//! that shape the records.
//!
//! ```text
//! ServiceView / namespaces / pods ──builder.rs──▶ fragments ──records.rs──▶ RRsets (transient)
//!   upsert / remove / replace_all    (names.rs spells     │ answer.rs: wire answers per name
//!                                     every name form)    ▼
//!                              ZoneBuilder::snapshot() ──▶ ZoneSnapshot (snapshot.rs: sharded,
//!                                                          copy-on-write; untouched shards shared)
//!                                                                 │
//!                                   publish.rs: ZoneWriter ──arc-swap──▶ ZoneReader::load()
//! ```
//!
//! Start from [`ZoneBuilder`] (long-lived, incremental) or [`build`] (one view, once), and
//! [`ZoneSnapshot::lookup`]. Invariants:
//! - a snapshot is immutable; a new cluster state means a new snapshot, published atomically;
//! - a builder's snapshot answers exactly as [`build`] of the same view (property-tested);
//! - every snapshot's SOA serial is larger than the previous one's from the same builder;
//! - names are lower-cased at build time; lookups take lower-cased wire names;
//! - every compression pointer in a prepared answer targets the question name at offset 12.

mod answer;
mod builder;
pub mod names;
mod publish;
mod records;
mod snapshot;

use std::net::IpAddr;

pub use answer::{Negative, PreparedAnswer};
pub use builder::ZoneBuilder;
pub use names::{MAX_LABEL_LEN, MAX_NAME_LEN, Name, NameError, is_subdomain, suffix_offset};
pub use publish::{ZoneGuard, ZoneReader, ZoneWriter, pair};
pub use records::{RData, RRset, RType, SPEC_VERSION, Skipped, Soa};
#[doc(hidden)]
pub use snapshot::Footprint;
pub use snapshot::{Lookup, ZoneSnapshot, build, build_with_serial};

/// Errors of this crate: a configuration that cannot describe a zone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cluster domain or a reverse zone is not a valid domain name (or, for a reverse zone
    /// given as a CIDR, not a valid CIDR).
    #[error("zone {zone:?} is not a valid zone: {reason}")]
    InvalidZone {
        /// The name as configured.
        zone: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// No cluster domain is configured (CoreDNS: "non-reverse zone name must be used").
    #[error("no cluster domain configured")]
    NoClusterDomain,
    /// The TTL is outside CoreDNS's range, 0 to 3600 seconds.
    #[error("ttl must be in range [0, {MAX_TTL}]: {ttl}")]
    InvalidTtl {
        /// The TTL as configured.
        ttl: u32,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The largest positive TTL accepted (CoreDNS `ttl`: "the maximum is capped at 3600 seconds").
pub const MAX_TTL: u32 = 3600;

/// How the zone is built. Each field names the CoreDNS `kubernetes` plugin option it mirrors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The cluster domains (CoreDNS `kubernetes cluster.local example.local …`): every Service
    /// and pod name is served under each, each zone with its own SOA, NS and `dns-version`. The
    /// first is the primary zone, which PTR targets name (as CoreDNS's `primaryZone`). A
    /// trailing dot is accepted and ignored. Default `["cluster.local"]`.
    pub cluster_domains: Vec<String>,
    /// Reverse zones answered authoritatively, as names (`10.in-addr.arpa`) or CIDRs
    /// (`10.0.0.0/8`, `fd00::/8`; CoreDNS's reverse-zone server keys). A CIDR that does not end
    /// on a label boundary (octet for IPv4, nibble for IPv6) becomes the aligned zones it
    /// covers (`10.0.0.0/17` → `0.0.10.in-addr.arpa` … `127.0.10.in-addr.arpa`, as CoreDNS
    /// splits IPv4 CIDRs). PTRs exist only for addresses inside one of them; a name in none of
    /// them is not served. Default `in-addr.arpa`, `ip6.arpa`, as kubeadm's Corefile has them.
    pub reverse_zones: Vec<String>,
    /// TTL of every positive record (CoreDNS `ttl`, 0–3600). Default 30 s (kubeadm's `ttl
    /// 30`; CoreDNS's own default is 5 s).
    pub ttl: u32,
    /// SOA MINIMUM and the SOA's TTL in negative answers (RFC 2308 §4, §5). Default 30 s.
    pub negative_ttl: u32,
    /// Addresses of `ns.dns.<zone>` (the NS target); may be empty.
    pub nameservers: Vec<IpAddr>,
    /// Pod records `a-b-c-d.<ns>.pod.<zone>` (CoreDNS `pods`). Default [`PodMode::Disabled`].
    pub pods: PodMode,
    /// CoreDNS `endpoint_pod_names`: an endpoint without a hostname is named by its pod
    /// (`targetRef.name`, when a DNS-1123 label) instead of its dashed address. Default off.
    pub endpoint_pod_names: bool,
    /// CoreDNS `noendpoints`: no record comes from endpoints, so headless Services and
    /// endpoint names are NXDOMAIN; ClusterIP Services keep their A/AAAA and SRV. Default off.
    pub no_endpoints: bool,
    /// CoreDNS `fallthrough ZONES`: NXDOMAIN answers in served zones at or below one of these
    /// names are marked ([`Negative::falls_through`]) so that a server with a forwarder asks
    /// its upstreams instead; `.` marks every zone. Default `in-addr.arpa`, `ip6.arpa`
    /// (kubeadm's Corefile: reverse names of addresses outside the cluster go upstream).
    pub fallthrough: Vec<String>,
}

/// Which pod records exist (CoreDNS `pods disabled|insecure|verified`). Spec 1.1.0 removed pod
/// records; kubeadm's Corefile sets `insecure` for kube-dns compatibility.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodMode {
    /// No pod records: every name under `pod.<zone>` is NXDOMAIN (CoreDNS `disabled`, its
    /// default).
    #[default]
    Disabled,
    /// Any well-formed `<dashed-ip>.<ns>.pod.<zone>` in an existing namespace answers the
    /// address written in its first label, without checking that such a pod exists (CoreDNS
    /// `insecure`).
    Insecure,
    /// Only the addresses of existing pods in that namespace
    /// ([`podns_view::ClusterView::pods`]) answer (CoreDNS `verified`).
    Verified,
}

// === impl ZoneConfig ===

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            cluster_domains: vec!["cluster.local".to_owned()],
            reverse_zones: vec!["in-addr.arpa".to_owned(), "ip6.arpa".to_owned()],
            ttl: 30,
            negative_ttl: 30,
            nameservers: Vec::new(),
            pods: PodMode::Disabled,
            endpoint_pod_names: false,
            no_endpoints: false,
            fallthrough: vec!["in-addr.arpa".to_owned(), "ip6.arpa".to_owned()],
        }
    }
}

impl ZoneConfig {
    /// Checks that every zone is a valid, non-root domain name or CIDR and that the TTL is in
    /// range (call once at start-up; [`build`] skips invalid zones and reports them in
    /// [`ZoneSnapshot::skipped`]).
    pub fn validate(&self) -> Result<()> {
        if self.cluster_domains.is_empty() {
            return Err(Error::NoClusterDomain);
        }
        if self.ttl > MAX_TTL {
            return Err(Error::InvalidTtl { ttl: self.ttl });
        }
        for zone in &self.cluster_domains {
            check_zone(zone, Name::from_dotted(zone))?;
        }
        for zone in &self.reverse_zones {
            let apexes = names::reverse_zones(zone).map_err(|reason| Error::InvalidZone {
                zone: zone.clone(),
                reason,
            })?;
            for name in apexes {
                check_zone(zone, Ok(name))?;
            }
        }
        for zone in &self.fallthrough {
            // `.` (the root) is allowed here: it makes every zone fall through.
            Name::from_dotted(zone).map_err(|reason| Error::InvalidZone {
                zone: zone.clone(),
                reason,
            })?;
        }
        Ok(())
    }
}

/// A zone apex must be a non-root name with room for `hostmaster.<zone>` / `dns-version.<zone>`.
fn check_zone(zone: &str, name: Result<Name, NameError>) -> Result<()> {
    let invalid = |reason| Error::InvalidZone {
        zone: zone.to_owned(),
        reason,
    };
    let name = name.map_err(invalid)?;
    if name.is_root() {
        return Err(invalid(NameError::EmptyLabel));
    }
    names::dns_version(&name).map_err(invalid)?;
    Ok(())
}
