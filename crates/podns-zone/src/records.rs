//! Record rules: a [`ClusterView`](podns_view::ClusterView) becomes RRsets, as the Kubernetes DNS spec (v1.1.0) says.
//!
//! This module is responsible for *which* records exist: owner names, types and RDATA, and which
//! names exist without records (empty non-terminals that are not implied by a record below them,
//! such as a namespace without Services). It is pure: no wire encoding (`answer.rs`), no lookup
//! structure (`snapshot.rs`). Everything here is deterministic for a given input. The builder's
//! direct path (`builder/direct.rs`) applies the headless rules below without building RRsets;
//! its property tests compare the two.
//!
//! | records | rule |
//! |---|---|
//! | zone apex SOA, NS; `ns.dns.<zone>` A/AAAA, per cluster domain and reverse zone | RFC 1035 §5.2 (a zone has SOA and NS at its apex), values as CoreDNS |
//! | `dns-version.<zone>` TXT `"1.1.0"` | spec §2.2 |
//! | ClusterIP: A/AAAA, SRV per named port (Service port), PTR per VIP | spec §2.3.1–§2.3.3 |
//! | headless: A/AAAA of ready endpoints; per-hostname A/AAAA and PTR; SRV per named port (endpoint port) | spec §2.4.1–§2.4.3 |
//! | headless without ready endpoints: nothing (NXDOMAIN) | spec §2.4.1 |
//! | ExternalName: CNAME | spec §2.5 |
//! | SRV at the bare service name (every named port × endpoint) | CoreDNS behaviour the seeds rely on |
//! | every name above under each cluster domain; PTR targets in the first (primary) one | CoreDNS `kubernetes ZONES…`, `primaryZone` |
//! | `<ns>.pod.<zone>` exists; `verified`: A/AAAA `<dashed-ip>.<ns>.pod.<zone>` per pod address | CoreDNS `pods` (`insecure` answers are computed per query) |
//! | endpoint label: hostname, else pod name (`endpoint_pod_names`), else dashed address | CoreDNS `endpointHostname` |
//! | `no_endpoints`: headless Services and endpoint names get nothing (NXDOMAIN) | CoreDNS `noendpoints` |

use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashTable;
use podns_view::{EndpointView, PodView, Protocol, ServiceKind, ServiceView};

use crate::names::{self, Name, NameError};
use crate::snapshot::FxHasher;
use crate::{PodMode, ZoneConfig};

/// The version the `dns-version` TXT record announces (spec §2.2; 1.1.0 added AAAA and IPv6 PTR).
pub const SPEC_VERSION: &str = "1.1.0";

/// SOA timers (RFC 1035 §3.3.13), as CoreDNS's kubernetes plugin sets them.
const SOA_REFRESH: u32 = 7200;
const SOA_RETRY: u32 = 1800;
const SOA_EXPIRE: u32 = 86400;

/// A resource record type (RFC 1035 §3.2.2, RFC 3596, RFC 2782).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RType(pub u16);

// === impl RType ===

impl RType {
    /// IPv4 address (RFC 1035).
    pub const A: Self = Self(1);
    /// Authoritative name server (RFC 1035).
    pub const NS: Self = Self(2);
    /// Canonical name (RFC 1035).
    pub const CNAME: Self = Self(5);
    /// Start of authority (RFC 1035).
    pub const SOA: Self = Self(6);
    /// Domain name pointer (RFC 1035).
    pub const PTR: Self = Self(12);
    /// Text strings (RFC 1035).
    pub const TXT: Self = Self(16);
    /// IPv6 address (RFC 3596).
    pub const AAAA: Self = Self(28);
    /// Service locator (RFC 2782).
    pub const SRV: Self = Self(33);
    /// EDNS(0) pseudo-RR (RFC 6891).
    pub const OPT: Self = Self(41);
    /// Incremental zone transfer (RFC 1995), a query type only.
    pub const IXFR: Self = Self(251);
    /// Full zone transfer (RFC 5936), a query type only.
    pub const AXFR: Self = Self(252);
    /// Any type (RFC 1035 `*`, RFC 8482), a query type only.
    pub const ANY: Self = Self(255);
}

