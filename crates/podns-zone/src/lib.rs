//! The Kubernetes DNS spec as data: record rules, prepared answers and zone snapshots.
//!
//! `podns-zone` turns a [`podns_view::ClusterView`] into a [`ZoneSnapshot`] that answers every
//! question inside the served zones (the cluster domain and the reverse zones) from bytes
//! computed at build time. It knows nothing of sockets, async runtimes or Kubernetes objects.
//!
//! ```text
//! ClusterView ──records.rs──▶ RRsets ──snapshot.rs + answer.rs──▶ ZoneSnapshot
//!   (names.rs spells every       (name,type) → PreparedAnswer (wire bytes, pointers into the
//!    spec name form)              question); existing names → NXDOMAIN vs NODATA; SOA per zone
//!                                                  │
//!                                   publish.rs: ZoneWriter ──arc-swap──▶ ZoneReader::load()
//! ```
//!
//! Start from [`build`] and [`ZoneSnapshot::lookup`]. Invariants:
//! - a snapshot is immutable; a new cluster state means a new snapshot, published atomically;
//! - names are lower-cased at build time; lookups take lower-cased wire names;
//! - every compression pointer in a prepared answer targets the question name at offset 12.

mod answer;
pub mod names;
mod publish;
mod records;
mod snapshot;

use std::net::IpAddr;

pub use answer::{Negative, PreparedAnswer};
pub use names::{MAX_LABEL_LEN, MAX_NAME_LEN, Name, NameError, is_subdomain, suffix_offset};
pub use publish::{ZoneGuard, ZoneReader, ZoneWriter, pair};
pub use records::{RData, RRset, RType, SPEC_VERSION, Skipped, Soa};
pub use snapshot::{Lookup, ZoneSnapshot, build, build_with_serial};

/// Errors of this crate: a configuration that cannot describe a zone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cluster domain or a reverse zone is not a valid domain name.
    #[error("zone {zone:?} is not a valid domain name: {reason}")]
    InvalidZone {
        /// The name as configured.
        zone: String,
        /// What is wrong with it.
        reason: NameError,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the zone is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The cluster domain (`cluster.local`); a trailing dot is accepted and ignored.
    pub cluster_domain: String,
    /// Reverse zones answered authoritatively (PTRs for addresses outside them are not
    /// produced). Default `in-addr.arpa`, `ip6.arpa`, as kubeadm's Corefile has them.
    pub reverse_zones: Vec<String>,
    /// TTL of every positive record. Default 30 s (kubeadm's `ttl 30`; CoreDNS's own default
    /// is 5 s).
    pub ttl: u32,
    /// SOA MINIMUM and the SOA's TTL in negative answers (RFC 2308 §4, §5). Default 30 s.
    pub negative_ttl: u32,
    /// Addresses of `ns.dns.<zone>` (the NS target); may be empty.
    pub nameservers: Vec<IpAddr>,
}

// === impl ZoneConfig ===

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".to_owned(),
            reverse_zones: vec!["in-addr.arpa".to_owned(), "ip6.arpa".to_owned()],
            ttl: 30,
            negative_ttl: 30,
            nameservers: Vec::new(),
        }
    }
}

impl ZoneConfig {
    /// Checks that every zone name is a valid, non-root domain name (call once at start-up;
    /// [`build`] skips invalid zones and reports them in [`ZoneSnapshot::skipped`]).
    pub fn validate(&self) -> Result<()> {
        for zone in std::iter::once(&self.cluster_domain).chain(&self.reverse_zones) {
            match Name::from_dotted(zone) {
                Ok(name) if name.is_root() => {
                    return Err(Error::InvalidZone {
                        zone: zone.clone(),
                        reason: NameError::EmptyLabel,
                    });
                }
                Ok(name) => {
                    // The longest name the zone needs: `hostmaster.<zone>` / `dns-version.<zone>`.
                    if let Err(reason) = names::dns_version(&name) {
                        return Err(Error::InvalidZone {
                            zone: zone.clone(),
                            reason,
                        });
                    }
                }
                Err(reason) => {
                    return Err(Error::InvalidZone {
                        zone: zone.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}
