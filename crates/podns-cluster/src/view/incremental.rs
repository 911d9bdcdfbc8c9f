//! Incremental service views for cluster mode: one [`ClusterEvent`] in, the views it changed out.
//!
//! [`IncrementalView`] is responsible for keeping, beside the [`ClusterStore`] it owns, the
//! current [`ServiceView`] of every exposed Service, the exposed namespaces and the pods of
//! `pods verified`, and for turning each event into a [`ViewDelta`]: the Services whose view
//! changed (with their new view), the Services that are gone, and whether the namespace or pod
//! lists changed. At every point its views are exactly what
//! `cluster_view(&observed(store), config)` gives for its store (a property test holds it to
//! that), so a consumer that applies the deltas in order holds the same [`ClusterView`] as one
//! that rebuilds everything.
//!
//! What a change touches, so that its cost is that of the Services it touches, not of the
//! cluster:
//! - an EndpointSlice: the Service its `kubernetes.io/service-name` label names, and the one
//!   its previous version named if the label changed (the store indexes slices by that label,
//!   [`ClusterStore::slices_of`]);
//! - a Service: itself (and its namespace's place in the namespace list);
//! - a Namespace: the namespace list, and with `namespace_labels` (whose answer depends on the
//!   Namespace object) every Service and Pod in it;
//! - a Pod: itself in the pod list;
//! - a relist ([`ClusterEvent::ResyncKind`], [`ClusterEvent::Resync`]): the objects that differ
//!   between the old and the new list, each as above (objects the relist hands back unchanged
//!   cost a comparison, shared ones not even that).
//!
//! Other kinds (workloads, legacy Endpoints) are stored but change no view: in cluster mode the
//! cluster's own controllers turned them into the objects above.
//!
//! A recomputed view equal to the one held is not reported, so a delta lists only real changes.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use podns_view::{ClusterView, PodView, ServiceKey, ServiceView};

use super::{ViewConfig, pod_view, service_view};
use crate::object::{Kind, Object, ObjectRef};
use crate::source::ClusterEvent;
use crate::store::{ClusterStore, service_name_of};

/// The kinds a cluster-mode view is made of (what [`crate::observed`] reads).
const VIEW_KINDS: [Kind; 4] = [
    Kind::Namespace,
    Kind::Service,
    Kind::EndpointSlice,
    Kind::Pod,
];

/// A cluster store and the service views of what it holds, kept in step one event at a time.
#[derive(Clone, Debug)]
pub struct IncrementalView {
    /// The objects; every change goes through [`IncrementalView::apply`] so the views follow.
    store: ClusterStore,
    /// The filters the views are made with.
    config: ViewConfig,
    /// The view of every exposed Service.
    services: BTreeMap<ServiceKey, ServiceView>,
    /// The `pods verified` view of every exposed Pod, by (namespace, name).
    pods: BTreeMap<(String, String), PodView>,
    /// Every namespace known to exist, with what makes it known: `cluster_view` lists a
    /// namespace when a Namespace object, a Service or a Pod is in it (before any filter).
    known: BTreeMap<String, NamespaceRefs>,
    /// The known namespaces that are exposed: [`ClusterView::namespaces`].
    namespaces: BTreeSet<String>,
}

/// What changed in the views after one event (or a batch, see [`ViewDelta::merge`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewDelta {
    /// Services that are new or whose view changed, with their view now; sorted by key.
    pub upserted: Vec<ServiceView>,
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
    pods: BTreeSet<(String, String)>,
    /// Namespaces whose place in the namespace list may have changed.
    namespaces: BTreeSet<String>,
    /// Namespaces whose Namespace object changed (their exposure may have).
    namespace_objects: BTreeSet<String>,
}

// === impl IncrementalView ===

impl IncrementalView {
    /// An empty store and no views.
    pub fn new(config: ViewConfig) -> Self {
        Self::from_store(ClusterStore::new(), config)
    }

    /// The views of everything in `store`.
    pub fn from_store(store: ClusterStore, config: ViewConfig) -> Self {
        let mut view = Self {
            store: ClusterStore::new(),
            config,
            services: BTreeMap::new(),
            pods: BTreeMap::new(),
            known: BTreeMap::new(),
            namespaces: BTreeSet::new(),
        };
        let empty = ClusterStore::new();
        view.store = store;
        let mut affected = Affected::default();
        for kind in VIEW_KINDS {
            diff(
                &mut view.known,
                &mut affected,
                kind,
                empty.entries(kind),
                view.store.entries(kind),
            );
        }
        view.settle(affected);
        view
    }