impl fmt::Display for RType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::A => f.write_str("A"),
            Self::NS => f.write_str("NS"),
            Self::CNAME => f.write_str("CNAME"),
            Self::SOA => f.write_str("SOA"),
            Self::PTR => f.write_str("PTR"),
            Self::TXT => f.write_str("TXT"),
            Self::AAAA => f.write_str("AAAA"),
            Self::SRV => f.write_str("SRV"),
            Self(other) => write!(f, "TYPE{other}"), // RFC 3597 §5
        }
    }
}

/// The RDATA of one record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RData {
    /// A.
    A(Ipv4Addr),
    /// AAAA.
    Aaaa(Ipv6Addr),
    /// NS target.
    Ns(Name),
    /// CNAME target.
    Cname(Name),
    /// PTR target.
    Ptr(Name),
    /// One TXT character-string (≤ 255 bytes).
    Txt(Box<[u8]>),
    /// SRV (RFC 2782).
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: Name,
    },
    /// SOA (RFC 1035 §3.3.13). Boxed: a zone has a handful, and inline it would make every
    /// record 64 bytes instead of 24 (a 1,000-endpoint Service builds ~5,000 records).
    Soa(Box<Soa>),
}

/// SOA RDATA.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Soa {
    /// Primary nameserver.
    pub mname: Name,
    /// Responsible mailbox.
    pub rname: Name,
    /// Serial (RFC 1982 arithmetic).
    pub serial: u32,
    /// Refresh.
    pub refresh: u32,
    /// Retry.
    pub retry: u32,
    /// Expire.
    pub expire: u32,
    /// Minimum: the negative-caching TTL (RFC 2308 §4).
    pub minimum: u32,
}

/// All records of one owner name and type (RFC 2181 §5: an RRset has one TTL and no
/// duplicate records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RRset {
    /// Owner name.
    pub name: Name,
    /// Type of every record.
    pub rtype: RType,
    /// TTL of every record.
    pub ttl: u32,
    /// The records' RDATA, unique, in answer order.
    pub rdata: Vec<RData>,
}

impl fmt::Display for RRset {
    /// Zone-file lines (RFC 1035 §5.1), one per record, without a trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdata) in self.rdata.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{} {} IN {} ", self.name, self.ttl, self.rtype)?;
            match rdata {
                RData::A(ip) => write!(f, "{ip}")?,
                RData::Aaaa(ip) => write!(f, "{ip}")?,
                RData::Ns(n) | RData::Cname(n) | RData::Ptr(n) => write!(f, "{n}")?,
                RData::Txt(t) => write!(f, "\"{}\"", String::from_utf8_lossy(t))?,
                RData::Srv {
                    priority,
                    weight,
                    port,
                    target,
                } => write!(f, "{priority} {weight} {port} {target}")?,
                RData::Soa(s) => write!(
                    f,
                    "{} {} {} {} {} {} {}",
                    s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum
                )?,
            }
        }
        Ok(())
    }
}

/// Something in the view that could not become a record (a name over the RFC 1035 limits or an
/// ExternalName that is not a domain name); the rest of the zone is built without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// What was skipped, e.g. `service default/web` or `endpoint default/web hostname x…`.
    pub what: String,
    /// Why.
    pub reason: NameError,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.reason)
    }
}

/// The served zones, parsed once per build.
#[derive(Clone, Debug)]
pub(crate) struct Zones {
    /// The cluster zone apexes (`cluster.local.`), primary first; never empty.
    pub(crate) clusters: Vec<Name>,
    /// Reverse zone apexes (`in-addr.arpa.`, `ip6.arpa.`).
    pub(crate) reverse: Vec<Name>,
}

