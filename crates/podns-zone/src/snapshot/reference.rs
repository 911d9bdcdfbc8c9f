//! The reference zone: the one-pass build podns had before the incremental builder, kept for
//! tests only. It builds every RRset of the view at once, then every answer, and is the oracle
//! the equivalence property test (`builder/tests.rs`) compares the builder's snapshots with.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;

use podns_view::ClusterView;

use super::{FxHasher, Said};
use crate::answer::{Negative, PreparedAnswer};
use crate::names::{self, Name, suffix_offset};
use crate::records::{self, RData, RRset, RType, Skipped, Zones};
use crate::{PodMode, ZoneConfig};

/// RFC 8482 §4.1: the RRset an ANY query gets, in order of preference.
const ANY_PREFERENCE: [RType; 8] = [
    RType::CNAME,
    RType::A,
    RType::AAAA,
    RType::SRV,
    RType::PTR,
    RType::TXT,
    RType::SOA,
    RType::NS,
];

/// The reference zone.
#[derive(Debug)]
pub(crate) struct ZoneSnapshot {
    serial: u32,
    /// Served zones, longest apex first so the first match is the closest enclosing zone.
    zones: Box<[ServedZone]>,
    /// Every existing name → its slice of `types`.
    names: HashMap<Name, NameEntry, BuildHasherDefault<FxHasher>>,
    /// (qtype, index into `answers`), grouped by name.
    types: Vec<(u16, u32)>,
    answers: Vec<Vec<u8>>,
    skipped: Vec<Skipped>,
    /// `pods insecure`: the TTL of [`Lookup::PodAddress`] answers; `None` in other modes.
    insecure_pod_ttl: Option<u32>,
}

/// One served zone.
#[derive(Debug)]
struct ServedZone {
    apex: Name,
    negative: Negative,
}

/// The types of one existing name.
#[derive(Clone, Copy, Debug)]
struct NameEntry {
    start: u32,
    len: u16,
    /// Index into `zones` of the zone the name is in (its SOA goes into NODATA answers).
    zone: u16,
    /// The name owns a CNAME: `types` holds just that answer, which every type gets.
    cname: bool,
    /// The name is `<ns>.pod.<zone>` under `pods insecure`: its children are answered per query.
    insecure_pods: bool,
}

/// The reference build of `cluster` with SOA serial `serial`.
pub(crate) fn build_with_serial(
    config: &ZoneConfig,
    cluster: &ClusterView,
    serial: u32,
) -> ZoneSnapshot {
    let mut skipped = Vec::new();
    let mut clusters = Vec::new();
    for zone in &config.cluster_domains {
        match Name::from_dotted(zone) {
            Ok(name) if !name.is_root() => clusters.push(name),
            Ok(_) => {}
            Err(reason) => skipped.push(Skipped {
                what: format!("cluster domain {zone}"),
                reason,
            }),
        }
    }
    if clusters.is_empty() {
        // The reverse zones' SOA names the primary cluster zone; without one nothing is served.
        return ZoneSnapshot::empty(serial, skipped);
    }
    let mut reverse = Vec::new();
    for zone in &config.reverse_zones {
        match names::reverse_zones(zone) {
            Ok(names) => reverse.extend(names.into_iter().filter(|n| !n.is_root())),
            Err(reason) => skipped.push(Skipped {
                what: format!("reverse zone {zone}"),
                reason,
            }),
        }
    }
    let zones = Zones { clusters, reverse };
    let mut records = records::build_records(config, &zones, serial, cluster);
    skipped.append(&mut records.skipped);
    ZoneSnapshot::from_records(config, &zones, records, serial, skipped)
}

// === impl ZoneSnapshot ===

impl ZoneSnapshot {
    fn empty(serial: u32, skipped: Vec<Skipped>) -> Self {
        Self {
            serial,
            zones: Box::new([]),
            names: HashMap::default(),
            types: Vec::new(),
            answers: Vec::new(),
            skipped,
            insecure_pod_ttl: None,
        }
    }

