//! Incremental zone building: one long-lived [`ZoneBuilder`] turns cluster changes into
//! snapshots, rebuilding only the names a change touches (design decision 3).
//!
//! The builder is responsible for *which* prepared names a change invalidates; the record rules
//! stay in `records.rs` (restated for headless Services by `builder/direct.rs`, held to them by
//! the property tests), the wire form in `answer.rs` and the read side in `snapshot.rs`.
//!
//! # Fragments
//! The zone is the union of *fragments*, each computed by `records.rs` from one part of the
//! cluster: the apex records (SOA, NS, `ns.dns`, `dns-version`, `svc.<zone>`), the namespaces,
//! each Service, and the pods (`pods verified`). A fragment keeps only its source (a Service's
//! view stripped to what DNS reads), not its records: the records are recomputed from the
//! source when the fragment changes, which costs as much as the change itself and keeps the
//! writer side small.
//!
//! Every name a fragment makes exist (owners, listed names and their ancestors up to the apex,
//! RFC 8020 §2) is either
//! - *private*: at or below the Service's own name (`<svc>.<ns>.svc.<zone>`). No other
//!   fragment can produce such a name (services' subtrees are disjoint, and no zone-level name
//!   lies inside one), so its prepared entry is rebuilt from this fragment alone. All of a
//!   Service's private names share one shard (`snapshot.rs`, groups), so a changed Service
//!   encodes them into one batch and rewrites that shard once, at exact size; or
//! - *shared*: everything else (`<ns>.svc.<zone>`, the apex, PTR owners, reverse-zone
//!   non-terminals, pod names). The builder counts, per shared name, how many fragments make it
//!   exist (`refs`: existence, NXDOMAIN vs NODATA) and which hold records or flags there
//!   (`holders`, in fragment order; `builder/shared.rs` keeps this packed, as there is one per
//!   PTR owner). A shared name is rebuilt when its existence or a
//!   holder's contribution changes; records of several holders (a PTR owner whose address two
//!   Services share) are merged in fragment order, as a full build orders them.
//!
//! When served zones nest (a cluster domain inside another, or inside a reverse zone) the
//! subtrees are no longer disjoint; then every name is treated as shared, which is slower but
//! still exact.
//!
//! # The direct path
//! A headless Service (the one kind that grows to thousands of names) skips records
//! altogether when its subtree is private (`builder/direct.rs`): its own names are encoded
//! straight from the view into its shard's batch, and its shared names (PTR owners, their
//! ancestors, its name's ancestors) are diffed as sorted address lists against the previous
//! version's, read from the packed source, and written a shard at a time. Anything that path
//! does not cover (other kinds, names over the limits, labels that could meet `_<proto>`
//! names, nested zones) goes through records as above; both leave the same bookkeeping, so a
//! Service may move between them from one update to the next.
//!
//! # Publishing
//! [`ZoneBuilder::snapshot`] bumps the serial (so the apex SOA entries and the per-zone negative
//! answers are rebuilt, a handful of names), rebuilds the shared names left pending, and hands
//! out a [`ZoneSnapshot`] that shares every untouched shard with the previous one.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use podns_view::{ClusterView, PodView, ServiceKey, ServiceView};

use self::compact::Compact;
use self::direct::Direct;
use self::shared::{Shared, SharedNames};
use crate::answer::{Negative, PreparedAnswer, Preparing, write_name, write_tail_with};
use crate::names::{self, Name};
use crate::records::{self, LocalName, NameMap, RData, RRset, RType, Records, Skipped, Zones};
use crate::snapshot::{
    BLOCK, FLAG_CNAME, FLAG_INSECURE_PODS, FxHasher, NodeBatch, NodeBuf, SHARDS, ServedZone, Shard,
    Shards, ZoneSnapshot, shard_index, unix_serial, write_link, zone_of,
};

/// Maps and sets of the builder: keys are cluster data, so FxHash is safe and much cheaper
/// than SipHash here.
type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;
type FxSet<K> = HashSet<K, std::hash::BuildHasherDefault<FxHasher>>;
use crate::{PodMode, ZoneConfig};

/// A set of shard indexes, a bit each: 512 bytes for all of them. A list of every write (how
/// the touched shards were kept) grew to 262,144 entries over standalone `serve`'s full build
/// at 10k Services × 10, half a megabyte reallocated late in the build, when the arena had no
/// hole left for it.
#[derive(Debug)]
struct ShardSet([u64; SHARDS / 64]);

impl Default for ShardSet {
    fn default() -> Self {
        Self([0; SHARDS / 64])
    }
}

impl ShardSet {
    fn insert(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    /// Every index in the set, ascending; the set is left empty.
    fn take(&mut self) -> impl Iterator<Item = usize> + use<> {
        let words = std::mem::take(self).0;
        words.into_iter().enumerate().flat_map(|(word, mut bits)| {
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    word * 64 + bit
                })
            })
        })
    }
}

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

/// Index of a fragment in [`ZoneBuilder::frags`].
type FragId = u32;

/// The writer side of a zone: the cluster as fragments, and the next snapshot's shards.
///
/// Owned by one task; feed it changes ([`ZoneBuilder::upsert_service`],
/// [`ZoneBuilder::remove_service`], [`ZoneBuilder::set_namespaces`], [`ZoneBuilder::set_pods`],
/// or a whole view with [`ZoneBuilder::replace_all`]), then publish with
/// [`ZoneBuilder::snapshot`]. Every snapshot answers exactly as [`crate::build`] of the same
/// view would (the equivalence property test in `builder/tests.rs`).
#[derive(Debug)]
pub struct ZoneBuilder {
    config: ZoneConfig,
    /// The parsed zones; `None` when no cluster domain is usable (nothing is served).
    ctx: Option<Ctx>,
    /// Zones of the configuration that could not be parsed.
    config_skipped: Vec<Skipped>,
    /// The serial of the last snapshot (0 before the first).
    serial: u32,
    /// Every fragment; `None` slots are free (listed in `free`).
    frags: Vec<Option<Fragment>>,
    free: Vec<FragId>,
    /// The fragment of each Service.
    /// (The key is shared with the fragment's [`Order`]: one copy per Service.)
    services: BTreeMap<Arc<ServiceKey>, FragId>,
    apex: FragId,
    namespaces: FragId,
    pods: FragId,
    /// Shared names: existence counts and record holders (one per PTR owner: `shared.rs`
    /// keeps them packed).
    shared: SharedNames,
    /// Shared names whose entry must be rebuilt before the next snapshot (several holders).
    pending: FxSet<Name>,
    /// The next snapshot's names; shards are shared with published snapshots until written.
    shards: Shards,
    names: usize,
    /// What the last snapshot reported as skipped; recomputed when a fragment's list changes.
    skipped: Arc<[Skipped]>,
    skipped_changed: bool,
    /// Reused buffer for packing Services ([`Compact`]).
    scratch: Vec<u8>,
    /// The apex fragment's records and names as last built: every snapshot replaces it (the
    /// serial), so keeping them spares recomputing the previous ones.
    apex_local: Option<Local>,
    /// The last other fragment changed through records, with its records and names as then
    /// built: a change usually comes in a burst for one Service, and its next change then
    /// needs no recomputing of what it replaces. Holds one fragment's records at most. (A
    /// Service on the direct path needs none: its previous PTRs are read from its source.)
    last_local: Option<(FragId, Local)>,
    /// Shards written since the last snapshot: trimmed to their size when it is published.
    dirty: ShardSet,
    /// Reused buffers of the direct encoding of a headless Service's own names.
    direct: Direct,
    direct_scratch: DirectScratch,
}

/// Buffers [`ZoneBuilder::replace_direct`] reuses across updates (a 1,000-endpoint Service's
/// batch is ~150 kB: grown anew each time, its reallocations were a tenth of an update).
#[derive(Debug, Default)]
struct DirectScratch {
    /// Names the previous and the new version make exist without records there.
    old_ents: NameList,
    new_ents: NameList,
    /// One per private root.
    batches: Vec<NodeBatch>,
    writes: NameList,
    blob: Vec<u8>,
    target: Vec<u8>,
    previous: Vec<u8>,
    bytes: Vec<u8>,
    bounds: Vec<u16>,
    body: Vec<u8>,
}

