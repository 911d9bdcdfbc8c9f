//! The builder's bookkeeping of shared names (`builder.rs`, "Fragments"): per name, how many
//! fragments make it exist and which hold records there.
//!
//! There is one entry per PTR owner (about one per endpoint), so the layout is what matters:
//! the names live back to back in one buffer and the table holds a 4-byte offset and the
//! 16-byte [`Shared`] inline. A map keyed by a boxed name spent a 16-byte key, a 24-byte value
//! and an allocation of its own per name (~48 bytes with the allocator's rounding): at 100k
//! endpoints that was about 4 MB more.

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::FragId;
use crate::snapshot::FxHasher;
use std::hash::{Hash, Hasher};

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
    /// The names (wire form, which ends itself), back to back.
    names: Vec<u8>,
    /// Bytes of `names` whose entries were removed.
    dead: usize,
    /// `(offset in names, bookkeeping)`, by the hash of the name.
    table: HashTable<(u32, Shared)>,
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
        let names = &self.names;
        self.table
            .find(hash(name), |(at, _)| is_at(names, *at, name))
            .map(|(_, s)| s)
    }

    pub(super) fn get_mut(&mut self, name: &[u8]) -> Option<&mut Shared> {
        let names = &self.names;
        self.table
            .find_mut(hash(name), |(at, _)| is_at(names, *at, name))
            .map(|(_, s)| s)
    }

    /// The entry of `name`, added (empty) if missing; one probe either way (this table is
    /// a few MB, so each probe is a cache miss or two).
    pub(super) fn get_or_insert(&mut self, name: &[u8]) -> &mut Shared {
        let hash = hash(name);
        let Self { names, table, .. } = self;
        let entry = table.entry(
            hash,
            |(at, _)| is_at(names, *at, name),
            |(at, _)| self::hash(name_at(names, *at)),
        );
        match entry {
            Entry::Occupied(entry) => &mut entry.into_mut().1,
            Entry::Vacant(entry) => {
                if names.capacity() - names.len() < name.len() {
                    // A quarter more, not double: this buffer is a few MB at 100k endpoints.
                    names.reserve_exact(name.len().max(names.len() / 4));
                }
                let at = names.len() as u32;
                names.extend_from_slice(name);
                &mut entry.insert((at, Shared::default())).into_mut().1
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
        let hash = hash(name);
        let Self { names, table, dead } = self;
        let eq = |(at, _): &(u32, Shared)| is_at(names, *at, name);
        let mut entry = if insert {
            match table.entry(hash, eq, |(at, _)| self::hash(name_at(names, *at))) {
                Entry::Occupied(entry) => entry,
                Entry::Vacant(entry) => {
                    if names.capacity() - names.len() < name.len() {
                        names.reserve_exact(name.len().max(names.len() / 4));
                    }
                    let at = names.len() as u32;
                    names.extend_from_slice(name);
                    entry.insert((at, Shared::default()))
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

    pub(super) fn remove(&mut self, name: &[u8]) {
        let names = &self.names;
        if let Ok(entry) = self
            .table
            .find_entry(hash(name), |(at, _)| is_at(names, *at, name))
        {
            entry.remove();
            self.dead += name.len();
            self.compact_if_wasteful();
        }
    }

    /// Rewrites `names` without removed names once they are half of it.
    fn compact_if_wasteful(&mut self) {
        if self.dead <= 4096 || self.dead * 2 <= self.names.len() {
            return;
        }
        let mut names = Vec::with_capacity(self.names.len() - self.dead);
        for (at, _) in self.table.iter_mut() {
            let name = name_at(&self.names, *at);
            *at = names.len() as u32;
            names.extend_from_slice(name);
        }
        self.names = names;
        self.dead = 0;
    }

    /// Heap bytes held.
    pub(super) fn heap_size(&self) -> usize {
        self.names.capacity()
            + self.table.allocation_size()
            + self.table.iter().map(|(_, s)| s.heap_size()).sum::<usize>()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }
}

fn hash(name: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    name.hash(&mut hasher);
    hasher.finish()
}

/// The name stored at `at`: wire names end with their root label, so the stored bytes
/// delimit themselves.
fn name_at(names: &[u8], at: u32) -> &[u8] {
    let start = at as usize;
    let mut end = start;
    while names[end] != 0 {
        end += 1 + names[end] as usize;
    }
    &names[start..=end]
}

/// Whether the name stored at `at` is `name`: a prefix match is enough, since a wire name's
/// labels end where its root label is, so no other name starts with all of its bytes.
fn is_at(names: &[u8], at: u32, name: &[u8]) -> bool {
    names.get(at as usize..at as usize + name.len()) == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Name;

    fn wire(dotted: &str) -> Vec<u8> {
        Name::from_dotted(dotted).unwrap().as_wire().to_vec()
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
