//! Incremental service views for cluster mode: one [`ClusterEvent`] in, the views it changed out.
//!
//! [`IncrementalView`] is responsible for keeping the objects a view is made of (Namespaces,
//! Services, EndpointSlices, Pods), each parsed once into the compact form of `parsed.rs`,
//! and for turning each event into a [`ViewDelta`]: the Services whose view changed (with
//! their new view), the Services that are gone, and whether the namespace or pod lists
//! changed. At every point its views are exactly what `cluster_view(&observed(store), config)`
//! gives for a [`ClusterStore`] that took the same events (a property test holds it to that),
//! so a consumer that applies the deltas in order holds the same [`ClusterView`] as one that
//! rebuilds everything.
//!
//! It keeps no view, only a 64-bit digest of each (what "changed" is decided by): a consumer
//! (the zone builder) holds what it needs of them already, and at 100k endpoints the views
//! were 23 MB beside the objects. A view is made when it changed, or when asked for.
//!
//! What a change touches, so that its cost is that of the Services it touches, not of the
//! cluster:
//! - an EndpointSlice: the Service its `kubernetes.io/service-name` label names, and the one
//!   its previous version named if the label changed (slices are indexed by that label);
//! - a Service: itself (and its namespace's place in the namespace list);
//! - a Namespace: the namespace list, and with `namespace_labels` (whose answer depends on the
//!   Namespace object) every Service and Pod in it;
//! - a Pod: itself in the pod list;
//! - a relist ([`ClusterEvent::ResyncKind`], [`ClusterEvent::Resync`], or streamed as
//!   [`ClusterEvent::RelistItems`], parsed as they come and applied at
//!   [`ClusterEvent::RelistDone`]): the objects that differ between the old and the new list,
//!   each as above (objects the relist hands back unchanged cost a parse and a comparison).
//!
//! Other kinds (workloads, legacy Endpoints) are not kept: in cluster mode the cluster's own
//! controllers turned them into the objects above.
//!
//! A recomputed view equal to the one held is not reported, so a delta lists only real changes.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use podns_view::{ClusterView, PodView, ServiceKey, ServiceView};

use super::ViewConfig;
use super::parsed::{ParsedPod, ParsedService, ParsedSlice};
use crate::object::{Kind, Object, ObjectRef};
use crate::source::ClusterEvent;
use crate::store::ClusterStore;

/// The kinds a cluster-mode view is made of (what [`crate::observed`] reads).
const VIEW_KINDS: [Kind; 4] = [
    Kind::Namespace,
    Kind::Service,
    Kind::EndpointSlice,
    Kind::Pod,
];

/// (namespace, name) of a namespaced object.
type Key = (String, String);

/// The objects a cluster's views are made of, and the digests of those views, kept in step one
/// event at a time.
#[derive(Clone, Debug)]
pub struct IncrementalView {
    /// The filters the views are made with.
    config: ViewConfig,
    /// Namespace objects, by name (`namespace_labels` reads their labels).
    namespace_objects: BTreeMap<String, Arc<Namespace>>,
    /// What is kept under each Service key: the Service, its slices, its view's digest.
    services: BTreeMap<ServiceKey, ServiceEntry>,
    slices: BTreeMap<Key, ParsedSlice>,
    /// Endpoints over all slices (for the status counts, without a scan per publish).
    endpoint_count: usize,
    pods: BTreeMap<Key, ParsedPod>,
    /// How many Services are exposed (entries with a digest).
    exposed_services: usize,
    /// Digest of the `pods verified` view of every exposed Pod.
    exposed_pods: BTreeMap<Key, u64>,
    /// Every namespace known to exist, with what makes it known: `cluster_view` lists a
    /// namespace when a Namespace object, a Service or a Pod is in it (before any filter).
    known: BTreeMap<String, NamespaceRefs>,
    /// The known namespaces that are exposed: [`ClusterView::namespaces`].
    namespaces: BTreeSet<String>,
    /// Relists in progress ([`ClusterEvent::RelistItems`]), parsed as they come, applied at
    /// [`ClusterEvent::RelistDone`].
    relists: BTreeMap<Kind, Vec<Parsed>>,
}

