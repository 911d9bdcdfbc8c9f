//! Power of two choices, least outstanding requests.

use super::{Candidates, PickContext, Policy, Route, SplitMix};
use crate::Endpoint;

/// Power of two choices: draws two distinct endpoints at random and prefers the one with fewer
/// requests in flight ([`InFlight`](crate::InFlight) guards count them), the first drawn on a
/// tie; the other is the first retry, then the rest in order. Close to least-loaded at the cost
/// of two reads, without the herding of a global minimum.
#[derive(Debug)]
pub struct P2c {
    rng: SplitMix,
}

// === impl P2c ===

impl P2c {
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

impl Default for P2c {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy for P2c {
    type State = ();

    fn prepare(&self, _: &[Endpoint]) {}

    fn pick(&self, _: &(), ctx: &PickContext<'_>, _: &Route<'_>) -> Candidates {
        let n = ctx.len();
        if n <= 1 {
            return Candidates::walk(n, 0);
        }
        let a = self.rng.below(n);
        let b = (a + 1 + self.rng.below(n - 1)) % n;
        let (best, other) = if ctx.in_flight(b) < ctx.in_flight(a) {
            (b, a)
        } else {
            (a, b)
        };
        Candidates::prefer(best)
            .then_prefer(other)
            .then_walk(n, best)
    }
}
