//! The zone snapshot: every answer of the served zones, looked up by (name, type).
//!
//! This module is responsible for the read side of the zone: an immutable structure that
//! answers every question from bytes prepared by the builder (`builder.rs`), and for the
//! negative-answer rules at lookup time (design decision 5):
//!
//! - a name *exists* if the snapshot holds an entry for it; the builder gives every owner,
//!   every name listed as existing, and every ancestor of those inside its zone (empty
//!   non-terminals, RFC 8020 §2) an entry, so "no entry" means "nothing at or below this name":
//!   NXDOMAIN, in one probe and with no scan of the zone;
//! - an existing name without the asked type is NODATA (RFC 2308 §2.2);
//! - a CNAME owner answers its CNAME for every type (RFC 1034 §3.6.2);
//! - ANY (RFC 8482 §4.1) gets one RRset, chosen at build time;
//! - under `pods insecure`, a missing `<dashed-ip>.<ns>.pod.<zone>` whose parent is an existing
//!   pod namespace is answered from the label itself ([`Lookup::PodAddress`]).
//!
//! # Layout, and why
//! ```text
//! ZoneSnapshot ─ zones: [ServedZone]  apex, SOA for negative answers, group depth
//!              └ shards: Arc<[Arc<Shard>; SHARDS]>   shard = hash(group of the name)
//!                           └ Shard: nodes back to back in one buffer, a table of their
//!                                    offsets by name hash, and their parent names once.
//!                                    Node: first label, parent reference, flags, type
//!                                    table, answers
//! ```
//! The builder publishes a new snapshot after every change without copying the zone: it
//! clones only the shards it touched (copy-on-write through `Arc::make_mut`), and the rest are
//! shared with the previous snapshot. A name's shard is chosen by its *group*: its ancestor at
//! a fixed depth below the apex (`<service>.<ns>.svc` in a cluster zone, the /24 or /120 in
//! a reverse zone), so every name of one Service lands in one shard and an update of a
//! 1,000-endpoint Service clones a handful of shards, not all of them.
//!
//! A shard keeps its nodes in one byte buffer and its table holds 4-byte offsets: a node per
//! name as its own `Arc<[u8]>` cost 16 bytes of reference counts, a 16-byte table slot and the
//! allocator's overhead on each of ~230k names (100k endpoints), about 10 MB; copying a
//! touched shard is now one `memcpy` of its buffer (a few kB) instead of one reference count
//! per name.
//!
//! A node keeps its first label and a reference to its parent, which its shard keeps once:
//! the names of a Service's pods, of its SRV owners and of a /24's PTR owners share their
//! parent, and full names were a third of the nodes' bytes (10k × 10: snapshot 29.8 → 25.0 MB).
//! A hit compares the label, then the parent: ~20 ns more per lookup (`benches/lookup.rs`),
//! against ~9 µs of server CPU per query.
//!
//! A lookup (positive or negative alike) is: the closest served apex (a suffix compare per
//! zone, longest first), the group suffix, two FxHash passes (shard, then entry), one probe.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hashbrown::HashTable;
use podns_view::ClusterView;

use crate::ZoneConfig;
use crate::answer::{self, Negative, PreparedAnswer};
use crate::builder::ZoneBuilder;
use crate::names::{self, Name, suffix_offset};
use crate::records::Skipped;

pub use self::footprint::Footprint;

/// Number of shards (a power of two). More shards make a small update cheaper to publish (a
/// touched shard holds fewer other names) and cost a pointer each per snapshot; 4,096 keeps a
/// 100k-endpoint zone at ~60 names per shard and the root at 32 KiB.
pub(crate) const SHARDS: usize = 4096;
/// Shards per block of the two-level root: a publish copies the 64-entry root and the blocks
/// it wrote to, instead of a 4,096-entry root (whose reference counts dominated small updates).
pub(crate) const BLOCK: usize = 64;

/// The shards, as blocks of [`BLOCK`].
pub(crate) type Shards = Arc<Vec<Arc<Vec<Arc<Shard>>>>>;

/// An immutable zone: what every question inside the served zones gets.
#[derive(Clone, Debug)]
pub struct ZoneSnapshot {
    pub(crate) serial: u32,
    /// Served zones, longest apex first so the first match is the closest enclosing zone.
    pub(crate) zones: Arc<[ServedZone]>,
    /// Every existing name, by shard in blocks (empty when nothing is served).
    pub(crate) shards: Shards,
    /// Number of existing names.
    pub(crate) names: usize,
    pub(crate) skipped: Arc<[Skipped]>,
    /// `pods insecure`: the TTL of [`Lookup::PodAddress`] answers; `None` in other modes.
    pub(crate) insecure_pod_ttl: Option<u32>,
}

/// One served zone.
#[derive(Clone, Debug)]
pub(crate) struct ServedZone {
    pub(crate) apex: Name,
    /// Names with more labels than this are grouped (sharded) by their ancestor with this many.
    pub(crate) group_labels: u8,
    pub(crate) negative: Negative,
}