/// What the configuration makes of the zones.
#[derive(Debug)]
struct Ctx {
    zones: Zones,
    /// Served zones (those with an SOA), longest apex first; negatives are refreshed per
    /// snapshot (they carry the serial).
    served: Vec<ServedZone>,
    /// Served zones are disjoint, so Service subtrees are private to their fragment.
    private_subtrees: bool,
    /// The valid names of [`ZoneConfig::fallthrough`].
    fallthrough: Vec<Name>,
}

/// One part of the cluster and what it was last built from.
#[derive(Debug)]
struct Fragment {
    order: Order,
    source: Source,
    /// What the last build of this fragment left out.
    skipped: Vec<Skipped>,
}

/// Fragment order: the order in which a full build adds records, so merged RRsets list their
/// records alike.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Order {
    Apex,
    Namespaces,
    Service(Arc<ServiceKey>),
    Pods,
}

/// What a fragment is built from.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    /// The apex records at this serial.
    Apex(u32),
    Namespaces(Vec<String>),
    Service(Compact),
    Pods(Vec<PodView>),
    /// Nothing (a fragment that was removed or never set).
    Empty,
}

/// A fragment's records with every name they make exist.
#[derive(Debug, Default)]
struct Local {
    records: Records,
    names: NameMap<LocalName>,
}

// === impl ZoneBuilder ===

impl ZoneBuilder {
    /// A builder for `config` holding an empty cluster (the apex records only).
    pub fn new(config: ZoneConfig) -> Self {
        let mut config_skipped = Vec::new();
        let mut clusters = Vec::new();
        for zone in &config.cluster_domains {
            match Name::from_dotted(zone) {
                Ok(name) if !name.is_root() => clusters.push(name),
                Ok(_) => {}
                Err(reason) => config_skipped.push(Skipped {
                    what: format!("cluster domain {zone}"),
                    reason,
                }),
            }
        }
        let mut reverse = Vec::new();
        for zone in &config.reverse_zones {
            match names::reverse_zones(zone) {
                Ok(names) => reverse.extend(names.into_iter().filter(|n| !n.is_root())),
                Err(reason) => config_skipped.push(Skipped {
                    what: format!("reverse zone {zone}"),
                    reason,
                }),
            }
        }
        // The reverse zones' SOA names the primary cluster zone; without one nothing is served.
        let ctx = (!clusters.is_empty()).then(|| Ctx::new(&config, Zones { clusters, reverse }));
        let mut builder = Self {
            config,
            ctx,
            config_skipped,
            serial: 0,
            frags: Vec::new(),
            free: Vec::new(),
            services: BTreeMap::new(),
            apex: 0,
            namespaces: 1,
            pods: 2,
            shared: SharedNames::default(),
            pending: FxSet::default(),
            // Every shard starts as the same empty one; the first write copies it.
            shards: Arc::new(
                std::iter::repeat_n(
                    Arc::new(std::iter::repeat_n(Arc::new(Shard::default()), BLOCK).collect()),
                    SHARDS / BLOCK,
                )
                .collect(),
            ),
            names: 0,
            skipped: Arc::new([]),
            skipped_changed: true,
            scratch: Vec::new(),
            apex_local: None,
            last_local: None,
            dirty: ShardSet::default(),
            direct: Direct::default(),
            direct_scratch: DirectScratch::default(),
        };
        builder.apex = builder.alloc(Order::Apex);
        builder.namespaces = builder.alloc(Order::Namespaces);
        builder.pods = builder.alloc(Order::Pods);
        builder.replace(builder.apex, Source::Apex(0));
        builder
    }

    /// The configuration the zone is built with.
    pub fn config(&self) -> &ZoneConfig {
        &self.config
    }

    /// Makes the builder hold exactly `cluster`: Services not in it are removed, the others
    /// upserted (unchanged ones cost a comparison), namespaces and pods replaced. Services are
    /// identified by key; a view that lists one key twice keeps the last.
    pub fn replace_all(&mut self, cluster: &ClusterView) {
        self.set_namespaces(&cluster.namespaces);
        self.set_pods(&cluster.pods);
        let services = &cluster.services;
        let (changed, gone) = if services.is_sorted_by(|a, b| a.key < b.key) {
            // The usual case (views list Services in key order, each once): one walk over
            // both, one key comparison and one allocation-free source comparison per Service.
            let mut scratch = std::mem::take(&mut self.scratch);
            let mut changed: Vec<&ServiceView> = Vec::new();
            let mut gone: Vec<Arc<ServiceKey>> = Vec::new();
            let mut view = services.iter().peekable();
            for (key, &id) in &self.services {
                while let Some(svc) = view.next_if(|s| s.key < **key) {
                    changed.push(svc);
                }
                match view.next_if(|s| s.key == **key) {
                    Some(svc) if self.same_service(id, svc, &mut scratch) => {}
                    Some(svc) => changed.push(svc),
                    None => gone.push(key.clone()),
                }
            }
            changed.extend(view);
            self.scratch = scratch;
            (changed, gone)
        } else {
            let keep: HashSet<&ServiceKey> = services.iter().map(|s| &s.key).collect();
            let gone = self
                .services
                .keys()
                .filter(|k| !keep.contains(&***k))
                .cloned()
                .collect();
            (services.iter().collect(), gone)
        };
        for key in &gone {
            self.remove_service(key);
        }
        for svc in changed {
            self.upsert_service(svc);
        }
    }

    /// Whether fragment `id` was built from what `svc` packs to.
    fn same_service(&self, id: FragId, svc: &ServiceView, scratch: &mut Vec<u8>) -> bool {
        matches!(&self.frag(id).source, Source::Service(old) if old.same_as(&self.config, svc, scratch))
    }