/// Everything kept under one Service key, in one map entry (three maps of these keys were
/// 4 MB of keys and nodes at 10k Services). An entry lives while any of its fields is set:
/// slices can name a Service that does not exist (yet), and a Service just deleted keeps its
/// digest until the delta that reports it gone.
#[derive(Clone, Debug, Default)]
struct ServiceEntry {
    service: Option<ParsedService>,
    /// Names of the slices whose `kubernetes.io/service-name` is this Service, sorted (the
    /// order a view lists their endpoints in). A sorted `Vec`: most Services have one to
    /// three slices.
    slices: Vec<Box<str>>,
    /// Digest of the view, while the Service is exposed.
    exposed: Option<u64>,
}

impl ServiceEntry {
    fn is_empty(&self) -> bool {
        self.service.is_none() && self.slices.is_empty() && self.exposed.is_none()
    }
}

/// One object of a view kind, parsed, with its identity.
#[derive(Clone, Debug)]
enum Parsed {
    Namespace(String, Arc<Namespace>),
    Service(ServiceKey, ParsedService),
    Slice(Key, ParsedSlice),
    Pod(Key, ParsedPod),
}

impl Parsed {
    /// `object` parsed; `None` for kinds no view reads.
    fn of(mut object: Object) -> Option<Self> {
        object.default_namespace();
        let r = object.object_ref();
        Some(match &object {
            Object::Namespace(ns) => Self::Namespace(r.name, Arc::clone(ns)),
            Object::Service(svc) => {
                Self::Service(ServiceKey::new(r.namespace, r.name), ParsedService::of(svc))
            }
            Object::EndpointSlice(slice) => {
                Self::Slice((r.namespace, r.name), ParsedSlice::of(slice))
            }
            Object::Pod(pod) => Self::Pod((r.namespace, r.name), ParsedPod::of(pod)),
            Object::Endpoints(_)
            | Object::StatefulSet(_)
            | Object::Deployment(_)
            | Object::ReplicaSet(_)
            | Object::DaemonSet(_) => return None,
        })
    }

    fn object_ref(&self) -> ObjectRef {
        match self {
            Self::Namespace(name, _) => ObjectRef::new(Kind::Namespace, "", name.as_str()),
            Self::Service(key, _) => {
                ObjectRef::new(Kind::Service, key.namespace.as_str(), key.name.as_str())
            }
            Self::Slice((ns, name), _) => {
                ObjectRef::new(Kind::EndpointSlice, ns.as_str(), name.as_str())
            }
            Self::Pod((ns, name), _) => ObjectRef::new(Kind::Pod, ns.as_str(), name.as_str()),
        }
    }
}

/// What changed in the views after one event (or a batch, see [`ViewDelta::merge`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewDelta {
    /// Services that are new or whose view changed; sorted. Their views are made when asked
    /// for ([`IncrementalView::service`]), so a delta (and a batch of them, however large:
    /// the first list names every Service) holds no view.
    pub upserted: Vec<ServiceKey>,
    /// Services that are no longer exposed (deleted, filtered out, or unusable); sorted. After
    /// [`ViewDelta::merge`] it may name a Service the consumer never had: removing an absent
    /// Service must be a no-op.
    pub removed: Vec<ServiceKey>,
    /// Whether [`IncrementalView::namespaces`] changed (the zone's `<ns>.svc` names).
    pub namespaces_changed: bool,
    /// Whether [`IncrementalView::pods`] changed (`pods verified` records).
    pub pods_changed: bool,
}

/// Why a namespace is known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct NamespaceRefs {
    /// A Namespace object of that name exists.
    object: bool,
    /// Services in it.
    services: usize,
    /// Pods in it.
    pods: usize,
}

/// What one event may have changed, collected before any view is recomputed (so a relist
/// recomputes each Service once, however many of its objects changed).
#[derive(Debug, Default)]
struct Affected {
    services: BTreeSet<ServiceKey>,
    pods: BTreeSet<Key>,
    /// Namespaces whose place in the namespace list may have changed.
    namespaces: BTreeSet<String>,
    /// Namespaces whose Namespace object changed (their exposure may have).
    namespace_objects: BTreeSet<String>,
}

// === impl IncrementalView ===

impl IncrementalView {
    /// No objects and no views.
    pub fn new(config: ViewConfig) -> Self {
        Self {
            config,
            namespace_objects: BTreeMap::new(),
            services: BTreeMap::new(),
            slices: BTreeMap::new(),
            endpoint_count: 0,
            pods: BTreeMap::new(),
            exposed_services: 0,
            exposed_pods: BTreeMap::new(),
            known: BTreeMap::new(),
            namespaces: BTreeSet::new(),
            relists: BTreeMap::new(),
        }
    }