/// The output of [`build_records`].
#[derive(Debug, Default)]
pub(crate) struct Records {
    /// RRsets in a deterministic order (apex first, then Services in view order).
    pub(crate) rrsets: Vec<RRset>,
    /// Names that exist without records of their own and without records below them.
    pub(crate) names: Vec<Name>,
    /// `<ns>.pod.<zone>` of every namespace, when pod records are enabled (they exist; under
    /// `pods insecure` their children are answered per query).
    pub(crate) pod_namespaces: Vec<Name>,
    /// Items left out.
    pub(crate) skipped: Vec<Skipped>,
    /// Every owner in `rrsets`, with the indexes of its RRsets in the order they were made.
    pub(crate) owners: NameMap<LocalName>,
}

/// One name of a fragment: its RRsets (indexes into the fragment's records) and flags.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LocalName {
    /// `sets[..len]`: one per type, and `records.rs` makes eight types at most; inline, as
    /// every name of every changed fragment gets one of these.
    sets: [u32; 8],
    len: u8,
    /// `pods insecure`: the name is `<ns>.pod.<zone>` (set by the builder).
    pub(crate) insecure_pods: bool,
}

// === impl LocalName ===

impl LocalName {
    pub(crate) fn holds(&self) -> bool {
        self.len > 0 || self.insecure_pods
    }

    pub(crate) fn sets(&self) -> &[u32] {
        &self.sets[..self.len as usize]
    }

    pub(crate) fn push(&mut self, set: u32) {
        // RRsets are unique per (owner, type) and `RData` has eight types.
        debug_assert!((self.len as usize) < self.sets.len());
        if let Some(slot) = self.sets.get_mut(self.len as usize) {
            *slot = set;
            self.len += 1;
        }
    }
}

/// Builds every RRset of the served zones from the view, in one pass (the order the zone was
/// built in before it was split into fragments; tests use it as the reference).
#[cfg(test)]
pub(crate) fn build_records(
    config: &ZoneConfig,
    zones: &Zones,
    serial: u32,
    cluster: &podns_view::ClusterView,
) -> Records {
    let mut b = Builder::new(config, zones);
    b.apex(config, serial);
    for (i, zone) in zones.clusters.iter().enumerate() {
        // CoreDNS answers PTRs with names in its primary zone only; one PTR per address.
        b.ptrs = i == 0;
        for ns in &cluster.namespaces {
            match names::namespace(ns, zone) {
                Ok(name) => b.out.names.push(name),
                Err(reason) => b.skip(format!("namespace {ns}"), reason),
            }
            if config.pods != PodMode::Disabled {
                // CoreDNS `findPods`: `<ns>.pod.<zone>` is NODATA for an exposed namespace.
                match names::pod_namespace(ns, zone) {
                    Ok(name) => b.out.pod_namespaces.push(name),
                    Err(reason) => b.skip(format!("pod namespace {ns}"), reason),
                }
            }
        }
        for svc in &cluster.services {
            b.service(svc, zone);
        }
        if config.pods == PodMode::Verified {
            b.pods(&cluster.pods, zone);
        }
    }
    b.out
}

// === fragments: what one part of the cluster contributes (builder.rs merges them) ===

/// The zone-level records: SOA and NS at every apex, `ns.dns.<zone>`, `dns-version.<zone>`,
/// `svc.<zone>`. Only these depend on the serial.
pub(crate) fn apex_records(config: &ZoneConfig, zones: &Zones, serial: u32) -> Records {
    let mut b = Builder::new(config, zones);
    b.apex(config, serial);
    b.out
}

