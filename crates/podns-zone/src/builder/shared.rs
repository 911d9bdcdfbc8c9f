//! The builder's bookkeeping of shared names (`builder.rs`, "Fragments"): per name, how many
//! fragments make it exist and which hold records there.
//!
//! There is one entry per PTR owner (about one per endpoint), so the layout is what matters.
//! A map keyed by a boxed name spent a 16-byte key, a 24-byte value and an allocation of its
//! own per name (~48 bytes with the allocator's rounding): at 100k endpoints that was about
//! 4 MB more. A PTR owner is kept as its address ([`Key`]): 5 bytes instead of the 26 of
//! `d.c.b.a.in-addr.arpa` (17 instead of 74 in `ip6.arpa`), 2 MB less at 100k endpoints.
//!
//! IPv4 owners, most of the entries, are kept by their /24 ([`V4Owners`]): per /24 its last
//! octets sorted, and their 16-byte [`Shared`] alongside. A Service's endpoints are updated
//! in address order and crowd in a few /24s (a node's pod range, a StatefulSet's pods), so an
//! update walks a few blocks that stay in cache, where one hash table of every owner cost a
//! cache miss or two per address: `perf` put that table at 21 % of publishing a
//! 1,000-endpoint Service (`benches/update.rs`). Every other name (IPv6 owners, reverse-zone
//! non-terminals, zone-level names) is in one table of the 16-byte [`Shared`] and, in 8
//! bytes, the offset of its key, which lives in one buffer with the others.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::{FragId, FxMap};
use crate::snapshot::FxHasher;

/// A shared name's bookkeeping, 16 bytes (the usual single holder inline).
#[derive(Debug)]
pub(super) struct Shared {
    /// Fragments in which the name exists.
    pub(super) refs: u32,
    /// The holder when there is exactly one, else [`NO_HOLDER`].
    one: FragId,
    /// The holders, in fragment order, when there are several (rare: a thin pointer).
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer keeps the entry at 16 bytes; the extra allocation is rare"
    )]
    many: Option<Box<Vec<FragId>>>,
}

/// [`Shared::one`] when the name has no single holder.
const NO_HOLDER: FragId = FragId::MAX;

/// Every shared name with its [`Shared`].
#[derive(Debug, Default)]
pub(super) struct SharedNames {
    /// The PTR owners of IPv4 addresses.
    v4: V4Owners,
    /// Every other name as a [`Key`] (each of which ends itself), back to back.
    names: Vec<u8>,
    /// Bytes of `names` whose entries were removed.
    dead: usize,
    /// `(where the key is, bookkeeping)`, by the hash of the key.
    table: HashTable<(Slot, Shared)>,
}

/// The PTR owners of IPv4 addresses, by /24.
#[derive(Debug, Default)]
struct V4Owners {
    /// By the address's first three octets.
    blocks: FxMap<u32, V4Block>,
}

/// The owners of one /24: `lows` sorted, `shared[k]` the entry of `lows[k]` ([`VACANT`] if
/// removed). Two vectors, not one of pairs: a pair would pad the 1-byte octet to 8.
#[derive(Debug, Default)]
struct V4Block {
    lows: Vec<u8>,
    shared: Vec<Shared>,
    /// Entries not vacant.
    live: u16,
}

// === impl Shared ===

impl Default for Shared {
    fn default() -> Self {
        Self {
            refs: 0,
            one: NO_HOLDER,
            many: None,
        }
    }
}

impl Shared {
    /// Fragments with records or flags at the name, in fragment order.
    pub(super) fn holders(&self) -> &[FragId] {
        match (&self.many, self.one) {
            (Some(many), _) => many,
            (None, NO_HOLDER) => &[],
            (None, _) => std::slice::from_ref(&self.one),
        }
    }

    fn set_holders(&mut self, list: Vec<FragId>) {
        (self.one, self.many) = match *list {
            [] => (NO_HOLDER, None),
            [one] => (one, None),
            _ => (NO_HOLDER, Some(Box::new(list))),
        };
    }