/// The existing names of one shard.
///
/// A stored node keeps its name as the first label and a reference to its parent, which
/// the shard keeps once in `parents`: a Service's pods, its SRV owners and a /24's PTR owners
/// each share one parent there. Full names were 8.5 MB of the 10k × 10 snapshot's 27.6 MB of
/// nodes (a per-pod name is ~46 bytes, its first label ~7).
#[derive(Debug, Default)]
pub(crate) struct Shard {
    /// Where each node starts in `bytes`, found by the hash of its full name ([`hash_name`]).
    table: HashTable<u32>,
    /// The nodes back to back, in the stored layout ([`Node::stored`]).
    bytes: Vec<u8>,
    /// The parent names the nodes refer to, each as a length byte and the wire name, back to
    /// back ([`PARENT_REF`]). Rebuilt (without parents nothing refers to) whenever the shard
    /// is copied or rewritten.
    parents: Vec<u8>,
    /// Bytes of `bytes` held by nodes removed or replaced since the last compaction.
    dead: usize,
}

/// Where the parents a copy of a shard has met so far went: (old reference, new reference).
/// A shard has a few parents, so a list beats a map.
#[derive(Default)]
struct ParentsMoved(Vec<([u8; PARENT_REF], [u8; PARENT_REF])>);

/// Bytes of a stored node's reference to its parent: an offset into [`Shard::parents`]
/// (little-endian, 24 bits: a shard's distinct parents would need 16 MiB of names to overflow
/// it).
const PARENT_REF: usize = 3;

/// `name` split after its first label: the label (with its length byte) and the parent. The
/// root has no first label: all of it is the "parent".
#[inline(always)]
fn split_first(name: &[u8]) -> (&[u8], &[u8]) {
    match name.first() {
        Some(&len) if len != 0 && name.len() > 1 + len as usize => name.split_at(1 + len as usize),
        _ => (&[], name),
    }
}

/// The parent name a stored node's reference (its first [`PARENT_REF`] bytes) points to.
#[inline(always)]
fn parent_at<'p>(parents: &'p [u8], reference: &[u8]) -> &'p [u8] {
    let at = u32::from_le_bytes([reference[0], reference[1], reference[2], 0]) as usize;
    &parents[at + 1..at + 1 + parents[at] as usize]
}

/// Whether the node stored at `at` is named `label` + `parent` ([`split_first`]).
#[inline(always)]
fn stored_is(bytes: &[u8], parents: &[u8], at: u32, label: &[u8], parent: &[u8]) -> bool {
    let rest = &bytes[at as usize..];
    let k = rest[0] as usize;
    rest[1..1 + k] == *label && parent_at(parents, &rest[1 + k..]) == parent
}

/// The full name of the node stored at `at`, written into `buf`.
fn stored_name<'b>(
    bytes: &[u8],
    parents: &[u8],
    at: u32,
    buf: &'b mut [u8; names::MAX_NAME_LEN],
) -> &'b [u8] {
    let rest = &bytes[at as usize..];
    let k = rest[0] as usize;
    let parent = parent_at(parents, &rest[1 + k..]);
    buf[..k].copy_from_slice(&rest[1..1 + k]);
    buf[k..k + parent.len()].copy_from_slice(parent);
    &buf[..k + parent.len()]
}

/// The hash of the node stored at `at` ([`hash_name`] of its full name): for the table when it
/// grows, and for copies into another shard.
fn stored_hash(bytes: &[u8], parents: &[u8], at: u32) -> u64 {
    hash_name(stored_name(
        bytes,
        parents,
        at,
        &mut [0; names::MAX_NAME_LEN],
    ))
}

/// The name of a node in the builder's layout ([`NodeBuf::write`]).
pub(crate) fn encoded_name(node: &[u8]) -> &[u8] {
    &node[1..1 + node[0] as usize]
}

/// Everything about one existing name, borrowed from its shard or a batch (from where it
/// starts to the end of the buffer: its own end is found from its bytes, [`Node::len`]).
///
/// Two layouts differ only in how the name is kept, before the *tail*:
/// - as the builder encodes it ([`Node::encoded`], [`NodeBuf::write`]): name length (`u8`)
///   and the name (wire form);
/// - as a shard stores it ([`Node::stored`]): the first label's length with its length byte
///   (`u8`), the first label, and a [`PARENT_REF`] to the parent name in the shard.
///
/// The tail: flags and number of types in one byte (flags in the high four bits: a name has
/// at most the eight types of `records.rs`), per type its qtype (`u8`: every type this crate
/// makes is below 256), then one entry per type in table order: a prepared answer or a
/// [`LINK`], each of which says its own length (`answer::stored_len`). The first entry is the
/// one ANY gets (RFC 8482 §4.1, chosen at build time), so ANY needs no entry of its own.
///
/// Nothing in a node or around it repeats what its bytes already say: a `u32` frame per node
/// and a `u32` end per type were 2.8 MB at 100k endpoints; finding the answer of the second
/// type now reads the first one's length (two integers) instead.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<'a> {
    bytes: &'a [u8],
    /// Where the tail starts.
    tail: usize,
}

