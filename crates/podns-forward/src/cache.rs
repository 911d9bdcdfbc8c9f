//! The answer cache: upstream responses by question, bounded by entries and by bytes, evicting
//! the least recently used.
//!
//! This module is responsible for holding, finding, ageing out and evicting entries; it does
//! not decide what is cacheable or for how long (the forwarder does, by RFC 2308 and the
//! configured caps) and it never touches message bytes.
//!
//! Why hand-written instead of the `lru` crate (0.19, maintained): we need a byte budget beside
//! the entry count, and a doubly linked list over slab indices is ~100 lines of safe code,
//! where `lru` is a raw-pointer list (its `IterMut` had a soundness advisory in 2025–26) under
//! a workspace that denies `unsafe`. CoreDNS's cache evicts a random entry of a full shard;
//! LRU keeps the hot names, which for a forwarder are most of the traffic.
//!
//! Keys are lower-cased query names chosen by clients, so the map keeps std's SipHash
//! (`RandomState`), which resists hash flooding.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::message::Response;

/// Bytes charged per entry on top of the message: key, slot, map bucket, `Arc`, offsets
/// vector header. An estimate; it only needs to be the right size.
const ENTRY_OVERHEAD: usize = 160;

/// What an answer is cached under: the question and the bits that change the answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// Lower-cased question name, wire form.
    pub(crate) name: Box<[u8]>,
    /// QTYPE.
    pub(crate) qtype: u16,
    /// QCLASS.
    pub(crate) qclass: u16,
    /// DO (RRSIGs present or not) and CD (validation disabled or not).
    pub(crate) dnssec_ok: bool,
    /// Checking disabled.
    pub(crate) checking_disabled: bool,
}

/// A cached response and its lifetime.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The response, shared with readers rendering it outside the lock.
    pub(crate) response: Arc<Response>,
    /// When it was received.
    pub(crate) stored: Instant,
    /// When it stops being served.
    pub(crate) expires: Instant,
    /// The lifetime in whole seconds: no TTL sent from it exceeds this minus its age.
    pub(crate) ttl_cap: u32,
}

const NIL: u32 = u32::MAX;

/// One slot of the slab: an entry and its neighbours in recency order.
#[derive(Debug)]
struct Slot {
    key: Key,
    entry: Entry,
    size: usize,
    /// Towards the most recently used.
    prev: u32,
    /// Towards the least recently used.
    next: u32,
}

/// A bounded LRU map from [`Key`] to [`Entry`].
pub(crate) struct Cache {
    map: HashMap<Key, u32>,
    slots: Vec<Option<Slot>>,
    /// Indices of empty slots, reused before the slab grows.
    free: Vec<u32>,
    /// Most recently used, or `NIL`.
    head: u32,
    /// Least recently used, or `NIL`.
    tail: u32,
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
}

// === impl Cache ===