    pub(super) fn remove_holder(&mut self, id: FragId) {
        if self.many.is_none() {
            if self.one == id {
                self.one = NO_HOLDER;
            }
            return;
        }
        let rest = self
            .holders()
            .iter()
            .copied()
            .filter(|h| *h != id)
            .collect();
        self.set_holders(rest);
    }

    pub(super) fn insert_holder(&mut self, at: usize, id: FragId) {
        if self.holders().is_empty() {
            self.one = id;
            return;
        }
        let mut all = self.holders().to_vec();
        all.insert(at, id);
        self.set_holders(all);
    }

    fn heap_size(&self) -> usize {
        self.many.as_ref().map_or(0, |m| {
            size_of::<Vec<FragId>>() + m.capacity() * size_of::<FragId>()
        })
    }
}

// === impl SharedNames ===

impl SharedNames {
    pub(super) fn get(&self, name: &[u8]) -> Option<&Shared> {
        let key = Key::of(name);
        if let Some(addr) = key.v4() {
            return self.v4.get(addr);
        }
        let (hash, key) = (hash(key.as_bytes()), key.as_bytes());
        let names = &self.names;
        self.table
            .find(hash, |(slot, _)| is_at(names, slot.0, key))
            .map(|(_, s)| s)
    }

    pub(super) fn get_mut(&mut self, name: &[u8]) -> Option<&mut Shared> {
        let key = Key::of(name);
        if let Some(addr) = key.v4() {
            return self.v4.get_mut(addr);
        }
        let (hash, key) = (hash(key.as_bytes()), key.as_bytes());
        let names = &self.names;
        self.table
            .find_mut(hash, |(slot, _)| is_at(names, slot.0, key))
            .map(|(_, s)| s)
    }

    /// The entry of `name`, added (empty) if missing; one probe either way.
    pub(super) fn get_or_insert(&mut self, name: &[u8]) -> &mut Shared {
        let key = Key::of(name);
        if let Some(addr) = key.v4() {
            return self.v4.get_or_insert(addr);
        }
        let name = key.as_bytes();
        let hash = hash(name);
        let Self { names, table, .. } = self;
        let entry = table.entry(
            hash,
            |(slot, _)| is_at(names, slot.0, name),
            |(slot, _)| slot.hash(names),
        );
        match entry {
            Entry::Occupied(entry) => &mut entry.into_mut().1,
            Entry::Vacant(entry) => {
                let slot = store(names, name);
                &mut entry.insert((slot, Shared::default())).into_mut().1
            }
        }
    }

    /// Applies `f` to the entry of `name` (added empty first if missing and `insert`; `None`
    /// without calling `f` if missing otherwise), then removes the entry if its `refs` are
    /// 0: one probe for what `get_or_insert`/`get_mut` and `remove` do in two.
    pub(super) fn update<R>(
        &mut self,
        name: &[u8],
        insert: bool,
        f: impl FnOnce(&mut Shared) -> R,
    ) -> Option<R> {
        self.update_key(Key::of(name), insert, f)
    }

    /// [`SharedNames::update`] of the PTR owner of `ip` (whose wire name the caller need not
    /// have parsed: the direct path knows the address).
    pub(super) fn update_owner<R>(
        &mut self,
        ip: IpAddr,
        insert: bool,
        f: impl FnOnce(&mut Shared) -> R,
    ) -> Option<R> {
        self.update_key(Key::owner(ip), insert, f)
    }

