//! Cluster state: every object the sources reported, by kind, namespace and name.
//!
//! [`ClusterStore`] is responsible for holding the current objects and applying
//! [`ClusterEvent`]s to them. It is owned by one task (the one that also runs the controllers),
//! so it needs no locking; it is ordered (BTreeMaps), so everything derived from it is
//! deterministic. It leaves deriving anything to [`crate::controller`].
//!
//! Objects are kept as their compact JSON ([`Object::to_json`]) and decoded as they are read:
//! a k8s-openapi object is mostly inline `Option`s (a Deployment's pod template alone is
//! ~2.5 kB before its strings) and a `BTreeMap` node per label map, so the 20k objects of a
//! 10k-Service standalone cluster took 84 MB decoded against ~8 MB as JSON (BENCHMARKS.md,
//! "Standalone: the store keeps JSON"). A derivation reads each object once or twice; decoding
//! costs a few microseconds per object, next to the controllers' own work per object. Equal
//! objects serialise to equal bytes (fields in a fixed order, maps sorted), so comparing two
//! versions is comparing bytes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;

use crate::object::{Kind, Object, ObjectRef};
use crate::source::ClusterEvent;

/// The EndpointSlice label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Objects by kind, then namespace, then name.
#[derive(Clone, Debug, Default)]
pub struct ClusterStore {
    /// Per kind: (namespace, name) → object. Namespaces have an empty namespace.
    kinds: BTreeMap<Kind, BTreeMap<(String, String), Packed>>,
    /// Relists in progress ([`ClusterEvent::RelistItems`]): not part of the state yet.
    relists: BTreeMap<Kind, Vec<Object>>,
}

/// Two stores are equal when they hold the same objects (relists in progress are not state).
impl PartialEq for ClusterStore {
    fn eq(&self, other: &Self) -> bool {
        self.kinds == other.kinds
    }
}

/// One object as the store keeps it: [`Object::to_json`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct Packed(Box<[u8]>);

impl Packed {
    fn of(object: &Object) -> Self {
        Self(object.to_json().into_boxed_slice())
    }

    /// The object back, as a `T` (the type of the kind it is stored under).
    fn decode<T: DeserializeOwned>(&self, kind: Kind) -> T {
        serde_json::from_slice(&self.0).unwrap_or_else(|error| {
            // The bytes are the store's own serialisation of a value of this type.
            panic!("{kind} stored as JSON does not decode: {error}")
        })
    }

