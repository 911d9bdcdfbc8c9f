//! Sources of cluster state, and the one event type they all emit.
//!
//! A source is responsible for turning the outside world (manifest files, the Kubernetes API)
//! into [`ClusterEvent`]s over [`Object`]s. It leaves storing them to
//! [`crate::store::ClusterStore`] and deriving anything from them to the controllers.
//!
//! A source only ever changes state by complete steps, so the last good state keeps serving
//! until the new one is whole: the manifest source re-reads the whole set on each change and
//! emits one [`ClusterEvent::Resync`] (nothing when the set is broken); the Kubernetes source
//! watches each kind on its own and streams a relist of one kind as
//! [`ClusterEvent::RelistStart`], [`ClusterEvent::RelistItems`] (the objects, in chunks) and
//! [`ClusterEvent::RelistDone`] — the consumer holds the items aside and applies them as one
//! relist at `RelistDone` — between which it streams [`ClusterEvent::Apply`] and
//! [`ClusterEvent::Delete`]. Streaming the items lets a consumer keep them in its own (compact)
//! form as they come, instead of a list of every object of the kind in memory at once.

pub mod kube;
pub mod manifest;

use crate::object::{Kind, Object, ObjectRef};

/// One change to cluster state, as any source reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterEvent {
    /// An object was created or changed (replaces any object with the same [`ObjectRef`]).
    Apply(Object),
    /// An object was deleted.
    Delete(ObjectRef),
    /// The complete state: every object not listed is gone.
    Resync(Vec<Object>),
    /// The complete state of one kind (a relist): every object of `kind` not listed is gone;
    /// objects of other kinds are untouched. Objects of another kind in `objects` are ignored.
    ResyncKind {
        /// The kind that was relisted.
        kind: Kind,
        /// Every object of that kind.
        objects: Vec<Object>,
    },
    /// A relist of `kind` begins: items held aside from an earlier, unfinished relist of it
    /// are dropped.
    RelistStart(Kind),
    /// Objects of the relist of their kind in progress: held aside, not applied, until
    /// [`ClusterEvent::RelistDone`] for their kind.
    RelistItems(Vec<Object>),
    /// The relist of `kind` is complete: as [`ClusterEvent::ResyncKind`] with the objects of
    /// the [`ClusterEvent::RelistItems`] since its [`ClusterEvent::RelistStart`].
    RelistDone(Kind),
}
