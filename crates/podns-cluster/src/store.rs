//! Cluster state: every object the sources reported, by kind, namespace and name.
//!
//! [`ClusterStore`] is responsible for holding the current objects and applying
//! [`ClusterEvent`]s to them. It is owned by one task (the one that also runs the controllers),
//! so it needs no locking; it is ordered (BTreeMaps), so everything derived from it is
//! deterministic. It leaves deriving anything to [`crate::controller`].
//!
//! Besides the objects it keeps one index, EndpointSlices by the Service their
//! [`SERVICE_NAME_LABEL`] names, so that a change to one Service or slice finds that Service's
//! slices without a scan ([`ClusterStore::slices_of`]); the incremental view
//! ([`crate::view::IncrementalView`]) relies on it to keep a change's cost proportional to the
//! Service it touches.
//!
//! Objects are [`Object`]s: a pointer each ([`Object`] holds its kind behind an `Arc`), so the
//! B-tree nodes stay small and a clone of the store or of one object copies no object.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::object::{Kind, Object, ObjectRef};
use crate::source::ClusterEvent;

/// The EndpointSlice label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Objects by kind, then namespace, then name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterStore {
    /// Per kind: (namespace, name) → object. Namespaces have an empty namespace.
    kinds: BTreeMap<Kind, BTreeMap<(String, String), Object>>,
    /// (namespace, [`SERVICE_NAME_LABEL`]) → names of the slices carrying it, sorted (the
    /// order views list their endpoints in). Derived from `kinds`; kept in step by every
    /// method that changes EndpointSlices. A sorted `Vec`, not a `BTreeSet`: most Services
    /// have one to three slices, and a B-tree leaf is allocated for eleven.
    slices_by_service: BTreeMap<(String, String), Vec<String>>,
}

/// The Service an EndpointSlice belongs to: its [`SERVICE_NAME_LABEL`], if any.
pub fn service_name_of(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .map(String::as_str)
}

// === impl ClusterStore ===

