//! The round-robin policy: each endpoint in turn.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Candidates, PickContext, Policy, Route};
use crate::Endpoint;

/// Each endpoint in turn (one shared counter, so exactly even over a stable set); retries walk
/// on from the chosen one.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

// === impl RoundRobin ===

impl RoundRobin {
    /// Starting at the first endpoint.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Policy for RoundRobin {
    type State = ();

    fn prepare(&self, _: &[Endpoint]) {}

    fn pick(&self, _: &(), ctx: &PickContext<'_>, _: &Route<'_>) -> Candidates {
        match ctx.len() {
            0 => Candidates::none(),
            n => Candidates::walk(n, self.next.fetch_add(1, Ordering::Relaxed) % n),
        }
    }
}
