//! The random policy: a uniformly random first candidate.

use super::{Candidates, PickContext, Policy, Route, SplitMix};
use crate::Endpoint;

/// A uniformly random endpoint; retries walk on from it in order.
#[derive(Debug)]
pub struct Random {
    rng: SplitMix,
}

// === impl Random ===

impl Random {
    /// Seeded from the operating system.
    pub fn new() -> Self {
        Self::with_seed(rand::random())
    }

    /// Seeded, for reproducible picks (on one thread).
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: SplitMix::new(seed),
        }
    }
}

impl Default for Random {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy for Random {
    type State = ();

    fn prepare(&self, _: &[Endpoint]) {}

    fn pick(&self, _: &(), ctx: &PickContext<'_>, _: &Route<'_>) -> Candidates {
        match ctx.len() {
            0 => Candidates::none(),
            n => Candidates::walk(n, self.rng.below(n)),
        }
    }
}