    /// Adds or replaces one Service. Costs a comparison when DNS would not change (only the
    /// fields records are made from are compared), otherwise O(size of the old and new
    /// Service).
    pub fn upsert_service(&mut self, service: &ServiceView) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let existing = self.services.get(&service.key).copied();
        Compact::pack(&self.config, service, &mut scratch);
        let same = existing.is_some_and(|id| {
            matches!(&self.frag(id).source, Source::Service(old) if old.same_as_packed(service, &scratch))
        });
        let compact = (!same).then(|| Compact::from_packed(service, &scratch));
        self.scratch = scratch;
        let Some(compact) = compact else {
            return;
        };
        let id = match existing {
            Some(id) => id,
            None => {
                let key = Arc::new(service.key.clone());
                let id = self.alloc(Order::Service(Arc::clone(&key)));
                self.services.insert(key, id);
                id
            }
        };
        self.replace_with(id, Source::Service(compact), Some(service));
    }

    /// The keys of the Services the builder holds, in order.
    pub fn service_keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services.keys().map(|key| &**key)
    }

    /// Removes one Service (nothing happens for an unknown key).
    pub fn remove_service(&mut self, key: &ServiceKey) {
        let Some(id) = self.services.remove(key) else {
            return;
        };
        self.replace(id, Source::Empty);
        // The slot may be reused by another Service: nothing of this one is kept.
        self.last_local = None;
        self.frags[id as usize] = None;
        self.free.push(id);
    }

    /// Replaces the namespaces (`<ns>.svc.<zone>` exist for each; sorted and unique, as
    /// [`ClusterView::namespaces`]).
    pub fn set_namespaces(&mut self, namespaces: &[String]) {
        if matches!(&self.frag(self.namespaces).source, Source::Namespaces(n) if n == namespaces) {
            return;
        }
        self.replace(self.namespaces, Source::Namespaces(namespaces.to_vec()));
    }

    /// Replaces the pods (read under `pods verified` only; ignored, and not kept, otherwise).
    pub fn set_pods(&mut self, pods: &[PodView]) {
        if self.config.pods != PodMode::Verified
            || matches!(&self.frag(self.pods).source, Source::Pods(p) if p == pods)
        {
            return;
        }
        self.replace(self.pods, Source::Pods(pods.to_vec()));
    }

    /// Publishes the current state with the next serial: the current Unix time, or the last
    /// serial + 1 when the clock has not moved past it (so every snapshot's serial is larger
    /// than the previous one's).
    pub fn snapshot(&mut self) -> ZoneSnapshot {
        let now = unix_serial();
        let serial = if now > self.serial {
            now
        } else {
            self.serial.wrapping_add(1)
        };
        self.snapshot_with_serial(serial)
    }

    /// Publishes the current state with a given SOA serial.
    pub fn snapshot_with_serial(&mut self, serial: u32) -> ZoneSnapshot {
        self.serial = serial;
        if self.skipped_changed {
            self.skipped = self.collect_skipped().into();
            self.skipped_changed = false;
        }
        if self.ctx.is_none() {
            return ZoneSnapshot::empty(serial, self.skipped.to_vec());
        }
        // The SOA (at each apex and in every negative answer) carries the serial.
        self.replace(self.apex, Source::Apex(serial));
        self.rebuild_pending();
        self.trim_dirty();
        let ctx = self.ctx.as_mut().expect("checked above");
        let apex = &self
            .apex_local
            .as_ref()
            .expect("set by the replace above")
            .records;
        ctx.refresh_negatives(&self.config, apex);
        ZoneSnapshot {
            serial,
            zones: ctx.served.clone().into(),
            shards: self.shards.clone(),
            names: self.names,
            skipped: self.skipped.clone(),
            insecure_pod_ttl: (self.config.pods == PodMode::Insecure).then_some(self.config.ttl),
        }
    }

    /// Every RRset of the zone, for display (`podns get records`): apex first, then Services
    /// in key order, then pods; records several Services share are merged into one RRset.
    /// Computed from the fragments' sources (the snapshot keeps only wire answers).
    pub fn rrsets(&self) -> Vec<RRset> {
        let Some(ctx) = &self.ctx else {
            return Vec::new();
        };
        let mut out: Vec<RRset> = Vec::new();
        let mut index: HashMap<(Name, RType), usize> = HashMap::new();
        let order = std::iter::once(self.apex)
            .chain(self.services.values().copied())
            .chain(std::iter::once(self.pods));
        for id in order {
            for set in self.records_of(ctx, id).rrsets {
                match index.entry((set.name.clone(), set.rtype)) {
                    Entry::Occupied(e) => merge_into(&mut out[*e.get()], &set),
                    Entry::Vacant(e) => {
                        e.insert(out.len());
                        out.push(set);
                    }
                }
            }
        }
        out
    }

    /// Bytes the builder holds on the heap beyond its published shards (an estimate from the
    /// sizes of its collections and sources; see [`ZoneSnapshot::heap_size`] for the shards).
    pub fn heap_size(&self) -> usize {
        let string = |s: &String| s.capacity();
        let sources: usize = self
            .frags
            .iter()
            .flatten()
            .map(|f| {
                size_of::<Option<Fragment>>()
                    + match &f.source {
                        Source::Service(s) => s.heap_size(),
                        Source::Namespaces(n) => n.iter().map(string).sum(),
                        Source::Pods(p) => p.len() * size_of::<PodView>(),
                        Source::Apex(_) | Source::Empty => 0,
                    }
            })
            .sum();
        let keys: usize = self
            .services
            .keys()
            // The map's slot, the shared key (reference counts and strings).
            .map(|k| 48 + 16 + size_of::<ServiceKey>() + k.name.len() + k.namespace.len())
            .sum();
        let shared = self.shared.heap_size();
        sources + keys + shared + self.frags.capacity() * size_of::<Option<Fragment>>()
    }

    // --- fragments ---

    fn frag(&self, id: FragId) -> &Fragment {
        self.frags[id as usize].as_ref().expect("live fragment")
    }

    fn alloc(&mut self, order: Order) -> FragId {
        let frag = Fragment {
            order,
            source: Source::Empty,
            skipped: Vec::new(),
        };
        match self.free.pop() {
            Some(id) => {
                self.frags[id as usize] = Some(frag);
                id
            }
            None => {
                self.frags.push(Some(frag));
                (self.frags.len() - 1) as FragId
            }
        }
    }

    fn records_of(&self, ctx: &Ctx, id: FragId) -> Records {
        let frag = self.frag(id);
        source_records(&self.config, &ctx.zones, &frag.order, &frag.source)
    }

    /// Replaces fragment `id`'s source and updates every entry its old or new records touch.
    fn replace(&mut self, id: FragId, source: Source) {
        self.replace_with(id, source, None);
    }

    /// [`ZoneBuilder::replace`]; `view`, when given, is the Service `source` was packed from:
    /// its records are computed from it directly (the same records as from the packed form,
    /// which keeps exactly what they read), sparing the unpacking.
    fn replace_with(&mut self, id: FragId, source: Source, view: Option<&ServiceView>) {
        let cached = if id == self.apex {
            self.apex_local.take()
        } else {
            match self.last_local.take() {
                Some((last, local)) if last == id => Some(local),
                _ => None,
            }
        };
        let Some(ctx) = &self.ctx else {
            self.frags[id as usize].as_mut().expect("live").source = source;
            self.skipped_changed = true;
            return;
        };
        // (The fields, not `self.frag`: `self.direct` is borrowed mutably below.)
        let frag = self.frags[id as usize].as_ref().expect("live fragment");
        let roots = if ctx.private_subtrees {
            private_roots(&ctx.zones, &frag.order)
        } else {
            Vec::new()
        };
        // A headless Service's own names are encoded from its view directly (`direct.rs`);
        // when its previous version was one too (or nothing), so are its shared names.
        let root_len = roots.iter().map(|r| r.as_wire().len()).max().unwrap_or(0);
        let direct = match view {
            Some(svc) if !roots.is_empty() && roots.len() == ctx.zones.clusters.len() => {
                self.direct.plan(&self.config, svc, root_len)
            }
            _ => false,
        };
        if direct {
            // The previous version's PTRs, when the direct path covered it too (or nothing).
            let old_ptrs = &mut self.direct.old_ptrs;
            old_ptrs.clear();
            let covered = match &frag.source {
                Source::Empty => true,
                Source::Service(old) => {
                    old.direct_ptrs(&self.config, root_len, |ip, label| old_ptrs.push(ip, label))
                }
                _ => false,
            };
            if covered {
                old_ptrs.finish();
                self.replace_direct(id, source, &roots);
                return;
            }
        }
        let private = |name: &Name| roots.iter().any(|r| name.is_in(r));
        // With private subtrees, the old records are needed only outside them (the old private
        // names are in the shards), which spares rebuilding the Service's address and SRV sets.
        let mut old = match (cached, &frag.source, &frag.order) {
            (Some(local), _, _) => local,
            (None, Source::Service(svc), Order::Service(key)) if ctx.private_subtrees => {
                let records =
                    records::service_shared_records(&self.config, &ctx.zones, &svc.view(key));
                ctx.local(&self.config, records)
            }
            (None, _, _) => ctx.local(&self.config, self.records_of(ctx, id)),
        };
        // Direct, yet the previous version was not: its own names are encoded directly, its
        // shared names through records (which the next update then no longer needs).
        let mut new = ctx.local(
            &self.config,
            match view {
                Some(svc) if direct => {
                    records::service_shared_records(&self.config, &ctx.zones, svc)
                }
                Some(svc) => records::service_records(&self.config, &ctx.zones, svc),
                None => source_records(&self.config, &ctx.zones, &frag.order, &source),
            },
        );

        // Private names: this fragment alone decides them, so each root's shard is rewritten
        // with them in one pass (below) instead of node by node.
        let mut writes: Vec<(Name, Option<NodeBuf>)> = Vec::new();
        for root in &roots {
            let mut existed = false;
            self.names_under(ctx, root, |_| existed = true);
            if existed {
                // Whatever was below the root made it and its ancestors (shared) exist.
                ctx.mark(&mut old.names, root);
            }
        }
        let mut private_nodes: Vec<NodeBatch> =
            roots.iter().map(|_| NodeBatch::default()).collect();
        if direct {
            for (root, batch) in roots.iter().zip(&mut private_nodes) {
                self.direct.encode(root, batch);
                if !batch.is_empty() {
                    // The Service's name makes its ancestors (shared) exist.
                    ctx.mark(&mut new.names, root);
                }
            }
        } else {
            for (name, local) in new.names.iter() {
                let Some(k) = roots.iter().position(|r| name.is_in(r)) else {
                    continue;
                };
                let batch = &mut private_nodes[k];
                ctx.node_from_local_with(name, local, &new, true, |node| batch.push(node));
            }
        }

        // Shared names: counts, holders, and entries whose content changed.
        let mut touched: Vec<Name> = Vec::new();
        for (name, was) in old.names.iter().filter(|(n, _)| !private(n)) {
            let now = new.names.get(name);
            let same = now.is_some_and(|now| contribution_eq(&old, was, &new, now));
            if same {
                continue;
            }
            let entry = self
                .shared
                .get_mut(name.as_wire())
                .expect("counted when added");
            if now.is_none() {
                entry.refs -= 1;
            }
            if was.holds() {
                entry.remove_holder(id);
            }
            touched.push(name.clone());
        }
        for (name, now) in new.names.iter().filter(|(n, _)| !private(n)) {
            let was = old.names.get(name);
            if was.is_some_and(|was| contribution_eq(&old, was, &new, now)) {
                continue;
            }
            let entry = self.shared.get_or_insert(name.as_wire());
            if was.is_none() {
                entry.refs += 1;
            }
            if now.holds() {
                let frags = &self.frags;
                let order = |h: &FragId| &frags[*h as usize].as_ref().expect("live").order;
                let mine = order(&id);
                let at = entry.holders().partition_point(|h| order(h) < mine);
                entry.insert_holder(at, id);
            }
            // A name the old records had is touched already (the loop above): each name once.
            if was.is_none() {
                touched.push(name.clone());
            }
        }
        for name in touched {
            let entry = self.shared.get(name.as_wire()).expect("counted above");
            if entry.refs == 0 {
                self.shared.remove(name.as_wire());
                if !self.pending.is_empty() {
                    self.pending.remove(&name);
                }
                writes.push((name, None));
            } else if entry.holders().iter().all(|h| *h == id)
                && let Some(node) = ctx.shared_node_from(&self.config, &name, &new, entry, &|t| {
                    self.shared
                        .get(t.as_wire())
                        .is_some_and(|t| t.holders().iter().any(|h| *h != id))
                })
            {
                // Only this fragment holds records here: build now, from what is at hand.
                // (`pending` is empty but for updates that leave merges: no hashing then.)
                if !self.pending.is_empty() {
                    self.pending.remove(&name);
                }
                writes.push((name, Some(node)));
            } else {
                self.pending.insert(name);
            }
        }

        let frag = self.frags[id as usize].as_mut().expect("live");
        frag.source = source;
        if frag.skipped != new.records.skipped {
            frag.skipped = std::mem::take(&mut new.records.skipped);
            self.skipped_changed = true;
        }
        for (root, nodes) in roots.iter().zip(&private_nodes) {
            self.rewrite_under(root, nodes);
        }
        for (name, node) in writes {
            self.write(&name, node.as_ref());
        }
        if id == self.apex {
            self.apex_local = Some(new);
        } else {
            self.last_local = Some((id, new));
        }
    }

    /// [`ZoneBuilder::replace_with`] of a headless Service planned in `self.direct`, whose
    /// previous version the direct path covered too (its PTRs, read from its source, in
    /// `self.direct.old_ptrs`) or is nothing: its private names are encoded from the plan, its
    /// shared names (PTR owners, their ancestors, the ancestors of its names) are diffed
    /// against the previous version's without building records of either.
    fn replace_direct(&mut self, id: FragId, source: Source, roots: &[Name]) {
        let mut direct = std::mem::take(&mut self.direct);
        let ctx = self.ctx.as_ref().expect("only called with zones");
        let mut scratch = std::mem::take(&mut self.direct_scratch);
        let DirectScratch {
            old_ents,
            new_ents,
            batches,
            writes,
            blob,
            target,
            previous,
            bytes,
            bounds,
            body,
        } = &mut scratch;
        old_ents.clear();
        new_ents.clear();
        writes.clear();
        batches.resize_with(roots.len(), NodeBatch::default);
        batches.iter_mut().for_each(NodeBatch::clear);
        // Its own names, and the names that exist because they do: its name's ancestors.
        for (root, batch) in roots.iter().zip(batches.iter_mut()) {
            // Anything below the root makes the root exist: one probe, not a scan of its shard.
            let existed = self.stored(ctx, root.as_wire());
            direct.encode(root, batch);
            for (list, exists) in [
                (&mut *old_ents, existed),
                (&mut *new_ents, !batch.is_empty()),
            ] {
                if exists {
                    ctx.ancestors(root.as_wire(), None, |a| list.push(a));
                }
            }
        }
        // PTR owners (and their ancestors) whose records changed.
        let primary = roots[0].as_wire();
        direct.old_ptrs.mark_covered(|owner| ctx.covers_ptr(owner));
        direct.ptrs.mark_covered(|owner| ctx.covers_ptr(owner));
        let (old_ptrs, new_ptrs) = (&direct.old_ptrs, &direct.ptrs);
        // `writes`: written once the bookkeeping is done (writing needs the builder whole).
        for side in [old_ptrs, new_ptrs] {
            let list = if std::ptr::eq(side, old_ptrs) {
                &mut *old_ents
            } else {
                &mut *new_ents
            };
            previous.clear();
            for (_, wire, _, covered) in side.groups() {
                if !covered {
                    continue;
                }
                // Addresses come sorted: most share their parent (their /24) with the one
                // before, whose ancestors are listed already.
                let parent = &wire[1 + wire[0] as usize..];
                if !previous.is_empty() && previous[1 + previous[0] as usize..] == *parent {
                    continue;
                }
                ctx.ancestors(wire, Some(previous), |a| list.push(a));
                previous.clear();
                previous.extend_from_slice(wire);
            }
        }
        let mut old_groups = old_ptrs.groups().peekable();
        let mut new_groups = new_ptrs.groups().peekable();
        loop {
            let (ip, wire, covered, was, now) = match (old_groups.peek(), new_groups.peek()) {
                (None, None) => break,
                (Some(o), Some(n)) if o.0 == n.0 => {
                    let (o, n) = (
                        old_groups.next().expect("peeked"),
                        new_groups.next().expect("peeked"),
                    );
                    (o.0, o.1, o.3, o.2, n.2)
                }
                (Some(o), n) if n.is_none_or(|n| o.0 < n.0) => {
                    let o = old_groups.next().expect("peeked");
                    (o.0, o.1, o.3, o.2, &[][..])
                }
                _ => {
                    let n = new_groups.next().expect("peeked");
                    (n.0, n.1, n.3, &[][..], n.2)
                }
            };
            let same = was.len() == now.len()
                && was
                    .iter()
                    .zip(now)
                    .all(|(a, b)| old_ptrs.label(a) == new_ptrs.label(b));
            if same {
                continue;
            }
            if !covered {
                continue;
            }
            let frags = &self.frags;
            // One probe for the bookkeeping and, when no fragment makes the name exist any
            // more, its removal; by address, the owner's wire name is not parsed again.
            let held = self
                .shared
                .update_owner(ip, !now.is_empty(), |entry| {
                    if was.is_empty() {
                        entry.refs += 1;
                    } else {
                        entry.remove_holder(id);
                    }
                    if now.is_empty() {
                        entry.refs -= 1;
                    } else {
                        let order = |h: &FragId| &frags[*h as usize].as_ref().expect("live").order;
                        let mine = order(&id);
                        let at = entry.holders().partition_point(|h| order(h) < mine);
                        entry.insert_holder(at, id);
                    }
                    match entry.holders() {
                        _ if entry.refs == 0 => Held::Gone,
                        [] => Held::ByNone,
                        [one] if *one == id => Held::ByThis,
                        _ => Held::ByOthers,
                    }
                })
                .expect("counted when added");
            let node = if held == Held::Gone {
                None
            } else if held == Held::ByThis {
                // Only this Service holds records here: its PTRs, now.
                let mut p = Preparing::new(bytes, bounds);
                for ptr in now {
                    target.clear();
                    let label = new_ptrs.label(ptr);
                    target.push(label.len() as u8);
                    target.extend_from_slice(label);
                    target.extend_from_slice(primary);
                    p.answer(|b| {
                        write_tail_with(b, RType::PTR, self.config.ttl, |b| {
                            // A cluster name shares no suffix with a reverse one (the zones
                            // are disjoint here): `write_name` would not compress it.
                            debug_assert!({
                                let mut compressed = Vec::new();
                                write_name(&mut compressed, target, Some(wire));
                                compressed == *target
                            });
                            b.extend_from_slice(target);
                        })
                    });
                }
                p.end_answers();
                body.clear();
                p.finish(body);
                NodeBuf::write(wire, 0, &[(RType::PTR.0, 0, body.len())], 0, body, blob);
                Some(&blob[..])
            } else if held == Held::ByNone {
                NodeBuf::write(wire, 0, &[], 0, &[], blob);
                Some(&blob[..])
            } else {
                // Records of several Services: merged in fragment order before publishing.
                self.pending
                    .insert(Name::from_wire(wire).expect("a reverse name"));
                continue;
            };
            if !self.pending.is_empty() {
                self.pending.remove(wire);
            }
            writes.push_node(wire, node);
        }
        drop((old_groups, new_groups));
        // Names that exist for this Service without its records there.
        old_ents.sort();
        new_ents.sort();
        let (mut o, mut n) = (0, 0);
        while o < old_ents.len() || n < new_ents.len() {
            let (name, existed, exists) = match (old_ents.get(o), new_ents.get(n)) {
                (Some(a), Some(b)) if a == b => {
                    o += 1;
                    n += 1;
                    continue;
                }
                (Some(a), b) if b.is_none_or(|b| a < b) => {
                    o += 1;
                    (a, true, false)
                }
                (_, Some(b)) => {
                    n += 1;
                    (b, false, true)
                }
                _ => unreachable!("one list has a name left"),
            };
            debug_assert!(existed != exists);
            let held = self
                .shared
                .update(name, exists, |entry| {
                    if exists {
                        entry.refs += 1;
                    } else {
                        entry.refs -= 1;
                    }
                    match entry.holders() {
                        _ if entry.refs == 0 => Held::Gone,
                        [] => Held::ByNone,
                        _ => Held::ByOthers,
                    }
                })
                .expect("counted when added");
            let node = if held == Held::Gone {
                None
            } else if held == Held::ByNone {
                NodeBuf::write(name, 0, &[], 0, &[], blob);
                Some(&blob[..])
            } else {
                // Its records are another fragment's: rebuilt with them (existence aside,
                // nothing of this Service is in them).
                self.pending.insert(Name::from_wire(name).expect("a name"));
                continue;
            };
            if !self.pending.is_empty() {
                self.pending.remove(name);
            }
            writes.push_node(name, node);
        }

        self.write_all(&scratch.writes);
        let frag = self.frags[id as usize].as_mut().expect("live");
        frag.source = source;
        if !frag.skipped.is_empty() {
            frag.skipped.clear();
            self.skipped_changed = true;
        }
        for (root, nodes) in roots.iter().zip(scratch.batches.iter()) {
            self.rewrite_under(root, nodes);
        }
        self.direct = direct;
        self.direct_scratch = scratch;
    }

    /// [`ZoneBuilder::write_bytes`] of every name of `writes` (each once), a run of names of
    /// one shard at a time: a shard still shared with a published snapshot, and written many
    /// names of, is copied once with them (a Service's PTR owners crowd in the shards of their
    /// /24s, in address order).
    fn write_all(&mut self, writes: &NameList) {
        let ctx = self.ctx.as_ref().expect("only called with zones");
        let mut order: Vec<(u16, u32)> = Vec::with_capacity(writes.len());
        // Siblings share a shard when their group is above them (PTR owners of one /24, in
        // the order they come): the zone and the shard are found once per parent. (Served
        // zones are disjoint here, so a sibling is no zone apex of its own.)
        let mut last: Option<(&[u8], u16)> = None;
        for i in 0..writes.len() {
            let name = writes.name(i);
            let parent = match name.first() {
                Some(&len) if len > 0 => &name[1 + len as usize..],
                _ => name,
            };
            if let Some((p, index)) = last
                && p == parent
            {
                debug_assert_eq!(
                    zone_of(&ctx.served, name).map(|z| shard_index(&ctx.served[z], name)),
                    Some(index as usize)
                );
                order.push((index, i as u32));
                continue;
            }
            last = None;
            let Some(zone) = zone_of(&ctx.served, name) else {
                continue;
            };
            let index = shard_index(&ctx.served[zone], name) as u16;
            let mut labels = 0;
            let mut at = 0;
            while let Some(&len) = name.get(at)
                && len != 0
            {
                labels += 1;
                at += 1 + len as usize;
            }
            if labels > ctx.served[zone].group_labels as usize {
                last = Some((parent, index));
            }
            order.push((index, i as u32));
        }
        // Runs of one shard, not a sort: the names come by address, so a shard's run is whole
        // (a shard met again later is owned by then, and written in place).
        let mut batch = NodeBatch::default();
        for group in order.chunk_by(|a, b| a.0 == b.0) {
            let index = group[0].0 as usize;
            let (block, at) = (index / BLOCK, index % BLOCK);
            let owned = Arc::strong_count(&self.shards) == 1
                && Arc::strong_count(&self.shards[block]) == 1
                && Arc::strong_count(&self.shards[block][at]) == 1;
            if owned || group.len() < 4 {
                for &(_, i) in group {
                    let (name, node) = writes.item(i as usize);
                    self.write_bytes(name, node);
                }
                continue;
            }
            batch.clear();
            for &(_, i) in group {
                if let (_, Some(node)) = writes.item(i as usize) {
                    batch.push(node);
                }
            }
            let names = group.iter().map(|&(_, i)| writes.name(i as usize));
            let (shard, dropped) = self.shards[block][at].rewritten_without(names, &batch);
            self.names = self.names - dropped + batch.len();
            let block = Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[block]);
            block[at] = Arc::new(shard);
        }
    }

    /// Whether the next snapshot holds `name`.
    fn stored(&self, ctx: &Ctx, name: &[u8]) -> bool {
        let Some(zone) = zone_of(&ctx.served, name) else {
            return false;
        };
        let index = shard_index(&ctx.served[zone], name);
        self.shards[index / BLOCK][index % BLOCK].contains(name)
    }

    /// Calls `each` with every stored name at or below `root`, a private root: all of them
    /// live in the shard of `root` (the shard is chosen by the name's ancestor at the depth of
    /// a Service name, `snapshot.rs`), so this scans one shard, not the zone.
    fn names_under(&self, ctx: &Ctx, root: &Name, mut each: impl FnMut(&[u8])) {
        let Some(zone) = zone_of(&ctx.served, root.as_wire()) else {
            return;
        };
        let index = shard_index(&ctx.served[zone], root.as_wire());
        self.shards[index / BLOCK][index % BLOCK].for_each_named(|name, _| {
            if names::is_subdomain(name, root.as_wire()) {
                debug_assert_eq!(shard_index(&ctx.served[zone], name), index);
                each(name);
            }
        });
    }

    /// Replaces every stored name at or below `root`, a private root, by `nodes` (all at or
    /// below it, so all in its shard): one copy of the shard's other nodes, at exact capacity,
    /// where writing node by node would copy the shard on write, grow it and compact it.
    fn rewrite_under(&mut self, root: &Name, nodes: &NodeBatch) {
        let ctx = self.ctx.as_ref().expect("only called with zones");
        let Some(zone) = zone_of(&ctx.served, root.as_wire()) else {
            return;
        };
        let index = shard_index(&ctx.served[zone], root.as_wire());
        let (block, at) = (index / BLOCK, index % BLOCK);
        let (shard, dropped) = self.shards[block][at]
            .rewritten(|name| !names::is_subdomain(name, root.as_wire()), nodes);
        if dropped == 0 && nodes.is_empty() {
            return;
        }
        self.names = self.names - dropped + nodes.len();
        let block = Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[block]);
        block[at] = Arc::new(shard);
    }

    /// Rebuilds the shared names that several fragments hold records at.
    fn rebuild_pending(&mut self) {
        let Some(ctx) = &self.ctx else {
            return;
        };
        let mut memo: FxMap<FragId, Local> = FxMap::default();
        let mut writes = Vec::new();
        for name in std::mem::take(&mut self.pending) {
            let Some(entry) = self.shared.get(name.as_wire()) else {
                writes.push((name, None));
                continue;
            };
            let node = self.merged_node(ctx, &name, entry, &mut memo);
            writes.push((name, Some(node)));
        }
        for (name, node) in writes {
            self.write(&name, node.as_ref());
        }
    }

    /// A shared name's entry from all of its holders, records merged in fragment order.
    fn merged_node(
        &self,
        ctx: &Ctx,
        name: &Name,
        entry: &Shared,
        memo: &mut FxMap<FragId, Local>,
    ) -> NodeBuf {
        let (sets, insecure_pods) = self.merged_sets(ctx, name, entry, memo);
        // Additional records (RFC 2782 targets, NS glue) at shared names come from shared names.
        let mut extra: Vec<RRset> = Vec::new();
        for target in targets(sets.iter()) {
            if let Some(t) = self.shared.get(target.as_wire()) {
                extra.extend(self.merged_sets(ctx, target, t, memo).0);
            }
        }
        let find = |target: &Name| {
            [RType::A, RType::AAAA]
                .map(|rtype| extra.iter().find(|s| s.name == *target && s.rtype == rtype))
        };
        ctx.encode(name, &sets, insecure_pods, None, &find)
    }

    fn merged_sets(
        &self,
        ctx: &Ctx,
        name: &Name,
        entry: &Shared,
        memo: &mut FxMap<FragId, Local>,
    ) -> (Vec<RRset>, bool) {
        let mut sets: Vec<RRset> = Vec::new();
        let mut insecure_pods = false;
        for &h in entry.holders() {
            let local = memo
                .entry(h)
                .or_insert_with(|| ctx.local(&self.config, self.records_of(ctx, h)));
            let Some(here) = local.names.get(name) else {
                continue;
            };
            insecure_pods |= here.insecure_pods;
            for &i in here.sets() {
                let set = &local.records.rrsets[i as usize];
                match sets.iter_mut().find(|s| s.rtype == set.rtype) {
                    Some(existing) => merge_into(existing, set),
                    None => sets.push(set.clone()),
                }
            }
        }
        (sets, insecure_pods)
    }

    /// Gives the shards written since the last snapshot back the capacity they grew beyond
    /// their nodes (appending doubles a buffer; a published shard is never written again),
    /// and the fragments' table its own when a large change left it oversized.
    fn trim_dirty(&mut self) {
        for index in self.dirty.take() {
            let (block, at) = (index / BLOCK, index % BLOCK);
            let block = Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[block]);
            Arc::make_mut(&mut block[at]).trim();
        }
        // The fragments' table would keep what doubling left over it after a full build
        // (6,000 slots at 10k Services); trimmed to a quarter over, the copy comes again only
        // after a quarter more Services.
        let frags = self.frags.len();
        if self.frags.capacity() > frags + frags / 2 {
            self.frags.shrink_to(frags + frags / 4);
        }
    }

    /// Stores (or, with `None`, removes) the entry of `name` in the next snapshot's shards.
    fn write(&mut self, name: &Name, node: Option<&NodeBuf>) {
        self.write_bytes(name.as_wire(), node.map(NodeBuf::as_bytes));
    }

    /// [`ZoneBuilder::write`] of a wire name and a node's bytes.
    fn write_bytes(&mut self, name: &[u8], node: Option<&[u8]>) {
        let ctx = self.ctx.as_ref().expect("only called with zones");
        let Some(zone) = zone_of(&ctx.served, name) else {
            return;
        };
        let index = shard_index(&ctx.served[zone], name);
        let (block, at) = (index / BLOCK, index % BLOCK);
        if node.is_none() && !self.shards[block][at].contains(name) {
            return;
        }
        // Copy-on-write: the root, the block and the shard are copied only while a published
        // snapshot still shares them.
        let block = Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[block]);
        let shard = Arc::make_mut(&mut block[at]);
        self.dirty.insert(index);
        match node {
            Some(node) => {
                if shard.insert(node) {
                    self.names += 1;
                }
            }
            None => {
                if shard.remove(name) {
                    self.names -= 1;
                }
            }
        }
    }

    fn collect_skipped(&self) -> Vec<Skipped> {
        let mut out = self.config_skipped.clone();
        let order = [self.apex, self.namespaces]
            .into_iter()
            .chain(self.services.values().copied())
            .chain(std::iter::once(self.pods));
        for id in order {
            out.extend(self.frag(id).skipped.iter().cloned());
        }
        out
    }
}

