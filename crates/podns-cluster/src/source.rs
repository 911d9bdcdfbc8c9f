//! Sources of cluster state, and the one event type they all emit.
//!
//! A source is responsible for turning the outside world (manifest files here; the Kubernetes API
//! in a later source) into [`ClusterEvent`]s over [`Object`]s. It leaves storing them to
//! [`crate::store::ClusterStore`] and deriving anything from them to the controllers.
//!
//! A source only ever emits complete state in a [`ClusterEvent::Resync`]: the manifest source
//! re-reads the whole set on each change and emits nothing when the set is broken, so the last
//! good state keeps serving.

pub mod manifest;

use crate::object::{Object, ObjectRef};

/// One change to cluster state, as any source reports it.
#[derive(Clone, Debug, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "events are moved once from source to store; boxing would only add noise for callers"
)]
pub enum ClusterEvent {
    /// An object was created or changed (replaces any object with the same [`ObjectRef`]).
    Apply(Object),
    /// An object was deleted.
    Delete(ObjectRef),
    /// The complete state: every object not listed is gone.
    Resync(Vec<Object>),
}
