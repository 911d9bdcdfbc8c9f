//! Cluster state for podns: sources, store, standalone controllers and service views.
//!
//! podns-cluster is responsible for everything between Kubernetes objects and the
//! [`podns_view::ClusterView`] the DNS zone is built from. It leaves DNS to `podns-zone`.
//!
//! ```text
//! source::manifest::{load, watch} ─ClusterEvent─▶ store::ClusterStore
//! source::kube::spawn_watch ─KubeEvent::Change─▶       │
//!                                                      ▼
//!                  standalone: controller::derive ─▶ DerivedCluster (Services with VIPs,
//!                  cluster:    controller::observed    │ Pods with IPs, EndpointSlices)
//!                                                      ▼
//!                                view::cluster_view ─▶ podns_view::ClusterView
//!  standalone serving, in one step: view::standalone_view ─▶ podns_view::ClusterView
//!
//!  cluster mode, one event at a time:
//!  ClusterEvent ─▶ view::IncrementalView (owns the store) ─▶ ViewDelta (changed Services only)
//! ```
//!
//! Start from [`source::manifest::watch`] (or [`source::manifest::load`]), feed its events to a
//! [`store::ClusterStore`], then call [`controller::derive`] and [`view::cluster_view`] (with a
//! [`view::ViewConfig`]: CoreDNS's `namespaces`/`labels`/`namespace_labels` filters, parsed by
//! [`selector::LabelSelector`]) after each change. In cluster mode, [`view::IncrementalView`]
//! does the same per event and reports only the Services that changed. Invariants:
//! - every stage is deterministic: the same objects give the same pods, IPs, slices and views;
//! - a broken manifest set is reported whole ([`source::manifest::ManifestErrors`]) and never
//!   replaces the last good state;
//! - [`controller::derive`] is pure; [`view::cluster_view`] never fails (bad data is skipped
//!   with a warning);
//! - [`view::IncrementalView`] always holds what [`view::cluster_view`] gives for its store;
//! - an [`Object`] is a shared pointer: cloning one (or a store) copies no object.

pub mod controller;
pub mod object;
pub mod selector;
pub mod source;
pub mod store;
pub mod view;

pub use controller::{
    ControllerConfig, ControllerError, DerivedCluster, READY_ANNOTATION, derive, observed,
};
pub use object::{Kind, Object, ObjectRef};
pub use selector::{LabelSelector, SelectorError};
pub use source::ClusterEvent;
pub use source::kube::{
    KubeError, KubeEvent, KubeStatus, KubeWatch, KubeWatchConfig, client as kube_client,
    spawn_watch,
};
pub use source::manifest::{
    ManifestError, ManifestErrors, ManifestEvent, ManifestWatch, WatchError, load, load_store,
    watch,
};
pub use store::ClusterStore;
pub use store::{SERVICE_NAME_LABEL, service_name_of};
pub use view::{
    DerivedCounts, IncrementalView, StandaloneView, ViewConfig, ViewDelta, cluster_view,
    standalone_view,
};
