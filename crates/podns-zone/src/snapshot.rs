//! The zone snapshot: every answer of the served zones, looked up by (name, type).
//!
//! This module is responsible for turning the RRsets of `records.rs` into an immutable lookup
//! structure and for the negative-answer rules (design decision 5):
//!
//! - a name *exists* if it owns an RRset, is listed as existing without records, or is an
//!   ancestor of such a name inside its zone (an empty non-terminal, RFC 8020 §2: "if a name
//!   exists, its ancestors exist too"). The snapshot keeps one hash entry per existing name, so
//!   "not in the map" means "nothing at or below this name": NXDOMAIN, in one hash lookup and
//!   with no scan of the zone;
//! - an existing name without the asked type is NODATA (RFC 2308 §2.2);
//! - a CNAME owner answers its CNAME for every type (RFC 1034 §3.6.2: it has no other data);
//! - ANY (RFC 8482 §4.1) gets one RRset, chosen at build time.
//!
//! Lookups take the question name already lower-cased, in wire form.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use podns_view::ClusterView;

use crate::ZoneConfig;
use crate::answer::{Negative, PreparedAnswer};
use crate::names::{Name, suffix_offset};
use crate::records::{self, RData, RRset, RType, Skipped, Zones};

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

/// An immutable zone: what every question inside the served zones gets.
#[derive(Debug)]
pub struct ZoneSnapshot {
    serial: u32,
    /// Served zones, longest apex first so the first match is the closest enclosing zone.
    zones: Box<[ServedZone]>,
    /// Every existing name → its slice of `types`.
    names: HashMap<Name, NameEntry, BuildHasherDefault<FxHasher>>,
    /// (qtype, index into `answers`), grouped by name.
    types: Vec<(u16, u32)>,
    answers: Vec<PreparedAnswer>,
    rrsets: Vec<RRset>,
    skipped: Vec<Skipped>,
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
    /// The name owns a CNAME: `types` holds just that answer, which every type gets.
    cname: bool,
}

/// What a question gets from the snapshot.
#[derive(Clone, Copy, Debug)]
pub enum Lookup<'a> {
    /// The name is outside every served zone.
    NotServed,
    /// NOERROR with records.
    Answer(&'a PreparedAnswer),
    /// NOERROR, no records: the name exists without this type. Authority: the zone's SOA.
    NoData(&'a Negative),
    /// NXDOMAIN: no name at or below the question name. Authority: the zone's SOA.
    NxDomain(&'a Negative),
}

/// Builds a snapshot of `cluster`, with the current Unix time as the SOA serial (as CoreDNS
/// does; RFC 1982 arithmetic keeps it increasing until 2106).
pub fn build(config: &ZoneConfig, cluster: &ClusterView) -> ZoneSnapshot {
    let serial = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32);
    build_with_serial(config, cluster, serial)
}

/// [`build`] with a given SOA serial (tests, and callers that keep their own serial).
pub fn build_with_serial(config: &ZoneConfig, cluster: &ClusterView, serial: u32) -> ZoneSnapshot {
    let mut skipped = Vec::new();
    let cluster_zone = match Name::from_dotted(&config.cluster_domain) {
        Ok(name) => name,
        Err(reason) => {
            skipped.push(Skipped {
                what: format!("cluster domain {}", config.cluster_domain),
                reason,
            });
            return ZoneSnapshot::empty(serial, skipped);
        }
    };
    let mut reverse = Vec::new();
    for zone in &config.reverse_zones {
        match Name::from_dotted(zone) {
            Ok(name) if !name.is_root() => reverse.push(name),
            Ok(_) => {}
            Err(reason) => skipped.push(Skipped {
                what: format!("reverse zone {zone}"),
                reason,
            }),
        }
    }
    let zones = Zones {
        cluster: cluster_zone,
        reverse,
    };
    let records = records::build_records(config, &zones, serial, cluster);
    skipped.extend(records.skipped);
    ZoneSnapshot::from_records(
        config,
        &zones,
        records.rrsets,
        &records.names,
        serial,
        skipped,
    )
}

// === impl ZoneSnapshot ===

impl ZoneSnapshot {
    /// A snapshot that serves nothing (every question is [`Lookup::NotServed`]).
    pub fn empty(serial: u32, skipped: Vec<Skipped>) -> Self {
        Self {
            serial,
            zones: Box::new([]),
            names: HashMap::default(),
            types: Vec::new(),
            answers: Vec::new(),
            rrsets: Vec::new(),
            skipped,
        }
    }

    fn from_records(
        config: &ZoneConfig,
        zones: &Zones,
        rrsets: Vec<RRset>,
        extra_names: &[Name],
        serial: u32,
        skipped: Vec<Skipped>,
    ) -> Self {
        let mut apexes: Vec<&Name> = std::iter::once(&zones.cluster)
            .chain(&zones.reverse)
            .collect();
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
        for name in extra_names {
            mark_existing(name, None, &apexes, &mut by_name, &mut order);
        }
        for apex in &apexes {
            mark_existing(apex, None, &apexes, &mut by_name, &mut order);
        }

        let mut names =
            HashMap::with_capacity_and_hasher(order.len(), BuildHasherDefault::default());
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
                answers.push(PreparedAnswer::prepare(&name, set, &additional));
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
            names.insert(name, NameEntry { start, len, cname });
        }

        let zones = apexes
            .iter()
            .filter_map(|apex| {
                let soa = by_key.get(&(*apex, RType::SOA))?;
                Some(ServedZone {
                    apex: (*apex).clone(),
                    // RFC 2308 §5: the SOA's TTL in a negative answer is min(TTL, MINIMUM).
                    negative: Negative::new(soa, config.negative_ttl),
                })
            })
            .collect();
        Self {
            serial,
            zones,
            names,
            types,
            answers,
            rrsets,
            skipped,
        }
    }

    /// The SOA serial of every served zone.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Every RRset of the served zones, for display (`podns get records`): apex first, then
    /// Services in view order. Each displays as zone-file lines.
    pub fn rrsets(&self) -> impl Iterator<Item = &RRset> {
        self.rrsets.iter()
    }

    /// What the build left out, and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Number of existing names (owners and empty non-terminals).
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// The answer for `qname` (lower-cased, uncompressed wire form) and `qtype`. O(labels of
    /// `qname` × served zones) for the zone match, then one hash lookup.
    pub fn lookup(&self, qname: &[u8], qtype: u16) -> Lookup<'_> {
        let Some(zone) = self
            .zones
            .iter()
            .find(|z| suffix_offset(qname, z.apex.as_wire()).is_some())
        else {
            return Lookup::NotServed;
        };
        let Some(entry) = self.names.get(qname) else {
            // RFC 8020 §2: nothing exists at or below this name.
            return Lookup::NxDomain(&zone.negative);
        };
        let types = &self.types[entry.start as usize..entry.start as usize + entry.len as usize];
        if entry.cname {
            // RFC 1034 §3.6.2: a CNAME owner has no other data; every type gets the CNAME.
            return Lookup::Answer(&self.answers[types[0].1 as usize]);
        }
        match types.iter().find(|(t, _)| *t == qtype) {
            Some((_, index)) => Lookup::Answer(&self.answers[*index as usize]),
            None => Lookup::NoData(&zone.negative),
        }
    }
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

/// FxHash (the rustc hasher): a few cycles per word. Keys are built from cluster data and
/// lookups never insert, so query traffic cannot grow collision chains (no HashDoS exposure).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

// === impl FxHasher ===

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}