    fn object(&self, kind: Kind) -> Object {
        Object::from_json(kind, &self.0)
            .unwrap_or_else(|error| panic!("{kind} stored as JSON does not decode: {error}"))
    }
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
        let packed = Packed::of(&object);
        if objects.get(&key) == Some(&packed) {
            return false;
        }
        objects.insert(key, packed);
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
        removed.is_some()
    }

    /// Replaces the whole state with `objects`. Returns whether the store changed.
    pub fn resync(&mut self, objects: Vec<Object>) -> bool {
        let next = Self::from_objects(objects);
        if self.kinds == next.kinds {
            return false;
        }
        self.kinds = next.kinds;
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
            next.insert((r.namespace, r.name), Packed::of(&object));
        }
        if next.is_empty() {
            self.kinds.remove(&kind).is_some()
        } else if self.kinds.get(&kind) == Some(&next) {
            false
        } else {
            self.kinds.insert(kind, next);
            true
        }
    }

    /// Applies one source event. Returns whether the store changed.
    pub fn apply_event(&mut self, event: ClusterEvent) -> bool {
        match event {
            ClusterEvent::Apply(object) => self.apply(object),
            ClusterEvent::Delete(r) => self.delete(&r),
            ClusterEvent::Resync(objects) => self.resync(objects),
            ClusterEvent::ResyncKind { kind, objects } => {
                self.relists.remove(&kind);
                self.resync_kind(kind, objects)
            }
            ClusterEvent::RelistStart(kind) => {
                self.relists.insert(kind, Vec::new());
                false
            }
            ClusterEvent::RelistItems(objects) => {
                for object in objects {
                    self.relists.entry(object.kind()).or_default().push(object);
                }
                false
            }
            ClusterEvent::RelistDone(kind) => {
                let objects = self.relists.remove(&kind).unwrap_or_default();
                self.resync_kind(kind, objects)
            }
        }
    }

    /// One object by identity (decoded).
    pub fn get(&self, r: &ObjectRef) -> Option<Object> {
        self.kinds
            .get(&r.kind)?
            .get(&(r.namespace.clone(), r.name.clone()))
            .map(|packed| packed.object(r.kind))
    }

    /// Every object, ordered by kind, namespace and name, each decoded as the iterator reaches
    /// it.
    pub fn iter(&self) -> impl Iterator<Item = Object> {
        self.kinds
            .iter()
            .flat_map(|(kind, objects)| objects.values().map(|packed| packed.object(*kind)))
    }

    /// Every object of one kind, ordered by namespace and name, decoded as they are reached.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = Object> {
        self.packed(kind).map(move |packed| packed.object(kind))
    }

    /// Every object of one kind as its type `T`, decoded as they are reached.
    fn typed<T: DeserializeOwned>(&self, kind: Kind) -> impl Iterator<Item = T> {
        self.packed(kind).map(move |packed| packed.decode(kind))
    }

    fn packed(&self, kind: Kind) -> impl Iterator<Item = &Packed> {
        self.kinds.get(&kind).into_iter().flat_map(BTreeMap::values)
    }

    /// How many objects of one kind the store holds (nothing decoded).
    pub fn count(&self, kind: Kind) -> usize {
        self.kinds.get(&kind).map_or(0, BTreeMap::len)
    }

    /// Every object's JSON, in the store's order (for digests).
    pub(crate) fn packed_json(&self) -> impl Iterator<Item = &[u8]> {
        self.kinds
            .values()
            .flat_map(BTreeMap::values)
            .map(|packed| &*packed.0)
    }

    /// Bytes the stored objects take (their JSON; keys and tree nodes not counted).
    pub fn json_size(&self) -> usize {
        self.kinds
            .values()
            .flat_map(BTreeMap::values)
            .map(|packed| packed.0.len())
            .sum()
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
    pub fn namespaces(&self) -> impl Iterator<Item = Namespace> {
        self.typed(Kind::Namespace)
    }

    /// Services, by namespace and name.
    pub fn services(&self) -> impl Iterator<Item = Service> {
        self.typed(Kind::Service)
    }

    /// EndpointSlices, by namespace and name.
    pub fn endpoint_slices(&self) -> impl Iterator<Item = EndpointSlice> {
        self.typed(Kind::EndpointSlice)
    }

    /// Legacy Endpoints, by namespace and name.
    pub fn endpoints(&self) -> impl Iterator<Item = Endpoints> {
        self.typed(Kind::Endpoints)
    }

    /// Pods, by namespace and name.
    pub fn pods(&self) -> impl Iterator<Item = Pod> {
        self.typed(Kind::Pod)
    }

    /// StatefulSets, by namespace and name.
    pub fn stateful_sets(&self) -> impl Iterator<Item = StatefulSet> {
        self.typed(Kind::StatefulSet)
    }

    /// Deployments, by namespace and name.
    pub fn deployments(&self) -> impl Iterator<Item = Deployment> {
        self.typed(Kind::Deployment)
    }

    /// ReplicaSets, by namespace and name.
    pub fn replica_sets(&self) -> impl Iterator<Item = ReplicaSet> {
        self.typed(Kind::ReplicaSet)
    }

    /// DaemonSets, by namespace and name.
    pub fn daemon_sets(&self) -> impl Iterator<Item = DaemonSet> {
        self.typed(Kind::DaemonSet)
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
        let names: Vec<_> = store.services().map(|s| s.metadata.name.unwrap()).collect();
        assert_eq!(names, ["z", "b"], "ordered by namespace, then name");
        let r = ObjectRef::new(Kind::Service, "default", "b");
        assert!(store.get(&r).is_some());
        assert!(store.apply_event(ClusterEvent::Delete(r.clone())));
        assert!(!store.delete(&r));
        assert_eq!(store.len(), 1);
        assert!(store.apply_event(ClusterEvent::Resync(vec![mk_service(None, "c", 1)])));
        assert!(!store.resync(vec![mk_service(None, "c", 1)]));
        assert_eq!(
            store.iter().map(|o| o.object_ref()).collect::<Vec<_>>(),
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
            store.iter().map(|o| o.object_ref()).collect::<Vec<_>>(),
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