    fn update_key<R>(
        &mut self,
        key: Key<'_>,
        insert: bool,
        f: impl FnOnce(&mut Shared) -> R,
    ) -> Option<R> {
        if let Some(addr) = key.v4() {
            return self.v4.update(addr, insert, f);
        }
        let name = key.as_bytes();
        let hash = hash(name);
        let Self {
            names, table, dead, ..
        } = self;
        let eq = |(slot, _): &(Slot, Shared)| is_at(names, slot.0, name);
        let mut entry = if insert {
            match table.entry(hash, eq, |(slot, _)| slot.hash(names)) {
                Entry::Occupied(entry) => entry,
                Entry::Vacant(entry) => {
                    let slot = store(names, name);
                    entry.insert((slot, Shared::default()))
                }
            }
        } else {
            table.find_entry(hash, eq).ok()?
        };
        let out = f(&mut entry.get_mut().1);
        if entry.get().1.refs == 0 {
            entry.remove();
            *dead += name.len();
            self.compact_if_wasteful();
        }
        Some(out)
    }

    /// Removes the entry of `name`, if any.
    pub(super) fn remove(&mut self, name: &[u8]) {
        self.update(name, false, |s| s.refs = 0);
    }

    /// Rewrites `names` without removed names once they are half of it.
    fn compact_if_wasteful(&mut self) {
        if self.dead <= 4096 || self.dead * 2 <= self.names.len() {
            return;
        }
        let mut names = Vec::with_capacity(self.names.len() - self.dead);
        for (slot, _) in self.table.iter_mut() {
            *slot = store(&mut names, name_at(&self.names, slot.0));
        }
        self.names = names;
        self.dead = 0;
    }

    /// Heap bytes held.
    pub(super) fn heap_size(&self) -> usize {
        self.v4.heap_size()
            + self.names.capacity()
            + self.table.allocation_size()
            + self.table.iter().map(|(_, s)| s.heap_size()).sum::<usize>()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.table.len() + self.v4.len()
    }
}

// === impl V4Owners ===

impl V4Owners {
    fn get(&self, addr: u32) -> Option<&Shared> {
        let block = self.blocks.get(&(addr >> 8))?;
        let k = block.find(addr as u8)?;
        Some(&block.shared[k])
    }

    fn get_mut(&mut self, addr: u32) -> Option<&mut Shared> {
        let block = self.blocks.get_mut(&(addr >> 8))?;
        let k = block.find(addr as u8)?;
        Some(&mut block.shared[k])
    }

    fn get_or_insert(&mut self, addr: u32) -> &mut Shared {
        let block = self.blocks.entry(addr >> 8).or_default();
        let k = block.find_or_insert(addr as u8);
        &mut block.shared[k]
    }

    /// As [`SharedNames::update`].
    fn update<R>(
        &mut self,
        addr: u32,
        insert: bool,
        f: impl FnOnce(&mut Shared) -> R,
    ) -> Option<R> {
        let prefix = addr >> 8;
        let (block, k) = if insert {
            let block = self.blocks.entry(prefix).or_default();
            let k = block.find_or_insert(addr as u8);
            (block, k)
        } else {
            let block = self.blocks.get_mut(&prefix)?;
            let k = block.find(addr as u8)?;
            (block, k)
        };
        let out = f(&mut block.shared[k]);
        if block.shared[k].refs == 0 {
            block.vacate(k);
            if block.live == 0 {
                self.blocks.remove(&prefix);
            }
        }
        Some(out)
    }

    fn heap_size(&self) -> usize {
        self.blocks.capacity() * (size_of::<(u32, V4Block)>() + 1)
            + self
                .blocks
                .values()
                .map(|b| {
                    b.lows.capacity()
                        + b.shared.capacity() * size_of::<Shared>()
                        + b.shared.iter().map(Shared::heap_size).sum::<usize>()
                })
                .sum::<usize>()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.blocks.values().map(|b| usize::from(b.live)).sum()
    }
}

/// [`Shared::refs`] of a removed entry of a [`V4Block`] (a live entry's refs are far below).
const VACANT: u32 = u32::MAX;

impl V4Block {
    /// Where the live entry of `low` is.
    fn find(&self, low: u8) -> Option<usize> {
        let k = self.lows.binary_search(&low).ok()?;
        (self.shared[k].refs != VACANT).then_some(k)
    }