// === impl Ctx ===

impl Ctx {
    fn new(config: &ZoneConfig, zones: Zones) -> Self {
        let apex = records::apex_records(config, &zones, 0);
        let all: Vec<&Name> = zones.clusters.iter().chain(&zones.reverse).collect();
        let private_subtrees = !all.iter().any(|a| all.iter().any(|b| a != b && a.is_in(b)));
        let in_addr = Name::from_dotted("in-addr.arpa").expect("valid");
        let ip6 = Name::from_dotted("ip6.arpa").expect("valid");
        let mut served: Vec<ServedZone> = Vec::new();
        for set in apex.rrsets.iter().filter(|s| s.rtype == RType::SOA) {
            let apex = &set.name;
            if served.iter().any(|z| z.apex == *apex) {
                continue;
            }
            let labels = apex.labels().count();
            // The group is where one Service's names (or one /24, /120 of PTRs) meet.
            let group = if zones.clusters.contains(apex) {
                labels + 3
            } else if apex.is_in(&in_addr) {
                labels.max(5)
            } else if apex.is_in(&ip6) {
                labels.max(32)
            } else {
                labels + 3
            };
            served.push(ServedZone {
                apex: apex.clone(),
                group_labels: group.min(u8::MAX as usize) as u8,
                negative: Negative::new(set, config.negative_ttl, false),
            });
        }
        served.sort_by_key(|z| std::cmp::Reverse(z.apex.as_wire().len()));
        let fallthrough = config
            .fallthrough
            .iter()
            .filter_map(|zone| Name::from_dotted(zone).ok())
            .collect();
        let mut ctx = Self {
            zones,
            served,
            private_subtrees,
            fallthrough,
        };
        ctx.refresh_negatives(config, &apex);
        ctx
    }