/// A node as the builder encodes it, before it is stored in a shard.
#[derive(Debug)]
pub(crate) struct NodeBuf(Box<[u8]>);

/// Nodes as the builder encodes them, back to back as in a shard, for [`Shard::rewritten`]:
/// one buffer for a Service's private names, not one box per name.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeBatch {
    bytes: Vec<u8>,
    count: usize,
}

/// How a *link* starts: a type entry stored as `FF FF`, the length of a name prefix (`u8`) and
/// the prefix (wire labels) instead of a prepared answer, which never starts with `0xFF`
/// (`answer.rs`: its first byte is `0xC0` or below `0x40`). The answer is the SRV
/// answer of prefix + the name, with its additional owners' pointers moved back by the
/// prefix's length (`PreparedAnswer::shifted`). The builder stores one at `<svc>` when it would
/// hold exactly the answer of `_<port>._<proto>.<svc>` (a Service with one named port): at 10k
/// Services × 10 endpoints that was 9.4 MB of the snapshot. The port name keeps its own copy,
/// since clients ask it (RFC 2782), and pays nothing; the bare name pays a second probe.
pub(crate) const LINK: [u8; 2] = [0xFF, 0xFF];

/// Appends a link to the SRV answer of `prefix` + the name ([`LINK`]).
pub(crate) fn write_link(out: &mut Vec<u8>, prefix: &[u8]) {
    out.extend_from_slice(&LINK);
    out.push(prefix.len() as u8);
    out.extend_from_slice(prefix);
}

/// The length of the type entry (a prepared answer or a link) `bytes` starts with.
#[inline(always)]
fn entry_len(bytes: &[u8]) -> usize {
    match bytes {
        [0xFF, 0xFF, len, ..] => 3 + *len as usize,
        _ => answer::stored_len(bytes),
    }
}

/// The name owns a CNAME: its one type entry answers every type.
pub(crate) const FLAG_CNAME: u8 = 1;
/// The name is `<ns>.pod.<zone>` under `pods insecure`: its children are answered per query.
pub(crate) const FLAG_INSECURE_PODS: u8 = 2;

/// What a question gets from the snapshot.
#[derive(Clone, Copy, Debug)]
pub enum Lookup<'a> {
    /// The name is outside every served zone.
    NotServed,
    /// NOERROR with records.
    Answer(PreparedAnswer<'a>),
    /// NOERROR, no records: the name exists without this type. Authority: the zone's SOA.
    NoData(&'a Negative),
    /// NXDOMAIN: no name at or below the question name. Authority: the zone's SOA.
    NxDomain(&'a Negative),
    /// NOERROR with one A (IPv4) or AAAA (IPv6) record whose owner is the question name: a
    /// `pods insecure` answer, read from the question's first label (CoreDNS `findPods`).
    PodAddress {
        /// The address; its family gives the record type.
        ip: IpAddr,
        /// The record's TTL.
        ttl: u32,
    },
}

/// Builds a snapshot of `cluster`, with the current Unix time as the SOA serial (as CoreDNS
/// does; RFC 1982 arithmetic keeps it increasing until 2106). A [`ZoneBuilder`] fed the whole
/// view, published once; keep the builder instead to publish later changes incrementally.
pub fn build(config: &ZoneConfig, cluster: &ClusterView) -> ZoneSnapshot {
    build_with_serial(config, cluster, unix_serial())
}

/// [`build`] with a given SOA serial (tests, and callers that keep their own serial).
pub fn build_with_serial(config: &ZoneConfig, cluster: &ClusterView, serial: u32) -> ZoneSnapshot {
    let mut builder = ZoneBuilder::new(config.clone());
    builder.replace_all(cluster);
    builder.snapshot_with_serial(serial)
}

/// The current Unix time as a serial.
pub(crate) fn unix_serial() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32)
}

// === impl ZoneSnapshot ===

impl ZoneSnapshot {
    /// A snapshot that serves nothing (every question is [`Lookup::NotServed`]).
    pub fn empty(serial: u32, skipped: Vec<Skipped>) -> Self {
        Self {
            serial,
            zones: Arc::new([]),
            shards: Arc::new(Vec::new()),
            names: 0,
            skipped: skipped.into(),
            insecure_pod_ttl: None,
        }
    }

    /// The SOA serial of every served zone.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// What the build left out, and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Number of existing names (owners and empty non-terminals).
    pub fn name_count(&self) -> usize {
        self.names
    }