    /// Where `low` is, added (empty) if missing.
    fn find_or_insert(&mut self, low: u8) -> usize {
        // Updates come in address order: the new octet usually goes last.
        let k = if self.lows.last().is_none_or(|&last| last < low) {
            self.reserve();
            self.lows.push(low);
            self.shared.push(Shared::default());
            self.lows.len() - 1
        } else {
            match self.lows.binary_search(&low) {
                Ok(k) if self.shared[k].refs == VACANT => {
                    self.shared[k].refs = 0;
                    k
                }
                Ok(k) => return k,
                Err(k) => {
                    self.reserve();
                    self.lows.insert(k, low);
                    self.shared.insert(k, Shared::default());
                    k
                }
            }
        };
        self.live += 1;
        k
    }

    /// Removes the entry at `k`. It stays in place, vacant, until vacant entries are half
    /// of the block: a Service's addresses leave a /24 in address order, and removing each
    /// from the front moved the rest of the block each time (4 kB per address).
    fn vacate(&mut self, k: usize) {
        self.shared[k] = Shared {
            refs: VACANT,
            ..Shared::default()
        };
        self.live -= 1;
        let vacant = self.lows.len() - usize::from(self.live);
        if vacant > 8 && vacant * 2 > self.lows.len() && self.live > 0 {
            let mut keep = self.shared.iter().map(|s| s.refs != VACANT);
            self.lows.retain(|_| keep.next().expect("one per octet"));
            self.shared.retain(|s| s.refs != VACANT);
        }
    }

    /// Room for one more: double up to 8, then a quarter more (at least 8), as the other
    /// buffers of this table (a /24 holds at most 256). Sparse /24s are common (Service VIPs
    /// drawn from a /12, pods hashed over a large pod CIDR: 2–3 owners per /24 at 10k × 10 in
    /// a /9), and a first reservation of 8 spent 160 bytes on each such block.
    fn reserve(&mut self) {
        let len = self.lows.len();
        if len == self.lows.capacity() {
            let more = if len < 8 {
                len.max(1)
            } else {
                (len / 4).max(8)
            };
            self.lows.reserve_exact(more);
            self.shared.reserve_exact(more);
        }
    }
}

/// Tags of a packed PTR owner: no wire name starts with them (a label is at most 63 bytes).
const V4: u8 = 0xFF;
const V6: u8 = 0xFE;

/// A name as the table keeps it: the PTR owner of an address as [`V4`] or [`V6`] and the
/// address, any other name as it is. Packing is a function of the bytes, and only canonical
/// owners pack (decimal octets without leading zeros, lower-case nibbles), so two names never
/// share a key.
#[derive(Clone, Copy)]
enum Key<'a> {
    Packed([u8; 17], usize),
    Wire(&'a [u8]),
}

impl<'a> Key<'a> {
    fn of(name: &'a [u8]) -> Self {
        let mut packed = [0u8; 17];
        match pack(name, &mut packed) {
            Some(len) => Self::Packed(packed, len),
            None => Self::Wire(name),
        }
    }