    /// The negative answers of every served zone, from the apex records of one serial.
    fn refresh_negatives(&mut self, config: &ZoneConfig, apex: &Records) {
        let fallthrough = &self.fallthrough;
        for zone in &mut self.served {
            let Some(soa) = apex
                .rrsets
                .iter()
                .find(|s| s.name == zone.apex && s.rtype == RType::SOA)
            else {
                continue;
            };
            let falls_through = fallthrough.iter().any(|f| zone.apex.is_in(f));
            // RFC 2308 §5: the SOA's TTL in a negative answer is min(TTL, MINIMUM).
            zone.negative = Negative::new(soa, config.negative_ttl, falls_through);
        }
    }

    /// Whether a served reverse zone holds the PTR owner `wire` (as `records.rs` checks).
    fn covers_ptr(&self, wire: &[u8]) -> bool {
        self.zones.reverse.iter().any(|z| {
            let z = z.as_wire();
            wire.ends_with(z) && names::is_subdomain(wire, z)
        })
    }

    /// Calls `each` with the ancestors of `name` up to its zone's apex (as
    /// [`Ctx::mark_ancestors`] adds them), nearest first; stops at the first that is also an
    /// ancestor of `seen` (already listed, with all above it).
    fn ancestors(&self, name: &[u8], seen: Option<&[u8]>, mut each: impl FnMut(&[u8])) {
        let Some(zone) = zone_of(&self.served, name) else {
            return;
        };
        let apex = self.served[zone].apex.as_wire().len();
        let mut at = 0;
        while name.len() - at > apex {
            at += 1 + name[at] as usize;
            let ancestor = &name[at..];
            if seen.is_some_and(|s| names::is_subdomain(s, ancestor)) {
                break;
            }
            each(ancestor);
        }
    }