    /// Bytes this snapshot holds on the heap, counted from the sizes it allocated (the
    /// allocator's own overhead, ~8–16 bytes per allocation, is not included). Shards shared
    /// with other snapshots are counted in full.
    pub fn heap_size(&self) -> usize {
        let arc = 2 * size_of::<usize>();
        let shards = self.shards.iter().flat_map(|b| b.iter()).map(|shard| {
            arc + size_of::<Shard>()
                + shard.table.allocation_size()
                + shard.bytes.capacity()
                + shard.parents.capacity()
        });
        shards.sum::<usize>()
            + self.shards.len() * (BLOCK + 1) * size_of::<Arc<Shard>>()
            + self.zones.len() * size_of::<ServedZone>()
    }

    /// The answer for `qname` (lower-cased, uncompressed wire form) and `qtype`: the walk over
    /// the served apexes (O(labels × zones)), then one probe; under `pods insecure`, a miss
    /// whose first label is an address probes its parent too.
    pub fn lookup(&self, qname: &[u8], qtype: u16) -> Lookup<'_> {
        let Some(zone) = zone_of(&self.zones, qname) else {
            return Lookup::NotServed;
        };
        let negative = &self.zones[zone].negative;
        let Some(node) = self.node(zone, qname) else {
            if let Some(ttl) = self.insecure_pod_ttl
                && let Some(ip) = self.insecure_pod(qname)
            {
                return match (qtype, ip) {
                    (t, IpAddr::V4(_)) if t == crate::RType::A.0 || t == crate::RType::ANY.0 => {
                        Lookup::PodAddress { ip, ttl }
                    }
                    (t, IpAddr::V6(_)) if t == crate::RType::AAAA.0 || t == crate::RType::ANY.0 => {
                        Lookup::PodAddress { ip, ttl }
                    }
                    // The name exists (CoreDNS answers NOERROR) without this type.
                    _ => Lookup::NoData(negative),
                };
            }
            // RFC 8020 §2: nothing exists at or below this name.
            return Lookup::NxDomain(negative);
        };
        match node.answer(qtype) {
            Some([0xFF, 0xFF, _, prefix @ ..]) => match self.linked(zone, qname, prefix) {
                Some(answer) => Lookup::Answer(answer),
                // The builder links only to an SRV answer it has just written.
                None => Lookup::NoData(negative),
            },
            Some(bytes) => Lookup::Answer(PreparedAnswer::from_bytes(bytes)),
            None => Lookup::NoData(negative),
        }
    }

    /// The SRV answer of `prefix` + `qname` (a link, [`LINK`]), for `qname`. Out of line: only
    /// SRV questions at a Service name come here.
    #[inline(never)]
    fn linked(&self, zone: usize, qname: &[u8], prefix: &[u8]) -> Option<PreparedAnswer<'_>> {
        let mut name = [0u8; names::MAX_NAME_LEN];
        let len = prefix.len() + qname.len();
        name.get_mut(..prefix.len())?.copy_from_slice(prefix);
        name.get_mut(prefix.len()..len)?.copy_from_slice(qname);
        let bytes = self.node(zone, &name[..len])?.answer(crate::RType::SRV.0)?;
        match bytes {
            [0xFF, 0xFF, ..] => None,
            _ => Some(PreparedAnswer::from_bytes(bytes).shifted(-(prefix.len() as i16))),
        }
    }

    fn node(&self, zone: usize, qname: &[u8]) -> Option<Node<'_>> {
        let shard = shard_index(&self.zones[zone], qname);
        self.shards.get(shard / BLOCK)?[shard % BLOCK].get(qname)
    }

    /// `pods insecure`: the address named by the first label of `qname`, when the rest is an
    /// existing `<ns>.pod.<zone>` (CoreDNS `findPods`: the namespace must be exposed, the label
    /// must parse as an address, no pod is checked).
    fn insecure_pod(&self, qname: &[u8]) -> Option<IpAddr> {
        let len = *qname.first()? as usize;
        let ip = names::parse_pod_label(qname.get(1..1 + len)?)?;
        let parent = qname.get(1 + len..)?;
        let node = self.node(zone_of(&self.zones, parent)?, parent)?;
        (node.flags() & FLAG_INSECURE_PODS != 0).then_some(ip)
    }

    /// Every existing name (for tests and diagnostics), in no particular order.
    #[cfg(test)]
    pub(crate) fn names(&self) -> Vec<Vec<u8>> {
        let mut names = Vec::new();
        for shard in self.shards.iter().flat_map(|b| b.iter()) {
            shard.for_each_named(|name, _| names.push(name.to_vec()));
        }
        names
    }
}

/// The closest served zone of `qname`: `zones` is sorted longest apex first.
pub(crate) fn zone_of(zones: &[ServedZone], qname: &[u8]) -> Option<usize> {
    zones
        .iter()
        .position(|z| suffix_offset(qname, z.apex.as_wire()).is_some())
}