    /// The key of the PTR owner of `ip`: what [`Key::of`] makes of its canonical owner name.
    fn owner(ip: IpAddr) -> Self {
        let mut packed = [0u8; 17];
        match ip {
            IpAddr::V4(v4) => {
                packed[0] = V4;
                packed[1..5].copy_from_slice(&v4.octets());
                Self::Packed(packed, 5)
            }
            IpAddr::V6(v6) => {
                packed[0] = V6;
                packed[1..].copy_from_slice(&v6.octets());
                Self::Packed(packed, 17)
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Packed(bytes, len) => &bytes[..*len],
            Self::Wire(name) => name,
        }
    }

    /// The address, if this is an IPv4 owner.
    fn v4(&self) -> Option<u32> {
        match *self {
            Self::Packed([V4, a, b, c, d, ..], 5) => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        }
    }
}

/// Packs `name` into `out` if it is the PTR owner of an address (`d.c.b.a.in-addr.arpa`, or
/// 32 nibbles then `ip6.arpa`); the packed length.
fn pack(name: &[u8], out: &mut [u8; 17]) -> Option<usize> {
    const V4_ZONE: &[u8] = b"\x07in-addr\x04arpa\x00";
    const V6_ZONE: &[u8] = b"\x03ip6\x04arpa\x00";
    if name.len() == 64 + V6_ZONE.len() && name.ends_with(V6_ZONE) {
        out[0] = V6;
        out[1..].fill(0);
        // The least significant nibble first.
        for k in 0..32 {
            let nibble = match name[2 * k..2 * k + 2] {
                [1, d @ b'0'..=b'9'] => d - b'0',
                [1, d @ b'a'..=b'f'] => d - b'a' + 10,
                _ => return None,
            };
            let i = 31 - k;
            out[1 + i / 2] |= if i % 2 == 0 { nibble << 4 } else { nibble };
        }
        return Some(17);
    }
    if name.len() > 4 * 4 + V4_ZONE.len() || !name.ends_with(V4_ZONE) {
        return None;
    }
    out[0] = V4;
    let mut p = 0;
    // The last octet first.
    for k in 0..4 {
        let len = *name.get(p)? as usize;
        let digits = name.get(p + 1..p + 1 + len)?;
        if !(1..=3).contains(&len) || (len > 1 && digits[0] == b'0') {
            return None;
        }
        let mut octet = 0u32;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            octet = octet * 10 + u32::from(d - b'0');
        }
        out[4 - k] = u8::try_from(octet).ok()?;
        p += 1 + len;
    }
    (name.len() == p + V4_ZONE.len()).then_some(5)
}

/// Where a table entry's key starts in `names`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot(u32);

impl Slot {
    /// The hash of the key held (for the table's growth).
    fn hash(self, names: &[u8]) -> u64 {
        hash(name_at(names, self.0))
    }
}

/// Appends `key` to `names`; its slot.
fn store(names: &mut Vec<u8>, key: &[u8]) -> Slot {
    if names.capacity() - names.len() < key.len() {
        // A quarter more, not double: this buffer is a few MB at 100k endpoints.
        names.reserve_exact(key.len().max(names.len() / 4));
    }
    let at = names.len() as u32;
    names.extend_from_slice(key);
    Slot(at)
}