    /// Every name `records` make exist, with the RRsets at each.
    fn local(&self, config: &ZoneConfig, mut records: Records) -> Local {
        // The owners come grouped already (`records.rs` files each RRset under its owner as it
        // is made): only their ancestors are added here, which spares hashing each owner twice.
        let mut names = std::mem::take(&mut records.owners);
        // Most owners add one ancestor at most (a PTR owner's /24, an SRV owner's `_tcp`).
        names.reserve(records.rrsets.len() / 2 + records.names.len());
        for set in &records.rrsets {
            match zone_of(&self.served, set.name.as_wire()) {
                Some(zone) => self.mark_ancestors(&mut names, &set.name, zone),
                // Names outside every served zone are ignored (as `mark` does).
                None => {
                    names.remove(set.name.as_wire());
                }
            }
        }
        for name in &records.names {
            self.mark(&mut names, name);
        }
        for name in &records.pod_namespaces {
            if let Some(local) = self.mark(&mut names, name) {
                local.insecure_pods |= config.pods == PodMode::Insecure;
            }
        }
        Local { records, names }
    }

    /// Records that the ancestors of `name` (in served zone `zone`) up to the apex exist (RFC
    /// 8020 §2).
    fn mark_ancestors(&self, names: &mut NameMap<LocalName>, name: &Name, zone: usize) {
        let apex = self.served[zone].apex.as_wire();
        let wire = name.as_wire();
        let mut at = 0;
        // Ancestors are looked up as slices of the name: only missing ones are allocated.
        while wire.len() - at > apex.len() {
            at += 1 + wire[at] as usize;
            if names.contains_key(&wire[at..]) {
                break;
            }
            names.insert(name.parent_at(at), LocalName::default());
        }
    }

