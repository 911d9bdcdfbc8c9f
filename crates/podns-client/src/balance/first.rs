//! The "first IP only" policy: always the first endpoint, the rest in order for retries.

use super::{Candidates, PickContext, Policy, Route};
use crate::Endpoint;

/// Always the first endpoint of the set in canonical order (ordinal 0, else the lowest
/// address); retries walk the rest in order. The behaviour of clients that take the first
/// address of an answer, made stable: a DNS server's rotation does not move it.
#[derive(Clone, Copy, Debug, Default)]
pub struct First;

impl Policy for First {
    type State = ();

    fn prepare(&self, _: &[Endpoint]) {}

    fn pick(&self, _: &(), ctx: &PickContext<'_>, _: &Route<'_>) -> Candidates {
        Candidates::walk(ctx.len(), 0)
    }
}