/// `<ns>.svc.<zone>` for every namespace (and `<ns>.pod.<zone>` when pod records are on).
pub(crate) fn namespace_records(
    config: &ZoneConfig,
    zones: &Zones,
    namespaces: &[String],
) -> Records {
    let mut b = Builder::new(config, zones);
    for zone in &zones.clusters {
        for ns in namespaces {
            match names::namespace(ns, zone) {
                Ok(name) => b.out.names.push(name),
                Err(reason) => b.skip(format!("namespace {ns}"), reason),
            }
            if config.pods != PodMode::Disabled {
                match names::pod_namespace(ns, zone) {
                    Ok(name) => b.out.pod_namespaces.push(name),
                    Err(reason) => b.skip(format!("pod namespace {ns}"), reason),
                }
            }
        }
    }
    b.out
}

/// One Service's records under every cluster domain (PTRs from the primary one only).
pub(crate) fn service_records(config: &ZoneConfig, zones: &Zones, svc: &ServiceView) -> Records {
    let mut b = Builder::new(config, zones);
    // Sized for a headless Service whose endpoints have one address and a hostname (an
    // address RRset and a PTR per endpoint): no rehash while it is built.
    let per_zone = 2 * svc.endpoints.len() + 2 * svc.ports.len() + 2;
    let sets = per_zone * zones.clusters.len();
    b.out.owners.reserve(2 * svc.endpoints.len() + 3);
    // The large RRsets: the Service name's addresses and SRVs, and one SRV set per port.
    b.seen = HashTable::with_capacity(
        (2 + svc.ports.len()) * svc.endpoints.len() * zones.clusters.len(),
    );
    b.out.rrsets.reserve(sets);
    for (i, zone) in zones.clusters.iter().enumerate() {
        b.ptrs = i == 0;
        b.service(svc, zone);
    }
    b.out
}

/// The records of [`service_records`] whose owners lie outside the Service's own subtree
/// (`<service>.<ns>.svc.<zone>` and below): its PTRs, in the same order. What the builder needs
/// of a Service's previous state when its subtree is private (it finds the old private names
/// in the snapshot instead); cheaper, as the address and SRV RRsets are not built.
pub(crate) fn service_shared_records(
    config: &ZoneConfig,
    zones: &Zones,
    svc: &ServiceView,
) -> Records {
    let mut b = Builder::new(config, zones);
    b.shared_only = true;
    b.out.rrsets.reserve(svc.endpoints.len());
    b.out.owners.reserve(svc.endpoints.len());
    // Only the primary zone has PTRs.
    if let Some(zone) = zones.clusters.first() {
        b.service(svc, zone);
    }
    b.out.names.clear();
    b.out
}

/// `pods verified`: every pod's address records (nothing in other modes).
pub(crate) fn pod_records(config: &ZoneConfig, zones: &Zones, pods: &[PodView]) -> Records {
    let mut b = Builder::new(config, zones);
    if config.pods == PodMode::Verified {
        for zone in &zones.clusters {
            b.pods(pods, zone);
        }
    }
    b.out
}

/// Accumulates RRsets, merging records of the same owner and type and dropping duplicates.
struct Builder<'z> {
    ttl: u32,
    config: &'z ZoneConfig,
    zones: &'z Zones,
    /// Whether the names being built are PTR targets (true in the primary zone only).
    ptrs: bool,
    /// Build only the records outside the Service's subtree (its PTRs): see
    /// [`service_shared_records`].
    shared_only: bool,
    /// Every record added, as (RRset index, record index), filed by the hash of both: the
    /// duplicate check compares RDATA only with records of equal hash. FxHash of names that
    /// differ in two nearby bytes collides often (96 of 5,000 `big-<n>` SRV targets): a check
    /// that scans the RRset on a hash match was quadratic in records per owner.
    seen: HashTable<(u32, u32)>,
    out: Records,
}

// === impl Builder ===

impl<'z> Builder<'z> {
    fn new(config: &'z ZoneConfig, zones: &'z Zones) -> Self {
        Self {
            ttl: config.ttl,
            config,
            zones,
            ptrs: true,
            shared_only: false,
            seen: HashTable::new(),
            out: Records::default(),
        }
    }