    /// The views of everything in `store`.
    pub fn from_store(store: &ClusterStore, config: ViewConfig) -> Self {
        let mut view = Self::new(config);
        let objects = VIEW_KINDS
            .into_iter()
            .flat_map(|kind| store.of_kind(kind))
            .collect();
        view.apply(ClusterEvent::Resync(objects));
        view
    }

    /// Applies one source event; returns what it changed in the views.
    ///
    /// Takes the event by value: objects are parsed and the originals dropped (an [`Object`]
    /// is a shared pointer, so a caller that wants the event afterwards clones it for the
    /// price of a reference count).
    pub fn apply(&mut self, event: ClusterEvent) -> ViewDelta {
        let mut affected = Affected::default();
        match event {
            ClusterEvent::Apply(object) => self.put(object, &mut affected),
            ClusterEvent::Delete(r) => self.remove(&r, &mut affected),
            ClusterEvent::Resync(objects) => {
                let mut by_kind: BTreeMap<Kind, Vec<Object>> =
                    VIEW_KINDS.into_iter().map(|k| (k, Vec::new())).collect();
                for object in objects {
                    if let Some(list) = by_kind.get_mut(&object.kind()) {
                        list.push(object);
                    }
                }
                for (kind, objects) in by_kind {
                    self.replace_kind(kind, objects, &mut affected);
                }
            }
            ClusterEvent::ResyncKind { kind, objects } => {
                // A whole list given at once supersedes a streamed one in progress (a watch
                // restarted, or a kind no longer watched and emptied).
                self.relists.remove(&kind);
                self.replace_kind(kind, objects, &mut affected);
            }
            ClusterEvent::RelistStart(kind) => {
                self.relists.insert(kind, Vec::new());
            }
            ClusterEvent::RelistItems(objects) => {
                for object in objects {
                    let kind = object.kind();
                    if let Some(parsed) = Parsed::of(object) {
                        self.relists.entry(kind).or_default().push(parsed);
                    }
                }
            }
            ClusterEvent::RelistDone(kind) => {
                let parsed = self.relists.remove(&kind).unwrap_or_default();
                self.replace_parsed(kind, parsed, &mut affected);
            }
        }
        self.settle(affected)
    }

    /// Takes new filters (a config reload): every view is recomputed, and the delta says
    /// which changed.
    pub fn reconfigure(&mut self, config: ViewConfig) -> ViewDelta {
        self.config = config;
        let mut affected = Affected {
            namespaces: self.known.keys().chain(&self.namespaces).cloned().collect(),
            ..Affected::default()
        };
        affected.services.extend(self.services.keys().cloned());
        affected
            .pods
            .extend(self.exposed_pods.keys().chain(self.pods.keys()).cloned());
        self.settle(affected)
    }

    /// The filters in use.
    pub fn config(&self) -> &ViewConfig {
        &self.config
    }

    /// One Service's view, if it is exposed (made now).
    pub fn service(&self, key: &ServiceKey) -> Option<ServiceView> {
        self.services
            .get(key)?
            .exposed
            .and_then(|_| self.service_view(key))
    }