    /// Applies one source event to the store; returns what it changed in the views.
    ///
    /// Takes the event by value: the store keeps its objects (an [`Object`] is a shared
    /// pointer, so a caller that wants the event afterwards clones it for the price of a
    /// reference count).
    pub fn apply(&mut self, event: ClusterEvent) -> ViewDelta {
        let mut affected = Affected::default();
        match event {
            ClusterEvent::Apply(object) => {
                let r = object.object_ref();
                let old = self.store.get(&r).cloned();
                if self.store.apply(object) {
                    let new = self.store.get(&r);
                    note(&mut self.known, &mut affected, &r, old.as_ref(), new);
                }
            }
            ClusterEvent::Delete(r) => {
                let old = self.store.get(&r).cloned();
                if self.store.delete(&r) {
                    note(&mut self.known, &mut affected, &r, old.as_ref(), None);
                }
            }
            ClusterEvent::Resync(objects) => {
                // A copy of the maps, not of the objects; a full relist is linear anyway.
                let old = self.store.clone();
                if self.store.resync(objects) {
                    for kind in VIEW_KINDS {
                        diff(
                            &mut self.known,
                            &mut affected,
                            kind,
                            old.entries(kind),
                            self.store.entries(kind),
                        );
                    }
                }
            }
            ClusterEvent::ResyncKind { kind, objects } => {
                let old = self.store.entries(kind).cloned();
                if self.store.resync_kind(kind, objects) {
                    diff(
                        &mut self.known,
                        &mut affected,
                        kind,
                        old.as_ref(),
                        self.store.entries(kind),
                    );
                }
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
        affected.services.extend(
            self.store
                .of_kind(Kind::Service)
                .map(|o| ServiceKey::new(o.namespace(), o.name())),
        );
        affected.pods.extend(self.pods.keys().cloned());
        affected.pods.extend(
            self.store
                .of_kind(Kind::Pod)
                .map(|o| (o.namespace().to_owned(), o.name().to_owned())),
        );
        self.settle(affected)
    }

    /// The store the views are made from.
    pub fn store(&self) -> &ClusterStore {
        &self.store
    }

    /// The store, giving up the views.
    pub fn into_store(self) -> ClusterStore {
        self.store
    }

    /// The filters in use.
    pub fn config(&self) -> &ViewConfig {
        &self.config
    }

    /// One Service's view, if it is exposed.
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceView> {
        self.services.get(key)
    }

    /// Every exposed Service's view, by key.
    pub fn services(&self) -> impl ExactSizeIterator<Item = &ServiceView> {
        self.services.values()
    }

    /// The exposed namespaces, sorted: [`ClusterView::namespaces`].
    pub fn namespaces(&self) -> impl ExactSizeIterator<Item = &str> {
        self.namespaces.iter().map(String::as_str)
    }

    /// The `pods verified` pods, by namespace and name: [`ClusterView::pods`].
    pub fn pods(&self) -> impl ExactSizeIterator<Item = &PodView> {
        self.pods.values()
    }

    /// The whole view, as [`super::cluster_view`] gives it (a copy: for a first build, or
    /// a consumer that rebuilds everything).
    pub fn view(&self) -> ClusterView {
        ClusterView {
            namespaces: self.namespaces.iter().cloned().collect(),
            services: self.services.values().cloned().collect(),
            pods: self.pods.values().cloned().collect(),
        }
    }

    /// Recomputes what `affected` names and records what changed.
    fn settle(&mut self, mut affected: Affected) -> ViewDelta {
        let mut delta = ViewDelta::default();
        for ns in std::mem::take(&mut affected.namespace_objects) {
            if self.config.reads_namespace_objects() {
                // The namespace's exposure may have flipped: everything in it may have.
                for o in self.store.of_kind_in(Kind::Service, &ns) {
                    affected
                        .services
                        .insert(ServiceKey::new(ns.clone(), o.name()));
                }
                for o in self.store.of_kind_in(Kind::Pod, &ns) {
                    affected.pods.insert((ns.clone(), o.name().to_owned()));
                }
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
            match self.service_view(&key) {
                Some(view) => {
                    if self.services.get(&key) != Some(&view) {
                        self.services.insert(key, view.clone());
                        delta.upserted.push(view);
                    }
                }
                None => {
                    if self.services.remove(&key).is_some() {
                        delta.removed.push(key);
                    }
                }
            }
        }
        for key in affected.pods {
            let changed = match self.pod_view(&key.0, &key.1) {
                Some(view) => {
                    let changed = self.pods.get(&key) != Some(&view);
                    if changed {
                        self.pods.insert(key, view);
                    }
                    changed
                }
                None => self.pods.remove(&key).is_some(),
            };
            delta.pods_changed |= changed;
        }
        delta
    }

    /// Whether `ns` is exposed, by the filters and its Namespace object.
    fn exposed(&self, ns: &str) -> bool {
        self.config
            .namespace_exposed(ns, self.namespace_object(ns).into_iter())
    }

    fn namespace_object(&self, name: &str) -> Option<&Namespace> {
        match self.store.get(&ObjectRef::new(Kind::Namespace, "", name))? {
            Object::Namespace(ns) => Some(ns),
            _ => None,
        }
    }

    /// One Service's view now, as `cluster_view` makes it; `None` when it is not exposed.
    fn service_view(&self, key: &ServiceKey) -> Option<ServiceView> {
        let r = ObjectRef::new(Kind::Service, key.namespace.as_str(), key.name.as_str());
        let Object::Service(svc) = self.store.get(&r)? else {
            return None;
        };
        let svc: &Service = svc;
        if !self.config.labels_match(svc.metadata.labels.as_ref()) || !self.exposed(&key.namespace)
        {
            return None;
        }
        let slices: Vec<&EndpointSlice> = self.store.slices_of(&key.namespace, &key.name).collect();
        service_view(svc, &slices)
    }

    /// One Pod's `pods verified` view now; `None` when it has none or is not exposed.
    fn pod_view(&self, namespace: &str, name: &str) -> Option<PodView> {
        let Object::Pod(pod) = self
            .store
            .get(&ObjectRef::new(Kind::Pod, namespace, name))?
        else {
            return None;
        };
        let pod: &Pod = pod;
        if !self.config.labels_match(pod.metadata.labels.as_ref()) || !self.exposed(namespace) {
            return None;
        }
        pod_view(pod)
    }
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

    /// Folds a later delta into this one, so a batch of events gives one delta: the last view
    /// of each Service wins, a removal cancels an earlier upsert and an upsert an earlier
    /// removal.
    pub fn merge(&mut self, later: Self) {
        let mut upserted: BTreeMap<ServiceKey, ServiceView> = std::mem::take(&mut self.upserted)
            .into_iter()
            .map(|v| (v.key.clone(), v))
            .collect();
        let mut removed: BTreeSet<ServiceKey> =
            std::mem::take(&mut self.removed).into_iter().collect();
        for key in later.removed {
            upserted.remove(&key);
            removed.insert(key);
        }
        for view in later.upserted {
            removed.remove(&view.key);
            upserted.insert(view.key.clone(), view);
        }
        self.upserted = upserted.into_values().collect();
        self.removed = removed.into_iter().collect();
        self.namespaces_changed |= later.namespaces_changed;
        self.pods_changed |= later.pods_changed;
    }
}

// === what a change touches ===

/// Notes every object of `kind` that differs between two states of the store.
fn diff(
    known: &mut BTreeMap<String, NamespaceRefs>,
    affected: &mut Affected,
    kind: Kind,
    old: Option<&BTreeMap<(String, String), Object>>,
    new: Option<&BTreeMap<(String, String), Object>>,
) {
    let empty = BTreeMap::new();
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    for ((namespace, name), before) in old {
        let after = new.get(&(namespace.clone(), name.clone()));
        // Shared objects (a relist handing back what the store has) are equal at a glance.
        if after != Some(before) {
            let r = ObjectRef::new(kind, namespace.as_str(), name.as_str());
            note(known, affected, &r, Some(before), after);
        }
    }
    for ((namespace, name), after) in new {
        if !old.contains_key(&(namespace.clone(), name.clone())) {
            let r = ObjectRef::new(kind, namespace.as_str(), name.as_str());
            note(known, affected, &r, None, Some(after));
        }
    }
}

/// Notes one object going from `old` to `new` (either may be absent): which views it touches,
/// and the namespace it keeps known.
fn note(
    known: &mut BTreeMap<String, NamespaceRefs>,
    affected: &mut Affected,
    r: &ObjectRef,
    old: Option<&Object>,
    new: Option<&Object>,
) {
    let ns = r.namespace.as_str();
    match r.kind {
        Kind::Namespace => {
            set_known(known, affected, &r.name, |refs| refs.object = new.is_some());
            affected.namespace_objects.insert(r.name.clone());
        }
        Kind::Service => {
            affected
                .services
                .insert(ServiceKey::new(ns, r.name.as_str()));
            count(known, affected, ns, old, new, |refs| &mut refs.services);
        }
        Kind::EndpointSlice => {
            for object in [old, new].into_iter().flatten() {
                if let Object::EndpointSlice(slice) = object
                    && let Some(service) = service_name_of(slice)
                {
                    affected.services.insert(ServiceKey::new(ns, service));
                }
            }
        }
        Kind::Pod => {
            affected.pods.insert((ns.to_owned(), r.name.clone()));
            count(known, affected, ns, old, new, |refs| &mut refs.pods);
        }
        Kind::Endpoints
        | Kind::StatefulSet
        | Kind::Deployment
        | Kind::ReplicaSet
        | Kind::DaemonSet => {}
    }
}

/// Counts an object in or out of its namespace's references when it appears or goes.
fn count(
    known: &mut BTreeMap<String, NamespaceRefs>,
    affected: &mut Affected,
    ns: &str,
    old: Option<&Object>,
    new: Option<&Object>,
    field: fn(&mut NamespaceRefs) -> &mut usize,
) {
    match (old.is_some(), new.is_some()) {
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