    /// Records that `name` exists, and so do its ancestors up to its zone's apex (RFC 8020
    /// §2). Names outside every served zone are ignored.
    fn mark<'n>(
        &self,
        names: &'n mut NameMap<LocalName>,
        name: &Name,
    ) -> Option<&'n mut LocalName> {
        let zone = zone_of(&self.served, name.as_wire())?;
        if !names.contains_key(name.as_wire()) {
            let apex = self.served[zone].apex.as_wire();
            let wire = name.as_wire();
            let mut at = 0;
            // Ancestors are looked up as slices of the name: only missing ones are allocated.
            while wire.len() - at > apex.len() {
                at += 1 + wire[at] as usize;
                let ancestor = &wire[at..];
                if names.contains_key(ancestor) {
                    break;
                }
                let ancestor = name.parent_at(at);
                names.insert(ancestor, LocalName::default());
            }
            return Some(names.entry_ref(name).or_default());
        }
        names.get_mut(name.as_wire())
    }

    /// A name's entry from one fragment's records (private names; additional records come from
    /// the same fragment, whose subtree holds every SRV target).
    fn node_from_local(
        &self,
        _config: &ZoneConfig,
        name: &Name,
        here: &LocalName,
        local: &Local,
        private: bool,
    ) -> NodeBuf {
        self.node_from_local_with(name, here, local, private, NodeBuf::new)
    }

    /// [`Ctx::node_from_local`], handing the node's bytes to `done` instead of boxing them.
    fn node_from_local_with<R>(
        &self,
        name: &Name,
        here: &LocalName,
        local: &Local,
        private: bool,
        done: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let sets = here
            .sets()
            .iter()
            .map(|&i| &local.records.rrsets[i as usize]);
        let find = |target: &Name| local_addresses(local, target);
        // A Service name's SRV set may equal the one of its only named port.
        let own_srv = sets.clone().find(|s| s.rtype == RType::SRV);
        let port_srv = own_srv.filter(|_| private).and_then(|own| {
            local.records.rrsets.iter().find(|s| {
                s.rtype == RType::SRV
                    && service_of_srv_owner(&s.name).is_some_and(|up| s.name.parent_at(up) == *name)
                    && s.rdata == own.rdata
            })
        });
        self.encode_with(name, sets, here.insecure_pods, port_srv, &find, done)
    }

    /// A shared name's entry when `local` is its only holder, if every additional record it
    /// needs is in `local` too; `None` means "merge later, from every fragment".
    fn shared_node_from(
        &self,
        config: &ZoneConfig,
        name: &Name,
        local: &Local,
        entry: &Shared,
        held_elsewhere: &dyn Fn(&Name) -> bool,
    ) -> Option<NodeBuf> {
        let here = match local.names.get(name) {
            Some(here) if !entry.holders().is_empty() => here,
            // An empty non-terminal, or a name this fragment only makes exist.
            _ if entry.holders().is_empty() => {
                return Some(self.encode(name, [], false, None, &|_| [None, None]));
            }
            _ => return None,
        };
        let sets = here
            .sets()
            .iter()
            .map(|&i| &local.records.rrsets[i as usize]);
        // Additional records come from `local` alone, unless another fragment holds records at
        // a target (then they are merged in fragment order, later).
        for target in targets(sets) {
            if held_elsewhere(target) {
                return None;
            }
        }
        Some(self.node_from_local(config, name, here, local, false))
    }

    /// Prepares every answer of `name` (RRsets in order; `additional` finds SRV/NS targets'
    /// addresses) into one entry.
    ///
    /// `port_srv` is the SRV set of `_<port>._<proto>.<name>` when it holds the same records
    /// as `name`'s and both are names of one Service's subtree (rebuilt together): the SRV
    /// answer of `name` is then stored as a link to that one (`snapshot::LINK`), if that one,
    /// shifted, gives the very bytes prepared here.
    fn encode<'a, 's>(
        &self,
        name: &Name,
        sets: impl IntoIterator<Item = &'s RRset>,
        insecure_pods: bool,
        port_srv: Option<&RRset>,
        additional: &dyn Fn(&Name) -> [Option<&'a RRset>; 2],
    ) -> NodeBuf {
        self.encode_with(
            name,
            sets,
            insecure_pods,
            port_srv,
            additional,
            NodeBuf::new,
        )
    }

    /// [`Ctx::encode`], handing the node's bytes to `done` (a private name's node goes
    /// straight into its batch, without an allocation of its own).
    fn encode_with<'a, 's, R>(
        &self,
        name: &Name,
        sets: impl IntoIterator<Item = &'s RRset>,
        insecure_pods: bool,
        port_srv: Option<&RRset>,
        additional: &dyn Fn(&Name) -> [Option<&'a RRset>; 2],
        done: impl FnOnce(&[u8]) -> R,
    ) -> R {
        ENCODE.with_borrow_mut(|scratch| {
            let Encode {
                body,
                records,
                bounds,
                blob,
                types,
                linked,
            } = scratch;
            body.clear();
            types.clear();
            let mut cname = false;
            let mut any: Option<(usize, usize)> = None;
            for set in sets {
                let extra = additional_for(set, additional);
                let start = body.len();
                PreparedAnswer::prepare_with(body, records, bounds, name, set, &extra);
                if set.rtype == RType::SRV
                    && let Some(port) = port_srv
                    && let Some(up) = service_of_srv_owner(&port.name)
                {
                    linked.clear();
                    // The same records as `set`, so the same additional records.
                    PreparedAnswer::prepare_with(linked, records, bounds, &port.name, port, &extra);
                    records.clear();
                    PreparedAnswer::from_bytes(linked)
                        .shifted(-(up as i16))
                        .write_prepared(records);
                    if records[..] == body[start..] {
                        body.truncate(start);
                        write_link(body, &port.name.as_wire()[..up]);
                    }
                }
                if set.rtype == RType::CNAME {
                    // RFC 1034 §3.6.2: the CNAME is the name's only answer.
                    cname = true;
                    body.drain(..start);
                    types.clear();
                    types.push((RType::CNAME.0, 0, body.len()));
                    break;
                }
                let rank = ANY_PREFERENCE
                    .iter()
                    .position(|t| *t == set.rtype)
                    .unwrap_or(usize::MAX);
                if any.is_none_or(|(r, _)| rank < r) {
                    any = Some((rank, types.len()));
                }
                types.push((set.rtype.0, start, body.len()));
            }
            // The answer to ANY goes first (CNAME: the only one).
            let first = match any {
                Some((_, index)) if !cname => index,
                _ => 0,
            };
            let mut flags = 0;
            if cname {
                flags |= FLAG_CNAME;
            }
            if insecure_pods {
                flags |= FLAG_INSECURE_PODS;
            }
            NodeBuf::write(name.as_wire(), flags, types, first, body, blob);
            done(blob)
        })
    }
}

/// Reused buffers of [`Ctx::encode`] (the builder is used from one thread at a time; a
/// thread-local keeps them without threading a buffer through every caller).
#[derive(Default)]
struct Encode {
    /// The name's answers, back to back.
    body: Vec<u8>,
    /// One answer's records and their bounds, while it is prepared.
    records: Vec<u8>,
    bounds: Vec<u16>,
    /// The node being assembled.
    blob: Vec<u8>,
    /// `(qtype, start, end)` of each answer in `body`.
    types: Vec<(u16, usize, usize)>,
    /// The port name's SRV answer, while a link to it is checked.
    linked: Vec<u8>,
}

/// For `_<port>._<proto>.<svc>...`, the offset of `<svc>...` (two labels up), whose SRV
/// answer may be this name's.
fn service_of_srv_owner(name: &Name) -> Option<usize> {
    let wire = name.as_wire();
    let mut at = 0;
    for _ in 0..2 {
        let len = *wire.get(at)? as usize;
        if len == 0 || wire.get(at + 1) != Some(&b'_') {
            return None;
        }
        at += 1 + len;
    }
    Some(at)
}

thread_local! {
    static ENCODE: std::cell::RefCell<Encode> = std::cell::RefCell::default();
}

/// The records of a fragment source.
fn source_records(config: &ZoneConfig, zones: &Zones, order: &Order, source: &Source) -> Records {
    match (source, order) {
        (Source::Apex(serial), _) => records::apex_records(config, zones, *serial),
        (Source::Namespaces(ns), _) => records::namespace_records(config, zones, ns),
        (Source::Service(svc), Order::Service(key)) => {
            records::service_records(config, zones, &svc.view(key))
        }
        (Source::Pods(pods), _) => records::pod_records(config, zones, pods),
        (Source::Service(_) | Source::Empty, _) => Records::default(),
    }
}

/// The names whose subtrees only this fragment can fill: a Service's name in each cluster zone.
fn private_roots(zones: &Zones, order: &Order) -> Vec<Name> {
    let Order::Service(key) = order else {
        return Vec::new();
    };
    zones
        .clusters
        .iter()
        .filter_map(|zone| names::service(&key.name, &key.namespace, zone).ok())
        .collect()
}

/// Whether a fragment contributes the same records and flags at a name before and after.
fn contribution_eq(old: &Local, was: &LocalName, new: &Local, now: &LocalName) -> bool {
    was.insecure_pods == now.insecure_pods
        && was.sets().len() == now.sets().len()
        && was
            .sets()
            .iter()
            .zip(now.sets())
            .all(|(a, b)| old.records.rrsets[*a as usize] == new.records.rrsets[*b as usize])
}

/// The A and AAAA RRsets of `local` at `name` (one probe for both).
fn local_addresses<'a>(local: &'a Local, name: &Name) -> [Option<&'a RRset>; 2] {
    let Some(here) = local.names.get(name) else {
        return [None, None];
    };
    let sets = here
        .sets()
        .iter()
        .map(|&i| &local.records.rrsets[i as usize]);
    let mut out = [None, None];
    for set in sets {
        match set.rtype {
            RType::A => out[0] = Some(set),
            RType::AAAA => out[1] = Some(set),
            _ => {}
        }
    }
    out
}