    fn from_records(
        config: &ZoneConfig,
        zones: &Zones,
        records: records::Records,
        serial: u32,
        skipped: Vec<Skipped>,
    ) -> Self {
        let rrsets = records.rrsets;
        let mut apexes: Vec<&Name> = zones.clusters.iter().chain(&zones.reverse).collect();
        apexes.sort_by_key(|a| std::cmp::Reverse(a.as_wire().len()));
        apexes.dedup();

        // (name, type) → RRset, for additional-section lookups.
        let by_key: HashMap<(&Name, RType), &RRset> =
            rrsets.iter().map(|s| ((&s.name, s.rtype), s)).collect();
        // Every existing name → its RRsets (empty for non-terminals), first-seen order.
        let mut by_name: HashMap<Name, Vec<usize>> = HashMap::new();
        let mut order: Vec<Name> = Vec::new();
        for (i, set) in rrsets.iter().enumerate() {
            mark_existing(&set.name, Some(i), &apexes, &mut by_name, &mut order);
        }
        for name in records.names.iter().chain(&records.pod_namespaces) {
            mark_existing(name, None, &apexes, &mut by_name, &mut order);
        }
        let insecure = config.pods == PodMode::Insecure;
        let insecure_parents: std::collections::HashSet<&Name> = if insecure {
            records.pod_namespaces.iter().collect()
        } else {
            Default::default()
        };
        for apex in &apexes {
            mark_existing(apex, None, &apexes, &mut by_name, &mut order);
        }

        let mut names =
            HashMap::with_capacity_and_hasher(order.len(), BuildHasherDefault::default());
        let mut entries = Vec::with_capacity(order.len());
        let mut types = Vec::new();
        let mut answers = Vec::new();
        for name in order {
            let sets = &by_name[&name];
            let start = types.len() as u32;
            let mut cname = false;
            let mut any: Option<(usize, u32)> = None;
            for &i in sets {
                let set = &rrsets[i];
                let additional = additional_for(set, &by_key);
                let index = answers.len() as u32;
                let mut bytes = Vec::new();
                PreparedAnswer::prepare(&mut bytes, &name, set, &additional);
                answers.push(bytes);
                if set.rtype == RType::CNAME {
                    cname = true;
                    types.truncate(start as usize);
                    types.push((set.rtype.0, index));
                    break;
                }
                types.push((set.rtype.0, index));
                let rank = ANY_PREFERENCE
                    .iter()
                    .position(|t| *t == set.rtype)
                    .unwrap_or(usize::MAX);
                if any.is_none_or(|(r, _)| rank < r) {
                    any = Some((rank, index));
                }
            }
            if let (false, Some((_, index))) = (cname, any) {
                types.push((RType::ANY.0, index));
            }
            let len = (types.len() - start as usize) as u16;
            let insecure_pods = insecure_parents.contains(&name);
            entries.push((name, start, len, cname, insecure_pods));
        }

        let fallthrough: Vec<Name> = config
            .fallthrough
            .iter()
            .filter_map(|zone| Name::from_dotted(zone).ok())
            .collect();
        let zones: Box<[ServedZone]> = apexes
            .iter()
            .filter_map(|apex| {
                let soa = by_key.get(&(*apex, RType::SOA))?;
                let falls_through = fallthrough.iter().any(|f| apex.is_in(f));
                Some(ServedZone {
                    apex: (*apex).clone(),
                    // RFC 2308 §5: the SOA's TTL in a negative answer is min(TTL, MINIMUM).
                    negative: Negative::new(soa, config.negative_ttl, falls_through),
                })
            })
            .collect();
        for (name, start, len, cname, insecure_pods) in entries {
            // A name outside every zone with an SOA (an apex whose SOA could not be built) is
            // not served.
            let Some(zone) = zone_of(&zones, name.as_wire()) else {
                continue;
            };
            let entry = NameEntry {
                start,
                len,
                zone: zone as u16,
                cname,
                insecure_pods,
            };
            names.insert(name, entry);
        }
        Self {
            serial,
            zones,
            names,
            types,
            answers,
            skipped,
            insecure_pod_ttl: insecure.then_some(config.ttl),
        }
    }