/// The shard of `name` (in `zone`): a hash of its group, the ancestor with
/// `zone.group_labels` labels (or the name itself when it has no more).
pub(crate) fn shard_index(zone: &ServedZone, name: &[u8]) -> usize {
    let mut labels = 0usize;
    let mut i = 0;
    while let Some(&len) = name.get(i)
        && len != 0
    {
        labels += 1;
        i += 1 + len as usize;
    }
    let mut start = 0;
    for _ in 0..labels.saturating_sub(zone.group_labels as usize) {
        start += 1 + name[start] as usize;
    }
    let mut hasher = FxHasher::default();
    // A different start than the entry hash inside the shard (which hashes the whole name with
    // a length prefix): otherwise names that are their own group would share their top bits.
    hasher.add(0x2545_f491_4f6c_dd1d);
    hasher.write(&name[start..]);
    (hasher.finish() >> 52) as usize & (SHARDS - 1)
}

// === impl Shard ===

/// The hash a shard files a node under: FxHash of the wire name (as `[u8]` hashes).
fn hash_name(name: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    name.hash(&mut hasher);
    hasher.finish()
}

impl Shard {
    /// The node stored at `at`.
    #[inline(always)]
    fn node_at(bytes: &[u8], at: u32) -> Node<'_> {
        Node::stored(&bytes[at as usize..])
    }

    /// The node of `name` (wire form), if stored.
    pub(crate) fn get(&self, name: &[u8]) -> Option<Node<'_>> {
        // Many shards of a small zone are empty: a miss there costs no hash (as `HashSet::get`).
        if self.table.is_empty() {
            return None;
        }
        let (bytes, parents) = (&self.bytes, &self.parents);
        let (label, parent) = split_first(name);
        self.table
            .find(hash_name(name), |&at| {
                stored_is(bytes, parents, at, label, parent)
            })
            .map(|&at| Self::node_at(bytes, at))
    }

    pub(crate) fn contains(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// Every node, in no particular order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = Node<'_>> {
        self.table.iter().map(|&at| Self::node_at(&self.bytes, at))
    }

    /// Calls `each` with every node and its full name, in no particular order.
    pub(crate) fn for_each_named(&self, mut each: impl FnMut(&[u8], Node<'_>)) {
        let mut buf = [0; names::MAX_NAME_LEN];
        for &at in self.table.iter() {
            let name = stored_name(&self.bytes, &self.parents, at, &mut buf);
            each(name, Self::node_at(&self.bytes, at));
        }
    }

    /// The reference to `parent` in `parents`, added if it is not there yet. A shard holds a
    /// few parents (a Service's name, its `_<proto>` names and its namespace's; a /24), so a
    /// scan that skips by length is cheaper than an index of them; and the names written
    /// together mostly share one, so `hint` (the last one found) is tried first.
    fn intern_parent(&mut self, parent: &[u8], hint: &mut usize) -> [u8; PARENT_REF] {
        let named = |parents: &[u8], at: usize| {
            parents.get(at).is_some_and(|&len| {
                len as usize == parent.len() && parents[at + 1..at + 1 + parent.len()] == *parent
            })
        };
        let at = if named(&self.parents, *hint) {
            *hint
        } else {
            let mut at = 0;
            while at < self.parents.len() && !named(&self.parents, at) {
                at += 1 + self.parents[at] as usize;
            }
            if at == self.parents.len() {
                self.parents.push(parent.len() as u8);
                self.parents.extend_from_slice(parent);
            }
            at
        };
        *hint = at;
        assert!(at < 1 << 24, "a shard's parent names exceed 16 MiB");
        let [a, b, c, _] = (at as u32).to_le_bytes();
        [a, b, c]
    }

    /// Appends the node named `label` + `parent` with `tail` ([`Node`]) to `bytes`, not yet
    /// in the table; where it starts. `hint`: as for [`Shard::intern_parent`].
    fn append(&mut self, label: &[u8], parent: &[u8], tail: &[u8], hint: &mut usize) -> u32 {
        let reference = self.intern_parent(parent, hint);
        self.append_stored(label, reference, tail)
    }

    /// Appends a node whose parent reference is known.
    fn append_stored(&mut self, label: &[u8], reference: [u8; PARENT_REF], tail: &[u8]) -> u32 {
        let at = self.bytes.len() as u32;
        self.bytes.push(label.len() as u8);
        self.bytes.extend_from_slice(label);
        self.bytes.extend_from_slice(&reference);
        self.bytes.extend_from_slice(tail);
        at
    }

    /// The bytes a node in the builder's layout takes once stored.
    fn stored_len(node: Node<'_>) -> usize {
        let name = encoded_name(node.bytes);
        let (label, _) = split_first(name);
        1 + label.len() + PARENT_REF + node.len() - node.tail
    }

    /// Stores `node` (the builder's layout), replacing the node of the same name; whether the
    /// name is new.
    pub(crate) fn insert(&mut self, node: &[u8]) -> bool {
        let encoded = Node::encoded(node);
        debug_assert_eq!(encoded.len(), node.len(), "one whole node");
        let need = Self::stored_len(encoded);
        if self.bytes.capacity() - self.bytes.len() < need {
            // An eighth more, not double: shards are small (a realloc copies a few kB), and
            // while a zone is first built every shard grows at once, so the slack is the
            // build's peak. `serve` on 10k Services × 10 replicas (standalone), VmHWM: double
            // 92.6 MiB, a quarter 82.0, an eighth 80.3.
            self.bytes.reserve_exact(need.max(self.bytes.len() / 8));
        }
        let name = encoded_name(node);
        let (label, parent) = split_first(name);
        let at = self.append(label, parent, &node[encoded.tail..], &mut 0);
        let Self {
            table,
            bytes,
            parents,
            dead,
        } = self;
        let hash = hash_name(name);
        let fresh = match table.find_mut(hash, |&old| stored_is(bytes, parents, old, label, parent))
        {
            Some(old) => {
                *dead += Self::node_at(bytes, *old).len();
                *old = at;
                false
            }
            None => {
                table.insert_unique(hash, at, |&at| stored_hash(bytes, parents, at));
                true
            }
        };
        self.compact_if_wasteful();
        fresh
    }

    /// Removes the node of `name`; whether there was one.
    pub(crate) fn remove(&mut self, name: &[u8]) -> bool {
        let Self {
            table,
            bytes,
            parents,
            dead,
        } = self;
        let (label, parent) = split_first(name);
        let Ok(entry) = table.find_entry(hash_name(name), |&at| {
            stored_is(bytes, parents, at, label, parent)
        }) else {
            return false;
        };
        let (at, _) = entry.remove();
        *dead += Self::node_at(bytes, at).len();
        self.compact_if_wasteful();
        true
    }

    /// A copy holding the nodes whose names `keep` accepts and then `nodes` (whose names must
    /// be neither kept nor repeated), with exact capacity; and how many nodes were dropped.
    pub(crate) fn rewritten(
        &self,
        keep: impl Fn(&[u8]) -> bool,
        nodes: &NodeBatch,
    ) -> (Self, usize) {
        let mut buf = [0; names::MAX_NAME_LEN];
        let kept: Vec<(u32, u64)> = self
            .table
            .iter()
            .filter_map(|&at| {
                let name = stored_name(&self.bytes, &self.parents, at, &mut buf);
                keep(name).then(|| (at, hash_name(name)))
            })
            .collect();
        let shard = self.copy_with(&kept, nodes, |name| debug_assert!(!keep(name)));
        (shard, self.table.len() - kept.len())
    }

    /// A copy without the nodes of `names` (which need not be stored) and with `nodes` (each
    /// of whose names must be in `names`), at exact capacity; and how many nodes were dropped.
    /// One pass for many names of one shard, where writing them one by one copies the shard
    /// with headroom, grows it, and trims it when published.
    pub(crate) fn rewritten_without<'n>(
        &self,
        names: impl Iterator<Item = &'n [u8]>,
        nodes: &NodeBatch,
    ) -> (Self, usize) {
        let (bytes, parents) = (&self.bytes, &self.parents);
        let mut dropped: Vec<u32> = names
            .filter_map(|name| {
                let (label, parent) = split_first(name);
                self.table
                    .find(hash_name(name), |&at| {
                        stored_is(bytes, parents, at, label, parent)
                    })
                    .copied()
            })
            .collect();
        dropped.sort_unstable();
        dropped.dedup();
        let kept: Vec<(u32, u64)> = self
            .table
            .iter()
            .filter(|at| dropped.binary_search(at).is_err())
            .map(|&at| (at, stored_hash(bytes, parents, at)))
            .collect();
        (self.copy_with(&kept, nodes, |_| ()), dropped.len())
    }

    /// A shard of the nodes stored here at `kept` (with their hashes) and then `nodes`, at
    /// exact capacity; `check` sees each new node's name (debug assertions).
    fn copy_with(&self, kept: &[(u32, u64)], nodes: &NodeBatch, check: impl Fn(&[u8])) -> Self {
        let kept_bytes: usize = kept
            .iter()
            .map(|&(at, _)| Self::node_at(&self.bytes, at).len())
            .sum();
        let new_bytes: usize = nodes.iter().map(Self::stored_len).sum();
        let mut shard = Self {
            table: HashTable::with_capacity(kept.len() + nodes.count),
            bytes: Vec::with_capacity(kept_bytes + new_bytes),
            parents: Vec::new(),
            dead: 0,
        };
        let mut moved = ParentsMoved::default();
        for &(at, hash) in kept {
            let at = shard.append_copy(self, at, &mut moved);
            shard.insert_new(hash, at);
        }
        let mut hint = 0;
        for node in nodes.iter() {
            let name = encoded_name(node.bytes);
            check(name);
            let (label, parent) = split_first(name);
            let at = shard.append(label, parent, &node.bytes()[node.tail..], &mut hint);
            shard.insert_new(hash_name(name), at);
        }
        shard.parents.shrink_to_fit();
        shard
    }

    /// Appends a copy of `from`'s node at `at`, not in the table yet; where it starts.
    fn append_copy(&mut self, from: &Self, at: u32, moved: &mut ParentsMoved) -> u32 {
        let node = Self::node_at(&from.bytes, at);
        let label = &node.bytes[1..node.tail - PARENT_REF];
        let old: [u8; PARENT_REF] = node.bytes[node.tail - PARENT_REF..node.tail]
            .try_into()
            .expect("a parent reference");
        let reference = match moved.0.iter().find(|(o, _)| *o == old) {
            Some(&(_, new)) => new,
            None => {
                let parent = parent_at(&from.parents, &old);
                let new = self.intern_parent(parent, &mut 0);
                moved.0.push((old, new));
                new
            }
        };
        self.append_stored(label, reference, &node.bytes()[node.tail..])
    }

    /// Files the node at `at`, whose name hashes to `hash` and is not stored yet.
    fn insert_new(&mut self, hash: u64, at: u32) {
        let (bytes, parents) = (&self.bytes, &self.parents);
        self.table
            .insert_unique(hash, at, |&at| stored_hash(bytes, parents, at));
    }

    /// Drops spare capacity, and dead nodes once they are a quarter of the buffer (before the
    /// shard is published).
    pub(crate) fn trim(&mut self) {
        if self.dead * 4 > self.bytes.len() {
            *self = self.compacted(0);
        } else {
            // The table keeps its size: a fuller one (up to 7/8 after shrinking) probes
            // further on the misses that are most queries.
            self.bytes.shrink_to_fit();
            self.parents.shrink_to_fit();
        }
    }

    /// Rewrites `bytes` without dead nodes once they are half of it (so a shard never holds
    /// more than about twice its live bytes).
    fn compact_if_wasteful(&mut self) {
        if self.dead > 4096 && self.dead * 2 > self.bytes.len() {
            *self = self.compacted(self.bytes.len() / 4);
        }
    }

    /// A copy with live nodes only (and parents still referred to), and room for `headroom`
    /// more bytes.
    fn compacted(&self, headroom: usize) -> Self {
        let live = self.bytes.len() - self.dead;
        let mut bytes = Vec::with_capacity(live + headroom);
        if self.dead == 0 {
            bytes.extend_from_slice(&self.bytes);
            return Self {
                table: self.table.clone(),
                bytes,
                parents: self.parents.clone(),
                dead: 0,
            };
        }
        let mut shard = Self {
            table: self.table.clone(),
            bytes,
            parents: Vec::new(),
            dead: 0,
        };
        // The table keeps its slots; only where each node starts changes.
        let mut table = std::mem::take(&mut shard.table);
        let mut moved = ParentsMoved::default();
        for at in table.iter_mut() {
            *at = shard.append_copy(self, *at, &mut moved);
        }
        shard.table = table;
        shard
    }
}