    fn skip(&mut self, what: String, reason: NameError) {
        self.out.skipped.push(Skipped { what, reason });
    }

    /// Adds one record; RFC 2181 §5: an RRset holds no duplicate records.
    fn add(&mut self, name: &Name, rtype: RType, ttl: u32, rdata: RData) {
        let set = self.set_for(name, rtype, ttl);
        self.add_to(set, rdata);
    }

    /// The index of the RRset (`name`, `rtype`), created (empty, with `ttl`) if new. Callers
    /// that add many records to one RRset look it up once.
    fn set_for(&mut self, name: &Name, rtype: RType, ttl: u32) -> usize {
        let rrsets = &mut self.out.rrsets;
        let owner = self.out.owners.entry_ref(name).or_default();
        if let Some(&set) = owner
            .sets()
            .iter()
            .find(|&&set| rrsets[set as usize].rtype == rtype)
        {
            return set as usize;
        }
        owner.push(rrsets.len() as u32);
        rrsets.push(RRset {
            name: name.clone(),
            rtype,
            ttl,
            rdata: Vec::new(),
        });
        rrsets.len() - 1
    }

    /// Adds one record to RRset `set` unless it holds it already. Most RRsets hold one record
    /// (an endpoint's address, a PTR): those are checked by comparison and never hashed; an
    /// RRset is filed in [`Builder::seen`] once it reaches [`INDEXED`] records.
    fn add_to(&mut self, set: usize, rdata: RData) {
        let rrsets = &self.out.rrsets;
        let len = rrsets[set].rdata.len();
        if len < INDEXED {
            if rrsets[set].rdata.contains(&rdata) {
                return;
            }
            self.out.rrsets[set].rdata.push(rdata);
            if len + 1 == INDEXED {
                let rrsets = &self.out.rrsets;
                for (i, r) in rrsets[set].rdata.iter().enumerate() {
                    self.seen.insert_unique(
                        record_hash(set, r),
                        (set as u32, i as u32),
                        |&(s, i)| record_hash(s as usize, &rrsets[s as usize].rdata[i as usize]),
                    );
                }
            }
            return;
        }
        let hash = record_hash(set, &rdata);
        let same =
            |&(s, i): &(u32, u32)| s as usize == set && rrsets[set].rdata[i as usize] == rdata;
        if self.seen.find(hash, same).is_some() {
            return;
        }
        let at = (set as u32, len as u32);
        self.seen.insert_unique(hash, at, |&(s, i)| {
            record_hash(s as usize, &rrsets[s as usize].rdata[i as usize])
        });
        self.out.rrsets[set].rdata.push(rdata);
    }

    fn add_address(&mut self, name: &Name, ip: IpAddr) {
        if self.shared_only {
            // Address records of Services live in their subtrees (pods are not built here).
            return;
        }
        match ip {
            IpAddr::V4(v4) => self.add(name, RType::A, self.ttl, RData::A(v4)),
            IpAddr::V6(v6) => self.add(name, RType::AAAA, self.ttl, RData::Aaaa(v6)),
        }
    }

    /// [`Builder::add_address`] with the RRset indexes of `name`'s A and AAAA kept in `sets`
    /// (a headless Service name gets one record per endpoint).
    fn add_address_to(&mut self, name: &Name, ip: IpAddr, sets: &mut [Option<usize>; 2]) {
        if self.shared_only {
            return;
        }
        let (k, rtype, rdata) = match ip {
            IpAddr::V4(v4) => (0, RType::A, RData::A(v4)),
            IpAddr::V6(v6) => (1, RType::AAAA, RData::Aaaa(v6)),
        };
        let set = match sets[k] {
            Some(set) => set,
            None => *sets[k].insert(self.set_for(name, rtype, self.ttl)),
        };
        self.add_to(set, rdata);
    }

