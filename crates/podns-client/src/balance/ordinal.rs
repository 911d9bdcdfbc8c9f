//! StatefulSet-aware routing: writes to the primary (ordinal 0), reads to the replicas.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Candidates, Op, PickContext, Policy, Route};
use crate::Endpoint;

/// Routes by StatefulSet ordinal, as for a Redis or PostgreSQL primary/replica set where pod 0
/// is the primary:
///
/// - [`Op::Write`] → the endpoints with ordinal 0 only (one pod, possibly one address per IP
///   family); no other endpoint is ever tried, since a replica would refuse the write.
/// - [`Op::Read`] → the endpoints with ordinal > 0 in turn, then ordinal 0 as the last
///   fallback (and the only choice when there is no replica).
///
/// Endpoints without an ordinal get no traffic: ordinals come from hostnames, which only SRV
/// discovery sees (use [`LookupKind::Srv`](crate::LookupKind::Srv)).
#[derive(Debug, Default)]
pub struct Ordinal {
    next: AtomicUsize,
}

/// The endpoints of a set by role, as [`Ordinal`] prepares them.
#[derive(Clone, Debug, Default)]
pub struct OrdinalIndex {
    /// Indices of the endpoints with ordinal 0.
    pub primaries: Arc<[u32]>,
    /// Indices of the endpoints with ordinal > 0, by ordinal.
    pub replicas: Arc<[u32]>,
}

// === impl Ordinal ===

impl Ordinal {
    /// Starting with the first replica.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Policy for Ordinal {
    type State = OrdinalIndex;

    fn prepare(&self, endpoints: &[Endpoint]) -> OrdinalIndex {
        let mut primaries = Vec::new();
        let mut replicas: Vec<(u32, u32)> = Vec::new();
        for (i, endpoint) in endpoints.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            match endpoint.ordinal {
                Some(0) => primaries.push(i),
                Some(ordinal) => replicas.push((ordinal, i)),
                None => {}
            }
        }
        replicas.sort_unstable();
        OrdinalIndex {
            primaries: primaries.into(),
            replicas: replicas.into_iter().map(|(_, i)| i).collect(),
        }
    }

    fn pick(&self, index: &OrdinalIndex, _: &PickContext<'_>, route: &Route<'_>) -> Candidates {
        match route.op() {
            Op::Write => Candidates::none().then_walk_list(index.primaries.clone(), 0),
            Op::Read if index.replicas.is_empty() => {
                Candidates::none().then_walk_list(index.primaries.clone(), 0)
            }
            Op::Read => {
                let start = self.next.fetch_add(1, Ordering::Relaxed) % index.replicas.len();
                Candidates::none()
                    .then_walk_list(index.replicas.clone(), start)
                    .then_walk_list(index.primaries.clone(), 0)
            }
        }
    }
}