impl Clone for Shard {
    /// A compacted copy with a quarter more room: copy-on-write copies a shard this way just
    /// before writing to it, so the writes rarely grow the buffer again; publishing trims it.
    fn clone(&self) -> Self {
        self.compacted(self.bytes.len() / 4 + 256)
    }
}

// === impl Node ===

impl<'a> Node<'a> {
    /// A node in the builder's layout ([`NodeBuf::write`]), from where it starts.
    #[inline(always)]
    pub(crate) fn encoded(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            tail: 1 + bytes[0] as usize,
        }
    }

    /// A node in a shard's layout ([`Shard`]), from where it starts.
    #[inline(always)]
    fn stored(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            tail: 1 + bytes[0] as usize + PARENT_REF,
        }
    }

    /// The node's bytes.
    pub(crate) fn bytes(self) -> &'a [u8] {
        &self.bytes[..self.len()]
    }

    /// The node's length: its table, then its entries, each of which says its own length.
    pub(crate) fn len(self) -> usize {
        let t = self.tail;
        let count = self.count();
        let mut end = t + 1 + count;
        for _ in 0..count {
            end += entry_len(&self.bytes[end..]);
        }
        end
    }

    /// Bytes before the tail: the name, or the first label and the parent reference.
    pub(crate) fn name_len(self) -> usize {
        self.tail
    }

    pub(crate) fn flags(self) -> u8 {
        self.bytes[self.tail] >> 4
    }

    fn count(self) -> usize {
        usize::from(self.bytes[self.tail] & 0x0F)
    }

    /// The `(qtype, entry)` pairs of this name, the one ANY gets first; an entry starting
    /// with [`LINK`] is a link.
    pub(crate) fn types(self) -> impl Iterator<Item = (u16, &'a [u8])> {
        let t = self.tail;
        let count = self.count();
        let mut start = t + 1 + count;
        (0..count).map(move |k| {
            let qtype = u16::from(self.bytes[t + 1 + k]);
            let len = entry_len(&self.bytes[start..]);
            let answer = &self.bytes[start..start + len];
            start += len;
            (qtype, answer)
        })
    }

    fn answer(self, qtype: u16) -> Option<&'a [u8]> {
        let t = self.tail;
        let head = self.bytes[t];
        let count = usize::from(head & 0x0F);
        let table = &self.bytes[t + 1..t + 1 + count];
        let k = if (head >> 4) & FLAG_CNAME != 0 || qtype == crate::RType::ANY.0 {
            // RFC 1034 §3.6.2: a CNAME owner has no other data; every type gets the CNAME.
            // RFC 8482 §4.1: ANY gets one RRset, the first.
            (count > 0).then_some(0)?
        } else {
            // No stored type is 256 or above.
            let want = u8::try_from(qtype).ok()?;
            table.iter().position(|&e| e == want)?
        };
        let mut rest = &self.bytes[t + 1 + count..];
        for _ in 0..k {
            rest = rest.get(entry_len(rest)..)?;
        }
        rest.get(..entry_len(rest))
    }
}