    /// PTR for `ip` → `target`, if a served reverse zone covers the address and `target` is in
    /// the primary zone.
    fn add_ptr(&mut self, ip: IpAddr, target: &Name) {
        if !self.ptrs {
            return;
        }
        let owner = names::reverse(ip);
        if self.zones.reverse.iter().any(|z| owner.is_in(z)) {
            self.add(&owner, RType::PTR, self.ttl, RData::Ptr(target.clone()));
        }
    }

    /// SRV records at `owner`, one per `(port, target)`, weight ⌊100 / N⌋ with N the number of
    /// records before duplicates are removed (CoreDNS: `100 / len(services)`, at least 1).
    fn add_srvs(&mut self, owner: &Name, records: &[(u16, Name)]) {
        if records.is_empty() {
            return;
        }
        let weight = (100 / records.len()).max(1) as u16;
        let set = self.set_for(owner, RType::SRV, self.ttl);
        self.out.rrsets[set].rdata.reserve(records.len());
        for (port, target) in records {
            let rdata = RData::Srv {
                priority: 0,
                weight,
                port: *port,
                target: target.clone(),
            };
            self.add_to(set, rdata);
        }
    }

    /// SOA and NS at every apex, the nameserver's addresses, `dns-version`, per cluster zone;
    /// the reverse zones take the primary zone's SOA and NS.
    fn apex(&mut self, config: &ZoneConfig, serial: u32) {
        for (i, cluster) in self.zones.clusters.iter().enumerate() {
            let (Ok(ns), Ok(hostmaster), Ok(version)) = (
                names::nameserver(cluster),
                names::hostmaster(cluster),
                names::dns_version(cluster),
            ) else {
                self.skip(format!("zone apex {cluster}"), NameError::NameTooLong);
                continue;
            };
            let soa = Soa {
                mname: ns.clone(),
                rname: hostmaster,
                serial,
                refresh: SOA_REFRESH,
                retry: SOA_RETRY,
                expire: SOA_EXPIRE,
                minimum: config.negative_ttl,
            };
            let reverse: &[Name] = if i == 0 { &self.zones.reverse } else { &[] };
            for apex in std::iter::once(cluster).chain(reverse) {
                self.add(
                    apex,
                    RType::SOA,
                    self.ttl,
                    RData::Soa(Box::new(soa.clone())),
                );
                self.add(apex, RType::NS, self.ttl, RData::Ns(ns.clone()));
            }
            for ip in &config.nameservers {
                self.add_address(&ns, *ip);
            }
            // The nameserver's name exists even when no address is configured for it.
            self.out.names.push(ns);
            if let Ok(svc) = names::svc_parent(cluster) {
                self.out.names.push(svc);
            }
            // Spec §2.2: "a TXT record containing the semantic version of the schema".
            let txt = RData::Txt(SPEC_VERSION.as_bytes().into());
            self.add(&version, RType::TXT, self.ttl, txt);
        }
    }

    /// `pods verified`: an address record per pod address (CoreDNS `findPods` matches the
    /// label's address against the pods of that namespace; the view has already left out the
    /// pods CoreDNS does not watch or keep).
    fn pods(&mut self, pods: &[PodView], zone: &Name) {
        for pod in pods {
            let Ok(parent) = names::pod_namespace(&pod.namespace, zone) else {
                continue; // reported with the namespace
            };
            for ip in &pod.addresses {
                match names::endpoint(&names::dashed_label(*ip), &parent) {
                    Ok(name) => self.add_address(&name, *ip),
                    Err(reason) => {
                        self.skip(format!("pod {}/{} {ip}", pod.namespace, pod.name), reason)
                    }
                }
            }
        }
    }

