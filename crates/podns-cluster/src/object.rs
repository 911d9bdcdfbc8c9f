//! Kubernetes objects as podns understands them.
//!
//! [`Object`] is the closed set of kinds podns reads: the ones that decide what DNS answers (Services,
//! EndpointSlices, legacy Endpoints, Pods, Namespaces) and the workloads whose controllers podns
//! plays in standalone mode (StatefulSets, Deployments, ReplicaSets, DaemonSets). [`ObjectRef`]
//! names one object: kind, namespace and name. Sources produce [`Object`]s; the store keys them by
//! [`ObjectRef`].
//!
//! Namespaced objects without `metadata.namespace` are put in `default` by the sources (as `kubectl
//! apply` does), so every namespaced [`Object`] past a source has a namespace.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The namespace of namespaced objects that do not name one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// One Kubernetes object of a kind podns understands.
///
/// Each variant holds its object behind an [`Arc`], so an `Object` is two words whatever its
/// kind: the store's B-tree nodes hold eleven entries inline, and with the objects themselves
/// inline (≈ 2.5 kB, the size of the largest k8s-openapi type) they were most of its heap
/// (BENCHMARKS.md, the massif profile). Sharing also makes a clone a reference-count increment,
/// so an event handed to both a consumer and a test's reference store, or a relist held aside,
/// costs no second copy of the objects. The store itself keeps objects as JSON
/// ([`Object::to_json`]), a tenth of their decoded size. Build one with `Object::from(service)` (or `.into()`);
/// change one with [`Object::metadata_mut`], which copies only a shared object
/// ([`Arc::make_mut`]).
///
/// Equality compares contents, but two `Object`s sharing one allocation are equal without
/// looking inside (a relist that hands back the objects the store already has is cheap).
#[derive(Clone, Debug)]
pub enum Object {
    /// `v1 Namespace` (cluster-scoped).
    Namespace(Arc<Namespace>),
    /// `v1 Service`.
    Service(Arc<Service>),
    /// `discovery.k8s.io/v1 EndpointSlice`.
    EndpointSlice(Arc<EndpointSlice>),
    /// `v1 Endpoints` (legacy; mirrored to EndpointSlices for selectorless Services).
    Endpoints(Arc<Endpoints>),
    /// `v1 Pod`.
    Pod(Arc<Pod>),
    /// `apps/v1 StatefulSet`.
    StatefulSet(Arc<StatefulSet>),
    /// `apps/v1 Deployment`.
    Deployment(Arc<Deployment>),
    /// `apps/v1 ReplicaSet`.
    ReplicaSet(Arc<ReplicaSet>),
    /// `apps/v1 DaemonSet`.
    DaemonSet(Arc<DaemonSet>),
}

/// The kinds of [`Object`], in the order the store keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `v1 Namespace`.
    Namespace,
    /// `v1 Service`.
    Service,
    /// `discovery.k8s.io/v1 EndpointSlice`.
    EndpointSlice,
    /// `v1 Endpoints`.
    Endpoints,
    /// `v1 Pod`.
    Pod,
    /// `apps/v1 StatefulSet`.
    StatefulSet,
    /// `apps/v1 Deployment`.
    Deployment,
    /// `apps/v1 ReplicaSet`.
    ReplicaSet,
    /// `apps/v1 DaemonSet`.
    DaemonSet,
}

/// Kind, namespace and name of one object: its identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The object's kind.
    pub kind: Kind,
    /// `metadata.namespace`; empty for cluster-scoped kinds (Namespace).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

// === impl Kind ===

impl Kind {
    /// Every kind, in store order.
    pub const ALL: [Self; 9] = [
        Self::Namespace,
        Self::Service,
        Self::EndpointSlice,
        Self::Endpoints,
        Self::Pod,
        Self::StatefulSet,
        Self::Deployment,
        Self::ReplicaSet,
        Self::DaemonSet,
    ];

    /// The `kind` field as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Namespace => Namespace::KIND,
            Self::Service => Service::KIND,
            Self::EndpointSlice => EndpointSlice::KIND,
            Self::Endpoints => Endpoints::KIND,
            Self::Pod => Pod::KIND,
            Self::StatefulSet => StatefulSet::KIND,
            Self::Deployment => Deployment::KIND,
            Self::ReplicaSet => ReplicaSet::KIND,
            Self::DaemonSet => DaemonSet::KIND,
        }
    }

    /// The `apiVersion` podns reads this kind at.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Namespace => Namespace::API_VERSION,
            Self::Service => Service::API_VERSION,
            Self::EndpointSlice => EndpointSlice::API_VERSION,
            Self::Endpoints => Endpoints::API_VERSION,
            Self::Pod => Pod::API_VERSION,
            Self::StatefulSet => StatefulSet::API_VERSION,
            Self::Deployment => Deployment::API_VERSION,
            Self::ReplicaSet => ReplicaSet::API_VERSION,
            Self::DaemonSet => DaemonSet::API_VERSION,
        }
    }

    /// The kind named by a `kind` field, if podns understands it.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        self != Self::Namespace
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl ObjectRef ===

impl ObjectRef {
    /// A reference from its parts.
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `Service default/web`, or `Namespace prod` for cluster-scoped kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_namespaced() {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        } else {
            write!(f, "{} {}", self.kind, self.name)
        }
    }
}

// === impl Object ===

