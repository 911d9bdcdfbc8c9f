//! Publishing snapshots: one writer swaps in a new [`ZoneSnapshot`], many readers load it
//! without locking.
//!
//! This module is responsible for the hand-over between the zone builder (one task, owning the
//! [`ZoneWriter`]) and the query workers (each with a [`ZoneReader`] clone). A reader sees either
//! the old or the new snapshot, never a mix: the snapshot is one `Arc` swapped atomically
//! (`arc-swap`), so an answer is always consistent with one moment of the cluster.

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::ZoneSnapshot;

/// Creates the writer and the first reader of a published zone.
pub fn pair(initial: ZoneSnapshot) -> (ZoneWriter, ZoneReader) {
    let shared = Arc::new(ArcSwap::from_pointee(initial));
    (
        ZoneWriter {
            shared: shared.clone(),
        },
        ZoneReader { shared },
    )
}

/// The single publisher of zone snapshots (deliberately not `Clone`: one owner writes).
#[derive(Debug)]
pub struct ZoneWriter {
    shared: Arc<ArcSwap<ZoneSnapshot>>,
}

/// A lock-free view of the latest published snapshot.
#[derive(Clone, Debug)]
pub struct ZoneReader {
    shared: Arc<ArcSwap<ZoneSnapshot>>,
}

/// A loaded snapshot; hold it for one query (or a few), not for long: an old snapshot is
/// freed only when its last guard goes.
#[derive(Debug)]
pub struct ZoneGuard(Guard<Arc<ZoneSnapshot>>);

// === impl ZoneWriter ===

impl ZoneWriter {
    /// Makes `snapshot` the one every reader loads from now on, and hands back the previous
    /// one. Freeing a large snapshot takes a while (hundreds of ms at 100k endpoints), so a
    /// caller with more to do drops it elsewhere; readers still holding it keep it alive.
    pub fn publish(&self, snapshot: ZoneSnapshot) -> Arc<ZoneSnapshot> {
        self.shared.swap(Arc::new(snapshot))
    }

    /// Another reader of this zone.
    pub fn reader(&self) -> ZoneReader {
        ZoneReader {
            shared: self.shared.clone(),
        }
    }
}

// === impl ZoneReader ===

impl ZoneReader {
    /// The current snapshot; lock-free and allocation-free.
    pub fn load(&self) -> ZoneGuard {
        ZoneGuard(self.shared.load())
    }

    /// The current snapshot as an owned `Arc` (for holding it longer).
    pub fn load_full(&self) -> Arc<ZoneSnapshot> {
        self.shared.load_full()
    }
}

// === impl ZoneGuard ===

impl Deref for ZoneGuard {
    type Target = ZoneSnapshot;

    fn deref(&self) -> &ZoneSnapshot {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ZoneConfig, build_with_serial};

    #[test]
    fn readers_see_the_published_snapshot() {
        let config = ZoneConfig::default();
        let view = podns_view::ClusterView::default();
        let (writer, reader) = pair(build_with_serial(&config, &view, 1));
        let other = reader.clone();
        assert_eq!(reader.load().serial(), 1);
        writer.publish(build_with_serial(&config, &view, 2));
        assert_eq!(reader.load().serial(), 2);
        assert_eq!(other.load().serial(), 2);
        assert_eq!(writer.reader().load_full().serial(), 2);
    }
}