    fn service(&mut self, svc: &ServiceView, zone: &Name) {
        let key = &svc.key;
        let name = match names::service(&key.name, &key.namespace, zone) {
            Ok(name) => name,
            Err(reason) => return self.skip(format!("service {key}"), reason),
        };
        match &svc.kind {
            ServiceKind::ClusterIp { cluster_ips } => self.cluster_ip(svc, &name, cluster_ips),
            ServiceKind::Headless => self.headless(svc, &name),
            ServiceKind::ExternalName { external_name } => match Name::from_dotted(external_name) {
                // Spec §2.5.1: "a CNAME record ... `<service>.<ns>.svc.<zone>. <ttl> IN CNAME
                // <extname>.`"; RFC 1034 §3.6.2 gives the owner no other data.
                Ok(_) if self.shared_only => {}
                Ok(target) => self.add(&name, RType::CNAME, self.ttl, RData::Cname(target)),
                Err(reason) => self.skip(
                    format!("service {key} externalName {external_name}"),
                    reason,
                ),
            },
        }
    }

    /// Spec §2.3: ClusterIP Services.
    fn cluster_ip(&mut self, svc: &ServiceView, name: &Name, cluster_ips: &[IpAddr]) {
        // The name exists even without a VIP (NODATA rather than NXDOMAIN).
        self.out.names.push(name.clone());
        for ip in cluster_ips {
            // §2.3.1: "an A record ... `<service>.<ns>.svc.<zone>. <ttl> IN A <cluster-ip>`"
            // (1.1.0: AAAA for IPv6 cluster IPs).
            self.add_address(name, *ip);
            // §2.3.3: "a PTR record ... `<d>.<c>.<b>.<a>.in-addr.arpa. <ttl> IN PTR
            // <service>.<ns>.svc.<zone>.`"
            self.add_ptr(*ip, name);
        }
        if self.shared_only {
            return;
        }
        let mut all = Vec::new();
        for port in &svc.ports {
            // §2.3.2: "For each port in a ClusterIP Service with a name ... an SRV record"
            // `_<port>._<proto>.<service>.<ns>.svc.<zone>. <ttl> IN SRV <weight> <priority>
            // <port-number> <service>.<ns>.svc.<zone>.`; unnamed ports get none.
            let Some(port_name) = &port.name else {
                continue;
            };
            match names::srv(port_name, port.protocol.srv_label(), name) {
                Ok(owner) => self.add_srvs(&owner, &[(port.port, name.clone())]),
                Err(reason) => self.skip(format!("service {} port {port_name}", svc.key), reason),
            }
            all.push((port.port, name.clone()));
        }
        self.add_srvs(name, &all);
    }