/// SRV and NS targets of `sets`, each once.
fn targets<'a>(sets: impl Iterator<Item = &'a RRset>) -> Vec<&'a Name> {
    let mut out: Vec<&Name> = Vec::new();
    let mut seen: FxSet<&Name> = FxSet::default();
    for set in sets {
        for rdata in &set.rdata {
            if let RData::Srv { target, .. } | RData::Ns(target) = rdata
                && seen.insert(target)
            {
                out.push(target);
            }
        }
    }
    out
}

/// The additional records of an answer: addresses of SRV targets and NS hosts (RFC 2782
/// "Usage rules": additional A records for targets; RFC 1035 §3.3.11 / §6.3.1: glue for NS),
/// each target's once. A target repeats (one SRV per port) only with its RRsets, so those are
/// what is deduplicated: by address, cheaper than hashing the name.
fn additional_for<'a>(
    set: &RRset,
    find: &dyn Fn(&Name) -> [Option<&'a RRset>; 2],
) -> Vec<&'a RRset> {
    let mut out = Vec::new();
    if set.rtype != RType::SRV && set.rtype != RType::NS {
        return out;
    }
    let mut seen: FxSet<*const RRset> = FxSet::default();
    for rdata in &set.rdata {
        let (RData::Srv { target, .. } | RData::Ns(target)) = rdata else {
            continue;
        };
        let [a, aaaa] = find(target);
        // A and AAAA of one name come together, so the A (or the AAAA alone) marks the target.
        let Some(first) = a.or(aaaa) else {
            continue;
        };
        if seen.insert(first) {
            out.extend(a);
            out.extend(aaaa);
        }
    }
    out
}

/// Adds `from`'s records to `into` (same owner and type); RFC 2181 §5: no duplicates.
fn merge_into(into: &mut RRset, from: &RRset) {
    let mut seen: FxSet<&RData> = into.rdata.iter().collect();
    let fresh: Vec<RData> = from
        .rdata
        .iter()
        .filter(|r| seen.insert(r))
        .cloned()
        .collect();
    into.rdata.extend(fresh);
}

/// Who holds records at a shared name after a direct update's bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    /// No fragment makes the name exist any more (its entry is gone).
    Gone,
    /// It exists, and nobody holds records there.
    ByNone,
    /// The updated fragment alone.
    ByThis,
    /// Other fragments (its node is merged from them).
    ByOthers,
}

/// Names (and, for writes, their nodes) back to back in one buffer: the few dozen to
/// thousands of names one update touches, without an allocation each.
#[derive(Debug, Default)]
struct NameList {
    bytes: Vec<u8>,
    /// `(name start, name length, node start, node length or u32::MAX for none)`.
    items: Vec<(u32, u32, u32, u32)>,
}

impl NameList {
    fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    fn push(&mut self, name: &[u8]) {
        self.push_node(name, None);
    }

    fn push_node(&mut self, name: &[u8], node: Option<&[u8]>) {
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name);
        let node_at = self.bytes.len() as u32;
        let node_len = match node {
            Some(node) => {
                self.bytes.extend_from_slice(node);
                node.len() as u32
            }
            None => u32::MAX,
        };
        self.items.push((at, name.len() as u32, node_at, node_len));
    }

    fn name(&self, i: usize) -> &[u8] {
        let (at, len, _, _) = self.items[i];
        &self.bytes[at as usize..][..len as usize]
    }

    fn item(&self, i: usize) -> (&[u8], Option<&[u8]>) {
        let (_, _, node_at, node_len) = self.items[i];
        let node =
            (node_len != u32::MAX).then(|| &self.bytes[node_at as usize..][..node_len as usize]);
        (self.name(i), node)
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        (i < self.items.len()).then(|| self.name(i))
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    /// Sorts the names (bytewise) and drops repeats.
    fn sort(&mut self) {
        let bytes = &self.bytes;
        let name = |&(at, len, _, _): &(u32, u32, u32, u32)| &bytes[at as usize..][..len as usize];
        self.items.sort_unstable_by(|a, b| name(a).cmp(name(b)));
        self.items.dedup_by(|a, b| name(a) == name(b));
    }
}

mod compact;
mod direct;
mod shared;
#[cfg(test)]
mod tests;