    /// The answer for `qname` (lower-cased, uncompressed wire form) and `qtype`. One hash probe
    /// when the name exists; otherwise the walk over the served apexes (O(labels × zones)) and,
    /// under `pods insecure` for a first label that is an address, one more probe.
    pub(crate) fn lookup(&self, qname: &[u8], qtype: u16) -> Said {
        let Some(entry) = self.names.get(qname) else {
            let Some(zone) = zone_of(&self.zones, qname) else {
                return Said::NotServed;
            };
            let negative = &self.zones[zone].negative;
            if let Some(ttl) = self.insecure_pod_ttl
                && let Some(ip) = self.insecure_pod(qname)
            {
                return match (qtype, ip) {
                    (t, IpAddr::V4(_)) if t == RType::A.0 || t == RType::ANY.0 => {
                        Said::Pod(ip, ttl)
                    }
                    (t, IpAddr::V6(_)) if t == RType::AAAA.0 || t == RType::ANY.0 => {
                        Said::Pod(ip, ttl)
                    }
                    // The name exists (CoreDNS answers NOERROR) without this type.
                    _ => Said::NoData(negative.clone()),
                };
            }
            // RFC 8020 §2: nothing exists at or below this name.
            return Said::NxDomain(negative.clone());
        };
        let types = &self.types[entry.start as usize..entry.start as usize + entry.len as usize];
        if entry.cname {
            // RFC 1034 §3.6.2: a CNAME owner has no other data; every type gets the CNAME.
            return Said::Answer(self.answers[types[0].1 as usize].clone());
        }
        match types.iter().find(|(t, _)| *t == qtype) {
            Some((_, index)) => Said::Answer(self.answers[*index as usize].clone()),
            None => Said::NoData(self.zones[entry.zone as usize].negative.clone()),
        }
    }

    /// `pods insecure`: the address named by the first label of `qname`, when the rest is an
    /// existing `<ns>.pod.<zone>` (CoreDNS `findPods`: the namespace must be exposed, the label
    /// must parse as an address, no pod is checked).
    fn insecure_pod(&self, qname: &[u8]) -> Option<IpAddr> {
        let len = *qname.first()? as usize;
        let ip = names::parse_pod_label(qname.get(1..1 + len)?)?;
        let parent = self.names.get(qname.get(1 + len..)?)?;
        parent.insecure_pods.then_some(ip)
    }
}

/// The closest served zone of `qname`: `zones` is sorted longest apex first.
fn zone_of(zones: &[ServedZone], qname: &[u8]) -> Option<usize> {
    zones
        .iter()
        .position(|z| suffix_offset(qname, z.apex.as_wire()).is_some())
}

/// Records that `name` exists (with RRset `set`, if any), and so do its ancestors up to the apex
/// of its zone. Names outside every served zone are ignored. Invariant: every name in `by_name`
/// has its ancestors in it too, so the walk stops at the first known ancestor.
fn mark_existing(
    name: &Name,
    set: Option<usize>,
    apexes: &[&Name],
    by_name: &mut HashMap<Name, Vec<usize>>,
    order: &mut Vec<Name>,
) {
    let Some(apex) = apexes.iter().find(|a| name.is_in(a)) else {
        return;
    };
    let known = by_name.contains_key(name);
    let sets = by_name.entry(name.clone()).or_default();
    sets.extend(set);
    if known {
        return;
    }
    order.push(name.clone());
    let mut current = name.clone();
    while current != **apex {
        current = current.parent().expect("below an apex, so not the root");
        if by_name.contains_key(&current) {
            break;
        }
        by_name.insert(current.clone(), Vec::new());
        order.push(current.clone());
    }
}

/// The additional records of an answer: addresses of SRV targets and NS hosts (RFC 2782
/// "Usage rules": additional A records for targets; RFC 1035 §3.3.11 / §6.3.1: glue for NS).
fn additional_for<'a>(set: &RRset, by_key: &HashMap<(&Name, RType), &'a RRset>) -> Vec<&'a RRset> {
    let mut out: Vec<&RRset> = Vec::new();
    let mut seen: Vec<&Name> = Vec::new();
    for rdata in &set.rdata {
        let target = match rdata {
            RData::Srv { target, .. } => target,
            RData::Ns(target) => target,
            _ => continue,
        };
        if seen.contains(&target) {
            continue;
        }
        seen.push(target);
        for rtype in [RType::A, RType::AAAA] {
            if let Some(found) = by_key.get(&(target, rtype)) {
                out.push(found);
            }
        }
    }
    out
}

// === for the equivalence tests ===

impl ZoneSnapshot {
    /// What the build left out.
    pub(crate) fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The serial.
    pub(crate) fn serial(&self) -> u32 {
        self.serial
    }

    /// Every existing name.
    pub(crate) fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.names.keys().map(Name::as_wire)
    }
}