/// Sizes only: a `Forwarder`'s `Debug` must not print every cached message.
impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.map.len())
            .field("bytes", &self.bytes)
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Cache {
    /// An empty cache of at most `capacity` entries and `max_bytes` bytes.
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            map: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
            max_bytes,
            bytes: 0,
        }
    }

    /// The live entry for `key`, marked most recently used; an expired one is removed.
    pub(crate) fn get(&mut self, key: &Key, now: Instant) -> Option<Entry> {
        let i = *self.map.get(key)?;
        let expired = self.slot(i).entry.expires <= now;
        if expired {
            self.remove(i);
            return None;
        }
        self.unlink(i);
        self.push_front(i);
        Some(self.slot(i).entry.clone())
    }

    /// Inserts or replaces, then evicts from the cold end until both bounds hold. An entry
    /// bigger than the whole byte budget is not stored.
    pub(crate) fn insert(&mut self, key: Key, entry: Entry) {
        let size = ENTRY_OVERHEAD
            + key.name.len()
            + entry.response.msg.len()
            + entry.response.ttl_offsets.len() * 2;
        if self.capacity == 0 || size > self.max_bytes {
            return;
        }
        if let Some(&i) = self.map.get(&key) {
            self.remove(i);
        }
        let slot = Slot {
            key: key.clone(),
            entry,
            size,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, i);
        self.bytes += size;
        self.push_front(i);
        while self.map.len() > self.capacity || self.bytes > self.max_bytes {
            let t = self.tail;
            if t == NIL || t == i {
                break;
            }
            self.remove(t);
        }
    }

    /// Number of entries (expired ones included until touched or evicted).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes charged.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn slot(&self, i: u32) -> &Slot {
        self.slots[i as usize]
            .as_ref()
            .expect("linked index refers to a filled slot")
    }

    fn slot_mut(&mut self, i: u32) -> &mut Slot {
        self.slots[i as usize]
            .as_mut()
            .expect("linked index refers to a filled slot")
    }

    fn remove(&mut self, i: u32) {
        self.unlink(i);
        if let Some(slot) = self.slots[i as usize].take() {
            self.map.remove(&slot.key);
            self.bytes -= slot.size;
            self.free.push(i);
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = self.slot(i);
            (s.prev, s.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slot_mut(p).next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slot_mut(n).prev = prev,
        }
        let s = self.slot_mut(i);
        s.prev = NIL;
        s.next = NIL;
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let s = self.slot_mut(i);
            s.prev = NIL;
            s.next = old;
        }
        match old {
            NIL => self.tail = i,
            o => self.slot_mut(o).prev = i,
        }
        self.head = i;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(n: u8) -> Key {
        Key {
            name: vec![1, n, 0].into(),
            qtype: 1,
            qclass: 1,
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    fn entry(now: Instant, len: usize) -> Entry {
        Entry {
            response: Arc::new(Response {
                msg: vec![0; len],
                ttl_offsets: Vec::new(),
                question_end: 12,
                additional_at: 12,
                rcode: 0,
                ancount: 0,
                min_ttl: None,
                soa_negative_ttl: None,
            }),
            stored: now,
            expires: now + Duration::from_secs(60),
            ttl_cap: 60,
        }
    }

    #[test]
    fn evicts_least_recently_used() {
        let now = Instant::now();
        let mut c = Cache::new(3, usize::MAX);
        for n in 0..3 {
            c.insert(key(n), entry(now, 20));
        }
        assert!(c.get(&key(0), now).is_some()); // 0 is now the most recent; 1 the coldest
        c.insert(key(3), entry(now, 20));
        assert_eq!(c.len(), 3);
        assert!(c.get(&key(1), now).is_none());
        for n in [0, 2, 3] {
            assert!(c.get(&key(n), now).is_some(), "{n} kept");
        }
    }

    #[test]
    fn byte_budget_and_replacement() {
        let now = Instant::now();
        let one = ENTRY_OVERHEAD + 3 + 100;
        let mut c = Cache::new(100, 2 * one);
        c.insert(key(0), entry(now, 100));
        c.insert(key(1), entry(now, 100));
        assert_eq!((c.len(), c.bytes()), (2, 2 * one));
        c.insert(key(1), entry(now, 100)); // replace: no growth, nothing evicted
        assert_eq!((c.len(), c.bytes()), (2, 2 * one));
        c.insert(key(2), entry(now, 100));
        assert_eq!((c.len(), c.bytes()), (2, 2 * one));
        assert!(c.get(&key(0), now).is_none());
        c.insert(key(3), entry(now, 10_000)); // bigger than the budget: not stored
        assert!(c.get(&key(3), now).is_none());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn expired_entries_are_removed_on_lookup_and_slots_reused() {
        let now = Instant::now();
        let mut c = Cache::new(10, usize::MAX);
        c.insert(key(0), entry(now, 10));
        assert!(c.get(&key(0), now + Duration::from_secs(61)).is_none());
        assert_eq!((c.len(), c.bytes()), (0, 0));
        c.insert(key(1), entry(now, 10));
        assert_eq!(c.slots.len(), 1);
        assert_eq!(c.head, c.tail);
    }
}