/// `From<T>` and `From<Arc<T>>` for each kind, and contents equality with a pointer fast path.
macro_rules! object_kinds {
    ($($variant:ident),*) => {
        $(
            impl From<$variant> for Object {
                fn from(object: $variant) -> Self {
                    Self::$variant(Arc::new(object))
                }
            }

            impl From<Arc<$variant>> for Object {
                fn from(object: Arc<$variant>) -> Self {
                    Self::$variant(object)
                }
            }
        )*

        impl PartialEq for Object {
            fn eq(&self, other: &Self) -> bool {
                match (self, other) {
                    $((Self::$variant(a), Self::$variant(b)) => Arc::ptr_eq(a, b) || a == b,)*
                    _ => false,
                }
            }
        }
    };
}

object_kinds!(
    Namespace,
    Service,
    EndpointSlice,
    Endpoints,
    Pod,
    StatefulSet,
    Deployment,
    ReplicaSet,
    DaemonSet
);

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Namespace(_) => Kind::Namespace,
            Self::Service(_) => Kind::Service,
            Self::EndpointSlice(_) => Kind::EndpointSlice,
            Self::Endpoints(_) => Kind::Endpoints,
            Self::Pod(_) => Kind::Pod,
            Self::StatefulSet(_) => Kind::StatefulSet,
            Self::Deployment(_) => Kind::Deployment,
            Self::ReplicaSet(_) => Kind::ReplicaSet,
            Self::DaemonSet(_) => Kind::DaemonSet,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Namespace(o) => &o.metadata,
            Self::Service(o) => &o.metadata,
            Self::EndpointSlice(o) => &o.metadata,
            Self::Endpoints(o) => &o.metadata,
            Self::Pod(o) => &o.metadata,
            Self::StatefulSet(o) => &o.metadata,
            Self::Deployment(o) => &o.metadata,
            Self::ReplicaSet(o) => &o.metadata,
            Self::DaemonSet(o) => &o.metadata,
        }
    }

    /// The object's metadata, mutably; copies the object first if it is shared.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Namespace(o) => &mut Arc::make_mut(o).metadata,
            Self::Service(o) => &mut Arc::make_mut(o).metadata,
            Self::EndpointSlice(o) => &mut Arc::make_mut(o).metadata,
            Self::Endpoints(o) => &mut Arc::make_mut(o).metadata,
            Self::Pod(o) => &mut Arc::make_mut(o).metadata,
            Self::StatefulSet(o) => &mut Arc::make_mut(o).metadata,
            Self::Deployment(o) => &mut Arc::make_mut(o).metadata,
            Self::ReplicaSet(o) => &mut Arc::make_mut(o).metadata,
            Self::DaemonSet(o) => &mut Arc::make_mut(o).metadata,
        }
    }

    /// `metadata.namespace`: `default` when a namespaced object has none, empty for Namespaces.
    pub fn namespace(&self) -> &str {
        if !self.kind().is_namespaced() {
            return "";
        }
        match self.metadata().namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => DEFAULT_NAMESPACE,
        }
    }

    /// `metadata.name` (empty when missing; sources reject such objects).
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// The object's identity.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(self.kind(), self.namespace(), self.name())
    }

    /// The object as compact JSON: what [`crate::ClusterStore`] keeps (a tenth of the decoded
    /// struct's heap) and what the manifest watcher digests.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a k8s-openapi object into memory cannot fail: no map has non-string
        // keys and no value is a float.
        let json = match self {
            Self::Namespace(o) => serde_json::to_vec(&**o),
            Self::Service(o) => serde_json::to_vec(&**o),
            Self::EndpointSlice(o) => serde_json::to_vec(&**o),
            Self::Endpoints(o) => serde_json::to_vec(&**o),
            Self::Pod(o) => serde_json::to_vec(&**o),
            Self::StatefulSet(o) => serde_json::to_vec(&**o),
            Self::Deployment(o) => serde_json::to_vec(&**o),
            Self::ReplicaSet(o) => serde_json::to_vec(&**o),
            Self::DaemonSet(o) => serde_json::to_vec(&**o),
        };
        json.expect("a k8s-openapi object serialises to JSON")
    }

    /// An object of `kind` back from [`Object::to_json`].
    pub fn from_json(kind: Kind, json: &[u8]) -> serde_json::Result<Self> {
        Ok(match kind {
            Kind::Namespace => serde_json::from_slice::<Namespace>(json)?.into(),
            Kind::Service => serde_json::from_slice::<Service>(json)?.into(),
            Kind::EndpointSlice => serde_json::from_slice::<EndpointSlice>(json)?.into(),
            Kind::Endpoints => serde_json::from_slice::<Endpoints>(json)?.into(),
            Kind::Pod => serde_json::from_slice::<Pod>(json)?.into(),
            Kind::StatefulSet => serde_json::from_slice::<StatefulSet>(json)?.into(),
            Kind::Deployment => serde_json::from_slice::<Deployment>(json)?.into(),
            Kind::ReplicaSet => serde_json::from_slice::<ReplicaSet>(json)?.into(),
            Kind::DaemonSet => serde_json::from_slice::<DaemonSet>(json)?.into(),
        })
    }

    /// Sets `metadata.namespace` to `default` on a namespaced object that has none.
    ///
    /// Looks before it writes, so a shared object that has a namespace is not copied.
    pub fn default_namespace(&mut self) {
        if self.kind().is_namespaced()
            && self
                .metadata()
                .namespace
                .as_deref()
                .is_none_or(str::is_empty)
        {
            self.metadata_mut().namespace = Some(DEFAULT_NAMESPACE.to_owned());
        }
    }
}