impl ClusterStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `objects` (later duplicates replace earlier ones).
    pub fn from_objects(objects: impl IntoIterator<Item = Object>) -> Self {
        let mut store = Self::new();
        for object in objects {
            store.apply(object);
        }
        store
    }

    /// Creates or replaces an object. Returns whether the store changed.
    pub fn apply(&mut self, mut object: Object) -> bool {
        object.default_namespace();
        let r = object.object_ref();
        let objects = self.kinds.entry(r.kind).or_default();
        let key = (r.namespace, r.name);
        if objects.get(&key) == Some(&object) {
            return false;
        }
        let new_owner = slice_owner(&object).map(str::to_owned);
        let old = objects.insert(key.clone(), object);
        let old_owner = old.as_ref().and_then(slice_owner);
        if old_owner != new_owner.as_deref() {
            let (namespace, name) = key;
            if let Some(service) = old_owner {
                self.unindex_slice(&namespace, service, &name);
            }
            if let Some(service) = new_owner {
                self.index_slice(namespace, &service, name);
            }
        }
        true
    }

    /// Removes an object. Returns whether it was there.
    pub fn delete(&mut self, r: &ObjectRef) -> bool {
        let Some(objects) = self.kinds.get_mut(&r.kind) else {
            return false;
        };
        let removed = objects.remove(&(r.namespace.clone(), r.name.clone()));
        if objects.is_empty() {
            self.kinds.remove(&r.kind);
        }
        if let Some(service) = removed.as_ref().and_then(slice_owner) {
            self.unindex_slice(&r.namespace, service, &r.name);
        }
        removed.is_some()
    }

    /// Replaces the whole state with `objects`. Returns whether the store changed.
    pub fn resync(&mut self, objects: Vec<Object>) -> bool {
        let next = Self::from_objects(objects);
        if *self == next {
            return false;
        }
        *self = next;
        true
    }

    /// Replaces every object of `kind` with `objects`, leaving other kinds alone. Objects of
    /// another kind in `objects` are skipped (with a warning): a relist of one kind must not
    /// touch the others. Returns whether the store changed.
    pub fn resync_kind(&mut self, kind: Kind, objects: Vec<Object>) -> bool {
        let mut next = BTreeMap::new();
        for mut object in objects {
            if object.kind() != kind {
                tracing::warn!(object = %object.object_ref(), %kind, "object of another kind in a relist; skipped");
                continue;
            }
            object.default_namespace();
            let r = object.object_ref();
            next.insert((r.namespace, r.name), object);
        }
        let changed = if next.is_empty() {
            self.kinds.remove(&kind).is_some()
        } else if self.kinds.get(&kind) == Some(&next) {
            false
        } else {
            self.kinds.insert(kind, next);
            true
        };
        if changed && kind == Kind::EndpointSlice {
            self.reindex_slices();
        }
        changed
    }

    /// Applies one source event. Returns whether the store changed.
    pub fn apply_event(&mut self, event: ClusterEvent) -> bool {
        match event {
            ClusterEvent::Apply(object) => self.apply(object),
            ClusterEvent::Delete(r) => self.delete(&r),
            ClusterEvent::Resync(objects) => self.resync(objects),
            ClusterEvent::ResyncKind { kind, objects } => self.resync_kind(kind, objects),
        }
    }

    /// One object by identity.
    pub fn get(&self, r: &ObjectRef) -> Option<&Object> {
        self.kinds
            .get(&r.kind)?
            .get(&(r.namespace.clone(), r.name.clone()))
    }

    /// The EndpointSlices labelled as belonging to Service `service` of `namespace`, in name
    /// order.
    pub fn slices_of<'a>(
        &'a self,
        namespace: &str,
        service: &str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        let slices = self.kinds.get(&Kind::EndpointSlice);
        let names = self
            .slices_by_service
            .get(&(namespace.to_owned(), service.to_owned()));
        let namespace = namespace.to_owned();
        names.into_iter().flatten().filter_map(move |name| {
            match slices?.get(&(namespace.clone(), name.clone()))? {
                Object::EndpointSlice(slice) => Some(&**slice),
                _ => None,
            }
        })
    }

    /// Every object of one kind in one namespace, ordered by name.
    pub fn of_kind_in<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a Object> + 'a {
        self.kinds.get(&kind).into_iter().flat_map(move |objects| {
            objects
                .range((namespace.to_owned(), String::new())..)
                .take_while(move |((ns, _), _)| ns == namespace)
                .map(|(_, object)| object)
        })
    }

    /// Every object of one kind with its (namespace, name), in that order; for diffing two
    /// states of the store.
    pub(crate) fn entries(&self, kind: Kind) -> Option<&BTreeMap<(String, String), Object>> {
        self.kinds.get(&kind)
    }

    /// Every object, ordered by kind, namespace and name.
    pub fn iter(&self) -> impl Iterator<Item = &Object> {
        self.kinds.values().flat_map(BTreeMap::values)
    }

    /// Every object of one kind, ordered by namespace and name.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        self.kinds.get(&kind).into_iter().flat_map(BTreeMap::values)
    }

    /// How many objects the store holds.
    pub fn len(&self) -> usize {
        self.kinds.values().map(BTreeMap::len).sum()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Namespaces, by name.
    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.of_kind(Kind::Namespace).filter_map(|o| match o {
            Object::Namespace(x) => Some(&**x),
            _ => None,
        })
    }

    /// Services, by namespace and name.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.of_kind(Kind::Service).filter_map(|o| match o {
            Object::Service(x) => Some(&**x),
            _ => None,
        })
    }

    /// EndpointSlices, by namespace and name.
    pub fn endpoint_slices(&self) -> impl Iterator<Item = &EndpointSlice> {
        self.of_kind(Kind::EndpointSlice).filter_map(|o| match o {
            Object::EndpointSlice(x) => Some(&**x),
            _ => None,
        })
    }

    /// Legacy Endpoints, by namespace and name.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoints> {
        self.of_kind(Kind::Endpoints).filter_map(|o| match o {
            Object::Endpoints(x) => Some(&**x),
            _ => None,
        })
    }

    /// Pods, by namespace and name.
    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.of_kind(Kind::Pod).filter_map(|o| match o {
            Object::Pod(x) => Some(&**x),
            _ => None,
        })
    }

    /// StatefulSets, by namespace and name.
    pub fn stateful_sets(&self) -> impl Iterator<Item = &StatefulSet> {
        self.of_kind(Kind::StatefulSet).filter_map(|o| match o {
            Object::StatefulSet(x) => Some(&**x),
            _ => None,
        })
    }

    /// Deployments, by namespace and name.
    pub fn deployments(&self) -> impl Iterator<Item = &Deployment> {
        self.of_kind(Kind::Deployment).filter_map(|o| match o {
            Object::Deployment(x) => Some(&**x),
            _ => None,
        })
    }

    /// ReplicaSets, by namespace and name.
    pub fn replica_sets(&self) -> impl Iterator<Item = &ReplicaSet> {
        self.of_kind(Kind::ReplicaSet).filter_map(|o| match o {
            Object::ReplicaSet(x) => Some(&**x),
            _ => None,
        })
    }

    /// DaemonSets, by namespace and name.
    pub fn daemon_sets(&self) -> impl Iterator<Item = &DaemonSet> {
        self.of_kind(Kind::DaemonSet).filter_map(|o| match o {
            Object::DaemonSet(x) => Some(&**x),
            _ => None,
        })
    }
}

// === the slice index ===