// === impl NodeBuf ===

impl NodeBuf {
    /// A node from its bytes (as [`NodeBuf::write`] leaves them).
    pub(crate) fn new(node: &[u8]) -> Self {
        Self(node.into())
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// [`NodeBuf::write`] into `blob` (a reused buffer), then boxed.
    #[cfg(test)]
    pub(crate) fn encode(
        name: &[u8],
        flags: u8,
        types: &[(u16, usize, usize)],
        first: usize,
        body: &[u8],
        blob: &mut Vec<u8>,
    ) -> Self {
        Self::write(name, flags, types, first, body, blob);
        Self::new(blob)
    }

    /// Encodes a node into `blob` (cleared first): `types` holds `(qtype, start, end)`: the
    /// answer of `qtype` is `body[start..end]`; `types[first]` goes first (the answer to ANY).
    pub(crate) fn write(
        wire: &[u8],
        flags: u8,
        types: &[(u16, usize, usize)],
        first: usize,
        body: &[u8],
        blob: &mut Vec<u8>,
    ) {
        let head = 1 + wire.len() + 1 + types.len();
        blob.clear();
        blob.reserve(head + body.len());
        blob.push(wire.len() as u8);
        blob.extend_from_slice(wire);
        debug_assert!(
            flags < 16 && types.len() < 16,
            "flags and count share a byte"
        );
        blob.push(flags << 4 | types.len() as u8);
        let order = || {
            types.get(first).into_iter().chain(
                types
                    .iter()
                    .enumerate()
                    .filter(move |(k, _)| *k != first)
                    .map(|(_, t)| t),
            )
        };
        for &(qtype, _, _) in order() {
            blob.push(u8::try_from(qtype).expect("every type records.rs makes is below 256"));
        }
        for &(_, start, stop) in order() {
            blob.extend_from_slice(&body[start..stop]);
        }
    }
}

// === impl NodeBatch ===

impl NodeBatch {
    /// Appends a node (bytes as [`NodeBuf::write`] leaves them).
    pub(crate) fn push(&mut self, node: &[u8]) {
        debug_assert_eq!(Node::encoded(node).len(), node.len(), "one whole node");
        self.bytes.extend_from_slice(node);
        self.count += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Appends a node of `len` bytes written by `write` (bytes as [`NodeBuf::write`] leaves
    /// them), without a buffer of its own on the way.
    pub(crate) fn push_with(&mut self, len: usize, write: impl FnOnce(&mut Vec<u8>)) {
        self.bytes.reserve(len);
        let start = self.bytes.len();
        write(&mut self.bytes);
        debug_assert_eq!(
            self.bytes.len() - start,
            len,
            "the node's length as announced"
        );
        debug_assert_eq!(
            Node::encoded(&self.bytes[start..]).len(),
            len,
            "one whole node"
        );
        self.count += 1;
    }

    /// Empties the batch, keeping its buffer.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn iter(&self) -> impl Iterator<Item = Node<'_>> {
        let mut at = 0;
        std::iter::from_fn(move || {
            (at < self.bytes.len()).then(|| {
                let node = Node::encoded(&self.bytes[at..]);
                at += node.len();
                node
            })
        })
    }
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

/// A lookup's outcome with owned parts, comparable across snapshots (tests).
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Said {
    NotServed,
    Answer(Vec<u8>),
    NoData(Negative),
    NxDomain(Negative),
    Pod(IpAddr, u32),
}

#[cfg(test)]
impl ZoneSnapshot {
    /// [`ZoneSnapshot::lookup`] as a [`Said`].
    pub(crate) fn said(&self, qname: &[u8], qtype: u16) -> Said {
        match self.lookup(qname, qtype) {
            Lookup::NotServed => Said::NotServed,
            Lookup::Answer(a) => {
                let mut bytes = Vec::new();
                a.write_prepared(&mut bytes);
                Said::Answer(bytes)
            }
            Lookup::NoData(n) => Said::NoData(n.clone()),
            Lookup::NxDomain(n) => Said::NxDomain(n.clone()),
            Lookup::PodAddress { ip, ttl } => Said::Pod(ip, ttl),
        }
    }
}

mod footprint;
#[cfg(test)]
pub(crate) mod reference;
#[cfg(test)]
mod tests;