    /// Every exposed Service's view, by key (each made as the iterator gets to it).
    pub fn services(&self) -> impl Iterator<Item = ServiceView> + '_ {
        // Every exposed key has a view (`settle` keeps them in step); `filter_map` rather
        // than a panic if that ever broke.
        self.services
            .iter()
            .filter(|(_, entry)| entry.exposed.is_some())
            .filter_map(|(key, _)| self.service_view(key))
    }

    /// How many Services are exposed.
    pub fn service_count(&self) -> usize {
        self.exposed_services
    }

    /// The exposed namespaces, sorted: [`ClusterView::namespaces`].
    pub fn namespaces(&self) -> impl ExactSizeIterator<Item = &str> {
        self.namespaces.iter().map(String::as_str)
    }

    /// The `pods verified` pods, by namespace and name: [`ClusterView::pods`].
    pub fn pods(&self) -> impl Iterator<Item = &PodView> {
        self.exposed_pods
            .keys()
            .filter_map(|key| self.pods.get(key)?.view.as_ref())
    }

    /// How many Pods are kept (exposed or not).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// How many EndpointSlices are kept.
    pub fn slice_count(&self) -> usize {
        self.slices.len()
    }

    /// How many endpoints the slices hold (those DNS can use).
    pub fn endpoint_count(&self) -> usize {
        self.endpoint_count
    }

    /// The whole view, as [`super::cluster_view`] gives it (made now: for a first build, or
    /// a consumer that rebuilds everything).
    pub fn view(&self) -> ClusterView {
        ClusterView {
            namespaces: self.namespaces.iter().cloned().collect(),
            services: self.services().collect(),
            pods: self.pods().cloned().collect(),
        }
    }

    /// Creates or replaces one object.
    fn put(&mut self, object: Object, affected: &mut Affected) {
        if let Some(parsed) = Parsed::of(object) {
            self.put_parsed(parsed, affected);
        }
    }

    fn put_parsed(&mut self, parsed: Parsed, affected: &mut Affected) {
        match parsed {
            Parsed::Namespace(name, ns) => self.set_namespace(name, Some(ns), affected),
            Parsed::Service(key, svc) => self.set_service(key, Some(svc), affected),
            Parsed::Slice(key, slice) => self.set_slice(&key, Some(slice), affected),
            Parsed::Pod(key, pod) => self.set_pod(key, Some(pod), affected),
        }
    }

    /// Deletes one object (a no-op when it is not there).
    fn remove(&mut self, r: &ObjectRef, affected: &mut Affected) {
        let key = || (r.namespace.clone(), r.name.clone());
        match r.kind {
            Kind::Namespace => self.set_namespace(r.name.clone(), None, affected),
            Kind::Service => {
                self.set_service(ServiceKey::new(&r.namespace, &r.name), None, affected);
            }
            Kind::EndpointSlice => self.set_slice(&key(), None, affected),
            Kind::Pod => self.set_pod(key(), None, affected),
            Kind::Endpoints
            | Kind::StatefulSet
            | Kind::Deployment
            | Kind::ReplicaSet
            | Kind::DaemonSet => {}
        }
    }

    /// Replaces every object of `kind` with `objects`. Objects of another kind are skipped
    /// (with a warning): a relist of one kind must not touch the others. Objects the relist
    /// hands back unchanged cost a parse and a comparison.
    fn replace_kind(&mut self, kind: Kind, objects: Vec<Object>, affected: &mut Affected) {
        let parsed = objects
            .into_iter()
            .filter(|object| {
                let ours = object.kind() == kind;
                if !ours {
                    tracing::warn!(object = %object.object_ref(), %kind, "object of another kind in a relist; skipped");
                }
                ours
            })
            .filter_map(Parsed::of)
            .collect();
        self.replace_parsed(kind, parsed, affected);
    }

    /// [`Self::replace_kind`] with the objects parsed already.
    fn replace_parsed(&mut self, kind: Kind, parsed: Vec<Parsed>, affected: &mut Affected) {
        let mut listed: BTreeSet<ObjectRef> = BTreeSet::new();
        for item in parsed {
            listed.insert(item.object_ref());
            self.put_parsed(item, affected);
        }
        let gone: Vec<ObjectRef> = match kind {
            Kind::Namespace => self
                .namespace_objects
                .keys()
                .map(|name| ObjectRef::new(kind, "", name.as_str()))
                .collect(),
            Kind::Service => self
                .services
                .iter()
                .filter(|(_, entry)| entry.service.is_some())
                .map(|(k, _)| ObjectRef::new(kind, k.namespace.as_str(), k.name.as_str()))
                .collect(),
            Kind::EndpointSlice => refs(kind, self.slices.keys()),
            Kind::Pod => refs(kind, self.pods.keys()),
            _ => Vec::new(),
        };
        for r in gone.iter().filter(|r| !listed.contains(r)) {
            self.remove(r, affected);
        }
    }

    fn set_namespace(
        &mut self,
        name: String,
        new: Option<Arc<Namespace>>,
        affected: &mut Affected,
    ) {
        let is = new.is_some();
        if replace(&mut self.namespace_objects, &name, new).is_none() {
            return;
        }
        set_known(&mut self.known, affected, &name, |refs| refs.object = is);
        affected.namespace_objects.insert(name);
    }

    fn set_service(
        &mut self,
        key: ServiceKey,
        new: Option<ParsedService>,
        affected: &mut Affected,
    ) {
        let is = new.is_some();
        let entry = self.services.entry(key.clone()).or_default();
        if entry.service == new {
            self.prune(&key);
            return;
        }
        let was = std::mem::replace(&mut entry.service, new).is_some();
        self.prune(&key);
        count(&mut self.known, affected, &key.namespace, was, is, |refs| {
            &mut refs.services
        });
        affected.services.insert(key);
    }

    fn set_slice(&mut self, key: &Key, new: Option<ParsedSlice>, affected: &mut Affected) {
        let Some(old) = replace(&mut self.slices, key, new) else {
            return;
        };
        let new = self.slices.get(key);
        self.endpoint_count += new.map_or(0, ParsedSlice::endpoint_count);
        self.endpoint_count -= old.as_ref().map_or(0, ParsedSlice::endpoint_count);
        let old_owner = old.as_ref().and_then(|s| s.service.clone());
        let new_owner = new.and_then(|s| s.service.clone());
        let (old_owner, new_owner) = (old_owner.as_deref(), new_owner.as_deref());
        let (namespace, name) = key;
        if old_owner != new_owner {
            if let Some(service) = old_owner {
                let owner = ServiceKey::new(namespace.as_str(), service);
                if let Some(entry) = self.services.get_mut(&owner) {
                    entry.slices.retain(|n| **n != **name);
                    self.prune(&owner);
                }
            }
            if let Some(service) = new_owner {
                let names = &mut self
                    .services
                    .entry(ServiceKey::new(namespace.as_str(), service))
                    .or_default()
                    .slices;
                if let Err(at) = names.binary_search_by(|n| (**n).cmp(name.as_str())) {
                    names.insert(at, name.as_str().into());
                }
            }
        }
        for service in [old_owner, new_owner].into_iter().flatten() {
            affected
                .services
                .insert(ServiceKey::new(namespace.as_str(), service));
        }
    }

    fn set_pod(&mut self, key: Key, new: Option<ParsedPod>, affected: &mut Affected) {
        let is = new.is_some();
        let Some(old) = replace(&mut self.pods, &key, new) else {
            return;
        };
        count(
            &mut self.known,
            affected,
            &key.0,
            old.is_some(),
            is,
            |refs| &mut refs.pods,
        );
        affected.pods.insert(key);
    }

    /// Recomputes what `affected` names and records what changed.
    fn settle(&mut self, mut affected: Affected) -> ViewDelta {
        let mut delta = ViewDelta::default();
        for ns in std::mem::take(&mut affected.namespace_objects) {
            if self.config.reads_namespace_objects() {
                // The namespace's exposure may have flipped: everything in it may have.
                let start = ServiceKey::new(ns.as_str(), "");
                affected.services.extend(
                    self.services
                        .range(start..)
                        .map(|(k, _)| k)
                        .take_while(|k| k.namespace == ns)
                        .cloned(),
                );
                affected.pods.extend(
                    self.pods
                        .range((ns.clone(), String::new())..)
                        .map(|(k, _)| k)
                        .take_while(|k| k.0 == ns)
                        .cloned(),
                );
            }
            affected.namespaces.insert(ns);
        }
        for ns in affected.namespaces {
            let listed = self.known.contains_key(&ns) && self.exposed(&ns);
            let changed = if listed {
                self.namespaces.insert(ns)
            } else {
                self.namespaces.remove(&ns)
            };
            delta.namespaces_changed |= changed;
        }
        for key in affected.services {
            let now = self.service_view(&key).map(|view| digest(&view));
            // A Service with a view has an entry (its own).
            let Some(entry) = self.services.get_mut(&key) else {
                continue;
            };
            let before = std::mem::replace(&mut entry.exposed, now);
            self.exposed_services += usize::from(now.is_some());
            self.exposed_services -= usize::from(before.is_some());
            match (before, now) {
                (_, Some(now)) if before != Some(now) => delta.upserted.push(key),
                (Some(_), None) => {
                    self.prune(&key);
                    delta.removed.push(key);
                }
                _ => {}
            }
        }
        for key in affected.pods {
            let now = self.pod_view(&key).map(digest);
            let before = match now {
                Some(now) => self.exposed_pods.insert(key, now),
                None => self.exposed_pods.remove(&key),
            };
            delta.pods_changed |= before != now;
        }
        delta
    }

    /// Whether `ns` is exposed, by the filters and its Namespace object.
    fn exposed(&self, ns: &str) -> bool {
        let object = self.namespace_objects.get(ns).map(|n| &**n);
        self.config.namespace_exposed(ns, object.into_iter())
    }

    /// One Service's view now, as `cluster_view` makes it; `None` when it is not exposed.
    fn service_view(&self, key: &ServiceKey) -> Option<ServiceView> {
        let entry = self.services.get(key)?;
        let parsed = entry.service.as_ref()?;
        if !self.config.parsed_labels_match(&parsed.labels) || !self.exposed(&key.namespace) {
            return None;
        }
        let mut view = parsed.view(key)?;
        let slices: Vec<&ParsedSlice> = entry
            .slices
            .iter()
            .filter_map(|name| self.slices.get(&(key.namespace.clone(), name.to_string())))
            .collect();
        view.endpoints
            .reserve_exact(slices.iter().map(|s| s.endpoint_count()).sum());
        for slice in slices {
            slice.extend_views(&mut view.endpoints);
        }
        Some(view)
    }

    /// Drops `key`'s entry once nothing is kept in it.
    fn prune(&mut self, key: &ServiceKey) {
        if self.services.get(key).is_some_and(ServiceEntry::is_empty) {
            self.services.remove(key);
        }
    }

    /// One Pod's `pods verified` view now; `None` when it has none or is not exposed.
    fn pod_view(&self, key: &Key) -> Option<&PodView> {
        let parsed = self.pods.get(key)?;
        if !self.config.parsed_labels_match(&parsed.labels) || !self.exposed(&key.0) {
            return None;
        }
        parsed.view.as_ref()
    }
}