    /// Spec §2.4: headless Services.
    fn headless(&mut self, svc: &ServiceView, name: &Name) {
        if self.config.no_endpoints {
            // CoreDNS `noendpoints`: "All endpoint queries and headless service queries will
            // result in an NXDOMAIN".
            return;
        }
        // §2.4.1: only ready endpoints are published ("ready" = EndpointSlice `conditions.ready`,
        // as CoreDNS trusts it). No ready endpoint: no records, so the name is NXDOMAIN.
        let ready: Vec<&EndpointView> = svc
            .endpoints
            .iter()
            .filter(|ep| ep.conditions.ready && !ep.addresses.is_empty())
            .collect();
        // Each endpoint's SRV targets: its hostname name, or one dashed name per address
        // (endpoint `k`'s are `targets[ends[k - 1]..ends[k]]`).
        let mut targets: Vec<Name> = Vec::with_capacity(ready.len());
        let mut ends: Vec<usize> = Vec::with_capacity(ready.len());
        // The Service name's A and AAAA RRsets, once they exist.
        let mut at_name = [None; 2];
        for ep in &ready {
            // §2.4.1: "`<service>.<ns>.svc.<zone>. <ttl> IN A <endpoint-ip>`" for each ready
            // endpoint (AAAA for IPv6).
            for ip in &ep.addresses {
                self.add_address_to(name, *ip, &mut at_name);
            }
            let ep_targets = &mut targets;
            // CoreDNS `endpointHostname`: the hostname, else (`endpoint_pod_names`) the pod's
            // name when it can be a label, else the dashed address.
            let own_label = ep.hostname.as_deref().or_else(|| {
                ep.target_pod
                    .as_deref()
                    .filter(|pod| self.config.endpoint_pod_names && names::is_dns_label(pod))
            });
            match own_label {
                Some(hostname) => match names::endpoint(hostname, name) {
                    Ok(host) => {
                        // §2.4.1: "`<hostname>.<service>.<ns>.svc.<zone>. <ttl> IN A
                        // <endpoint-ip>`" for ready endpoints with a hostname.
                        for ip in &ep.addresses {
                            self.add_address(&host, *ip);
                            // §2.4.3: "`<d>.<c>.<b>.<a>.in-addr.arpa. <ttl> IN PTR
                            // <hostname>.<service>.<ns>.svc.<zone>.`"; a pod-name label is
                            // as stable as a hostname, so it gets the PTR too (CoreDNS gives
                            // every endpoint one).
                            self.add_ptr(*ip, &host);
                        }
                        ep_targets.push(host);
                    }
                    Err(reason) => self.skip(
                        format!("service {} endpoint name {hostname}", svc.key),
                        reason,
                    ),
                },
                None => {
                    // §2.4.2: SRV targets need "a unique, system-assigned identifier" for
                    // endpoints without a hostname; that name must resolve, so it gets A/AAAA.
                    // No PTR: §2.4.3 asks for PTRs of hostname'd endpoints only.
                    for ip in &ep.addresses {
                        match names::endpoint(&names::dashed_label(*ip), name) {
                            Ok(host) => {
                                self.add_address(&host, *ip);
                                ep_targets.push(host);
                            }
                            Err(reason) => {
                                self.skip(format!("service {} endpoint {ip}", svc.key), reason)
                            }
                        }
                    }
                }
            }
            ends.push(targets.len());
        }
        if self.shared_only {
            return;
        }
        let mut all = Vec::new();
        for port in &svc.ports {
            // §2.4.2: an SRV record per named port and ready endpoint. The port is the
            // endpoint's (the EndpointSlice port, i.e. the resolved targetPort), matched by name
            // and protocol, as CoreDNS and kube-dns answer.
            let Some(port_name) = &port.name else {
                continue;
            };
            let mut records = Vec::new();
            for (k, ep) in ready.iter().enumerate() {
                let Some(ep_port) = endpoint_port(ep, port_name, port.protocol) else {
                    continue;
                };
                let start = if k == 0 { 0 } else { ends[k - 1] };
                let ep_targets = &targets[start..ends[k]];
                records.extend(ep_targets.iter().map(|t| (ep_port, t.clone())));
            }
            match names::srv(port_name, port.protocol.srv_label(), name) {
                Ok(owner) => self.add_srvs(&owner, &records),
                Err(reason) => self.skip(format!("service {} port {port_name}", svc.key), reason),
            }
            all.extend(records);
        }
        self.add_srvs(name, &all);
    }
}

/// A map by name that hashes a name once per lookup-or-insert (`entry_ref`), and clones it only
/// when it inserts.
pub(crate) type NameMap<V> = hashbrown::HashMap<Name, V, BuildHasherDefault<FxHasher>>;

/// Records an RRset holds before its duplicate check uses [`Builder::seen`] instead of a scan.
const INDEXED: usize = 8;

const _: () = assert!(size_of::<RData>() <= 24, "RData stays small");

/// The hash [`Builder::seen`] files a record under.
fn record_hash(set: usize, rdata: &RData) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write_usize(set);
    rdata.hash(&mut hasher);
    hasher.finish()
}

/// The endpoint's port number for the Service port `name`/`protocol`.
fn endpoint_port(ep: &EndpointView, name: &str, protocol: Protocol) -> Option<u16> {
    ep.ports
        .iter()
        .find(|p| p.protocol == protocol && p.name.as_deref() == Some(name))
        .map(|p| p.port)
}

#[cfg(test)]
mod tests;