impl ClusterStore {
    fn index_slice(&mut self, namespace: String, service: &str, name: String) {
        let names = self
            .slices_by_service
            .entry((namespace, service.to_owned()))
            .or_default();
        if let Err(at) = names.binary_search(&name) {
            names.insert(at, name);
        }
    }

    fn unindex_slice(&mut self, namespace: &str, service: &str, name: &str) {
        let key = (namespace.to_owned(), service.to_owned());
        if let Some(names) = self.slices_by_service.get_mut(&key) {
            if let Ok(at) = names.binary_search_by(|n| n.as_str().cmp(name)) {
                names.remove(at);
            }
            if names.is_empty() {
                self.slices_by_service.remove(&key);
            }
        }
    }

    /// Rebuilds the index from the slices (after a relist replaced them all).
    fn reindex_slices(&mut self) {
        // Slices come in (namespace, name) order, so each list is built sorted.
        let mut index: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for ((namespace, name), object) in
            self.kinds.get(&Kind::EndpointSlice).into_iter().flatten()
        {
            if let Some(service) = slice_owner(object) {
                index
                    .entry((namespace.clone(), service.to_owned()))
                    .or_default()
                    .push(name.clone());
            }
        }
        self.slices_by_service = index;
    }
}

/// The Service an EndpointSlice object belongs to; `None` for other kinds.
fn slice_owner(object: &Object) -> Option<&str> {
    match object {
        Object::EndpointSlice(slice) => service_name_of(slice),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;

    use super::*;

    fn mk_service(ns: Option<&str>, name: &str, port: i32) -> Object {
        let mut svc = Service::default();
        svc.metadata.name = Some(name.to_owned());
        svc.metadata.namespace = ns.map(str::to_owned);
        svc.spec = Some(k8s_openapi::api::core::v1::ServiceSpec {
            ports: Some(vec![k8s_openapi::api::core::v1::ServicePort {
                port,
                ..Default::default()
            }]),
            ..Default::default()
        });
        Object::from(svc)
    }

    #[test]
    fn apply_delete_resync() {
        let mut store = ClusterStore::new();
        assert!(store.apply(mk_service(None, "b", 80)));
        assert!(
            !store.apply(mk_service(Some("default"), "b", 80)),
            "same object: no change"
        );
        assert!(store.apply(mk_service(Some("default"), "b", 81)));
        assert!(store.apply_event(ClusterEvent::Apply(mk_service(Some("a"), "z", 1))));
        let names: Vec<_> = store
            .services()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["z", "b"], "ordered by namespace, then name");
        let r = ObjectRef::new(Kind::Service, "default", "b");
        assert!(store.get(&r).is_some());
        assert!(store.apply_event(ClusterEvent::Delete(r.clone())));
        assert!(!store.delete(&r));
        assert_eq!(store.len(), 1);
        assert!(store.apply_event(ClusterEvent::Resync(vec![mk_service(None, "c", 1)])));
        assert!(!store.resync(vec![mk_service(None, "c", 1)]));
        assert_eq!(
            store.iter().map(Object::object_ref).collect::<Vec<_>>(),
            [ObjectRef::new(Kind::Service, "default", "c")]
        );
        assert!(store.resync(Vec::new()));
        assert!(store.is_empty());
    }

    fn mk_namespace(name: &str) -> Object {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.to_owned());
        Object::from(ns)
    }

    #[test]
    fn resync_kind_replaces_one_kind_only() {
        let mut store = ClusterStore::from_objects([
            mk_namespace("default"),
            mk_service(None, "a", 1),
            mk_service(None, "b", 1),
        ]);
        let event = ClusterEvent::ResyncKind {
            kind: Kind::Service,
            objects: vec![mk_service(None, "b", 2), mk_service(Some("x"), "c", 1)],
        };
        assert!(store.apply_event(event));
        assert_eq!(
            store.iter().map(Object::object_ref).collect::<Vec<_>>(),
            [
                ObjectRef::new(Kind::Namespace, "", "default"),
                ObjectRef::new(Kind::Service, "default", "b"),
                ObjectRef::new(Kind::Service, "x", "c"),
            ],
            "a gone, b replaced, c added, the Namespace untouched"
        );
        assert!(
            !store.resync_kind(
                Kind::Service,
                vec![mk_service(Some("x"), "c", 1), mk_service(None, "b", 2)]
            ),
            "the same set in another order: no change"
        );
        assert!(
            store.resync_kind(Kind::Namespace, vec![mk_service(None, "z", 1)]),
            "objects of another kind are skipped: the Namespace relist is empty"
        );
        assert_eq!(store.namespaces().count(), 0);
        assert_eq!(store.services().count(), 2);
        assert!(
            !store.resync_kind(Kind::Pod, Vec::new()),
            "empty kind stays empty"
        );
        assert!(store.resync_kind(Kind::Service, Vec::new()));
        assert!(store.is_empty());
    }
}