/// Puts `new` (or nothing) at `key`: `None` when that changes nothing, else what was there.
fn replace<K: Ord + Clone, V: PartialEq>(
    map: &mut BTreeMap<K, V>,
    key: &K,
    new: Option<V>,
) -> Option<Option<V>> {
    let old = match new {
        Some(value) => map.insert(key.clone(), value),
        None => map.remove(key),
    };
    (old.as_ref() != map.get(key)).then_some(old)
}

/// A view's digest: equal views have equal digests, and a changed view keeps its old digest
/// with a chance of 2⁻⁶⁴ (SipHash), far below any other failure of the process.
fn digest(view: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    view.hash(&mut hasher);
    hasher.finish()
}

fn refs<'a>(kind: Kind, keys: impl Iterator<Item = &'a Key>) -> Vec<ObjectRef> {
    keys.map(|(ns, name)| ObjectRef::new(kind, ns.as_str(), name.as_str()))
        .collect()
}

// === impl ViewDelta ===

impl ViewDelta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty()
            && self.removed.is_empty()
            && !self.namespaces_changed
            && !self.pods_changed
    }

    /// Folds a later delta into this one, so a batch of events gives one delta: a removal
    /// cancels an earlier upsert and an upsert an earlier removal.
    pub fn merge(&mut self, later: Self) {
        // Most events change nothing (a relist streams thousands of items that change
        // nothing until its end); they must not cost a pass over what is pending.
        self.namespaces_changed |= later.namespaces_changed;
        self.pods_changed |= later.pods_changed;
        if later.upserted.is_empty() && later.removed.is_empty() {
            return;
        }
        if self.upserted.is_empty() && self.removed.is_empty() {
            self.upserted = later.upserted;
            self.removed = later.removed;
            return;
        }
        let mut upserted: BTreeSet<ServiceKey> =
            std::mem::take(&mut self.upserted).into_iter().collect();
        let mut removed: BTreeSet<ServiceKey> =
            std::mem::take(&mut self.removed).into_iter().collect();
        for key in later.removed {
            upserted.remove(&key);
            removed.insert(key);
        }
        for key in later.upserted {
            removed.remove(&key);
            upserted.insert(key);
        }
        self.upserted = upserted.into_iter().collect();
        self.removed = removed.into_iter().collect();
    }
}

// === what a change touches ===

/// Counts an object in or out of its namespace's references when it appears or goes.
fn count(
    known: &mut BTreeMap<String, NamespaceRefs>,
    affected: &mut Affected,
    ns: &str,
    was: bool,
    is: bool,
    field: fn(&mut NamespaceRefs) -> &mut usize,
) {
    match (was, is) {
        (false, true) => set_known(known, affected, ns, |refs| *field(refs) += 1),
        (true, false) => set_known(known, affected, ns, |refs| *field(refs) -= 1),
        _ => {}
    }
}

/// Changes a namespace's references; one that gains its first or loses its last is affected.
fn set_known(
    known: &mut BTreeMap<String, NamespaceRefs>,
    affected: &mut Affected,
    ns: &str,
    change: impl FnOnce(&mut NamespaceRefs),
) {
    let refs = known.entry(ns.to_owned()).or_default();
    let was = *refs != NamespaceRefs::default();
    change(refs);
    let is = *refs != NamespaceRefs::default();
    if !is {
        known.remove(ns);
    }
    if was != is {
        affected.namespaces.insert(ns.to_owned());
    }
}

#[cfg(test)]
mod tests;