fn hash(name: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    name.hash(&mut hasher);
    let h = hasher.finish();
    // Mixed down: FxHash leaves the low bits (the bucket) to the low bytes of the last word,
    // and the addresses of a packed key differ in its high bytes; unmixed, every PTR owner of
    // a /16 took one probe sequence and a full build took five times as long.
    (h ^ (h >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (h >> 29)
}

/// The key stored at `at`: a packed IPv6 address has its tag's length (IPv4 ones are kept in
/// [`V4Owners`], never here), and wire names end with their root label, so the stored bytes
/// delimit themselves.
fn name_at(names: &[u8], at: u32) -> &[u8] {
    let start = at as usize;
    if names[start] == V6 {
        return &names[start..start + 17];
    }
    let mut end = start;
    while names[end] != 0 {
        end += 1 + names[end] as usize;
    }
    &names[start..=end]
}

/// Whether the key stored at `at` is `name` (a key): a prefix match is enough, since keys
/// end themselves (a wire name where its root label is), so no other key starts with all of
/// its bytes.
fn is_at(names: &[u8], at: u32, name: &[u8]) -> bool {
    names.get(at as usize..at as usize + name.len()) == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Name;
    use std::net::Ipv4Addr;

    fn wire(dotted: &str) -> Vec<u8> {
        Name::from_dotted(dotted).unwrap().as_wire().to_vec()
    }

    #[test]
    fn ptr_owners_are_kept_as_their_address_and_nothing_else_is() {
        let packed = |dotted: &str| {
            let mut out = [0u8; 17];
            pack(&wire(dotted), &mut out).map(|len| out[..len].to_vec())
        };
        assert_eq!(packed("4.3.2.10.in-addr.arpa"), Some(vec![V4, 10, 2, 3, 4]));
        assert_eq!(
            packed("255.0.0.0.in-addr.arpa"),
            Some(vec![V4, 0, 0, 0, 255])
        );
        let v6: std::net::IpAddr = "fd00::12:ab".parse().unwrap();
        let owner = crate::names::reverse(v6);
        let mut out = [0u8; 17];
        assert_eq!(pack(owner.as_wire(), &mut out), Some(17));
        let std::net::IpAddr::V6(v6) = v6 else {
            unreachable!()
        };
        assert_eq!(out[0], V6);
        assert_eq!(out[1..], v6.octets());
        // Not an address's owner, or not in canonical form: kept as the name.
        for other in [
            "3.2.10.in-addr.arpa",
            "04.3.2.10.in-addr.arpa",
            "256.3.2.10.in-addr.arpa",
            "x.3.2.10.in-addr.arpa",
            "5.4.3.2.10.in-addr.arpa",
            "in-addr.arpa",
            "a.svc.cluster.local",
        ] {
            assert_eq!(packed(other), None, "{other}");
        }
        let mut upper = owner.as_wire().to_vec();
        upper[..64].make_ascii_uppercase();
        assert_eq!(pack(&upper, &mut out), None, "upper-case nibbles");
        // Packed and unpacked names live side by side, each its own entry.
        let mut shared = SharedNames::default();
        let names = [
            "4.3.2.10.in-addr.arpa",
            "04.3.2.10.in-addr.arpa",
            "3.2.10.in-addr.arpa",
            "svc.cluster.local",
        ];
        for (i, n) in names.iter().enumerate() {
            shared.get_or_insert(&wire(n)).refs = i as u32 + 1;
        }
        shared.get_or_insert(owner.as_wire()).refs = 9;
        for (i, n) in names.iter().enumerate() {
            assert_eq!(shared.get(&wire(n)).unwrap().refs, i as u32 + 1, "{n}");
        }
        assert_eq!(shared.get(owner.as_wire()).unwrap().refs, 9);
        assert!(shared.get(&wire("5.3.2.10.in-addr.arpa")).is_none());
    }

    #[test]
    fn ipv4_owners_are_kept_by_their_24_in_any_order_of_changes() {
        let mut shared = SharedNames::default();
        let ip = |i: u32| Ipv4Addr::from(0x0A00_0000 + i);
        let owner = |i: u32| crate::names::reverse(ip(i).into()).as_wire().to_vec();
        // Not in address order: blocks insert in the middle too.
        let order: Vec<u32> = (0..5000).map(|i| (i * 2_981) % 5000).collect();
        for &i in &order {
            shared.get_or_insert(&owner(i)).refs = i + 1;
        }
        assert!(
            shared.names.is_empty(),
            "no IPv4 owner needs the name buffer"
        );
        assert_eq!(shared.v4.blocks.len(), 5000usize.div_ceil(256));
        for &i in order.iter().filter(|i| *i % 2 == 0) {
            // By name or by address: the same entry.
            let gone = if i % 4 == 0 {
                shared.update(&owner(i), false, |s| s.refs = 0)
            } else {
                shared.update_owner(ip(i).into(), false, |s| s.refs = 0)
            };
            assert_eq!(gone, Some(()));
        }
        assert_eq!(shared.len(), 2500);
        for i in 0..5000 {
            let found = shared.get(&owner(i)).map(|s| s.refs);
            assert_eq!(found, (i % 2 == 1).then_some(i + 1), "{i}");
        }
        // A missing owner is not added unless asked.
        assert_eq!(shared.update_owner(ip(0).into(), false, |_| ()), None);
        assert!(shared.get(&owner(0)).is_none());
        shared
            .update_owner(ip(0).into(), true, |s| s.refs = 3)
            .unwrap();
        assert_eq!(shared.get(&owner(0)).unwrap().refs, 3);
        // An emptied /24 is dropped.
        for i in (256..512).filter(|i| i % 2 == 1) {
            shared.remove(&owner(i));
        }
        assert_eq!(shared.v4.blocks.len(), 5000usize.div_ceil(256) - 1);
        assert!(shared.v4.blocks.values().all(|b| b.lows.is_sorted()));
        // Vacant entries are reused and compacted away: a /24 emptied from its front and
        // refilled stays one block of at most 256 entries.
        for round in 0..3u32 {
            for i in 1024..1280 {
                shared
                    .update_owner(ip(i).into(), true, |s| s.refs = round + 1)
                    .unwrap();
            }
            for i in 1024..1280 {
                assert_eq!(shared.get(&owner(i)).unwrap().refs, round + 1);
            }
            for i in (1024..1280).filter(|i| i % 3 != 0) {
                shared.remove(&owner(i));
            }
            let block = &shared.v4.blocks[&((0x0A00_0000u32 + 1024) >> 8)];
            assert!(block.lows.len() <= 256 && block.lows.is_sorted());
            assert_eq!(
                usize::from(block.live),
                (1024..1280).filter(|i| i % 3 == 0).count()
            );
            for i in 1024..1280 {
                assert_eq!(shared.get(&owner(i)).is_some(), i % 3 == 0, "{i}");
            }
        }
        // An owner and a name that is not one live side by side.
        shared.get_or_insert(&wire("1.0.10.in-addr.arpa")).refs = 7;
        assert_eq!(shared.get(&wire("1.0.10.in-addr.arpa")).unwrap().refs, 7);
        assert_eq!(shared.get(&owner(1)).unwrap().refs, 2);
        // An IPv6 owner by name and by address.
        let v6: std::net::IpAddr = "fd00::12:ab".parse().unwrap();
        shared.update_owner(v6, true, |s| s.refs = 5).unwrap();
        let v6_owner = crate::names::reverse(v6);
        assert_eq!(shared.get(v6_owner.as_wire()).unwrap().refs, 5);
    }

    #[test]
    fn entries_are_found_by_name_and_survive_compaction() {
        let mut shared = SharedNames::default();
        let names: Vec<Vec<u8>> = (0..2000)
            .map(|i| wire(&format!("{i}.0.10.in-addr.arpa")))
            .collect();
        for (i, n) in names.iter().enumerate() {
            let e = shared.get_or_insert(n);
            e.refs += i as u32;
            e.insert_holder(0, i as FragId);
        }
        // A name that is a prefix of another in bytes is still its own entry.
        assert!(shared.get(&wire("0.10.in-addr.arpa")).is_none());
        // Two of three removed: the buffer is compacted on the way.
        let mut compacted = false;
        for n in names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 1)
            .map(|(_, n)| n)
        {
            let before = shared.dead;
            shared.remove(n);
            shared.remove(n);
            compacted |= shared.dead < before;
        }
        assert!(compacted);
        assert_eq!(shared.len(), 667);
        for (i, n) in names.iter().enumerate() {
            match shared.get(n) {
                Some(e) => {
                    assert_eq!(i % 3, 1);
                    assert_eq!(e.refs, i as u32);
                    assert_eq!(e.holders(), &[i as FragId]);
                }
                None => assert_ne!(i % 3, 1),
            }
        }
        let e = shared.get_mut(&names[1]).unwrap();
        e.insert_holder(0, 7);
        e.insert_holder(2, 9);
        assert_eq!(shared.get(&names[1]).unwrap().holders(), &[7, 1, 9]);
        shared.get_mut(&names[1]).unwrap().remove_holder(1);
        assert_eq!(shared.get(&names[1]).unwrap().holders(), &[7, 9]);
    }
}
