//! `tower::discover::Discover` over a [`Discovery`].
//!
//! This module owns [`DiscoverServices`], which turns [`Update`]s into
//! `tower::discover::Change::{Insert, Remove}` keyed by endpoint address, building one service
//! per endpoint with a caller's closure, so `tower::balance` (or any `Discover` consumer) can
//! balance over a headless service. Tower's `Discover` is implemented for every `TryStream` of
//! `Change`s, so this is a `Stream<Item = Result<Change<SocketAddr, S>, Infallible>>`.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tower::discover::Change;

use super::{Discovery, Update, Updates};
use crate::Endpoint;

/// A `tower::discover::Discover` of one service per endpoint, keyed by address.
///
/// `make` is called for each endpoint that joins (and again for an endpoint whose hostname or
/// SRV fields changed, which is a `Remove` then an `Insert`). The stream does not end while the
/// discovery runs.
///
/// ```
/// use std::net::SocketAddr;
/// use podns_client::{Discovery, Endpoint};
/// use tower::discover::{Change, Discover};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let discovery = Discovery::fixed([Endpoint::new("10.0.0.1:80".parse().unwrap())]);
/// // A "service" here is just the address; a real one would be a connection pool or client.
/// let mut services = discovery.discover_services(|endpoint: &Endpoint| endpoint.addr);
/// let change = std::future::poll_fn(|cx| std::pin::Pin::new(&mut services).poll_discover(cx)).await;
/// let expected: SocketAddr = "10.0.0.1:80".parse().unwrap();
/// assert!(matches!(change, Some(Ok(Change::Insert(key, addr))) if key == expected && addr == expected));
/// # });
/// ```
pub struct DiscoverServices<M, S> {
    /// The endpoint updates.
    updates: Updates,
    /// Builds a service for an endpoint.
    make: M,
    /// Keys inserted and not removed, to turn a `Reset` into removals.
    known: HashSet<SocketAddr>,
    /// Changes computed but not yet yielded.
    queue: VecDeque<Change<SocketAddr, S>>,
}

// === impl DiscoverServices ===

impl<M, S> DiscoverServices<M, S>
where
    M: FnMut(&Endpoint) -> S,
{
    /// Starts following `discovery`.
    pub fn new(discovery: &Discovery, make: M) -> Self {
        Self {
            updates: discovery.updates(),
            make,
            known: HashSet::new(),
            queue: VecDeque::new(),
        }
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Reset(endpoints) => {
                let keep: HashSet<SocketAddr> = endpoints.iter().map(|e| e.addr).collect();
                self.remove_where(|addr| !keep.contains(addr));
                for endpoint in &endpoints {
                    self.insert(endpoint);
                }
            }
            Update::Add(endpoints) => {
                for endpoint in &endpoints {
                    self.insert(endpoint);
                }
            }
            Update::Remove(endpoints) => {
                for endpoint in endpoints {
                    if self.known.remove(&endpoint.addr) {
                        self.queue.push_back(Change::Remove(endpoint.addr));
                    }
                }
            }
            Update::DoesNotExist => self.remove_where(|_| true),
        }
    }

    fn insert(&mut self, endpoint: &Endpoint) {
        self.known.insert(endpoint.addr);
        let service = (self.make)(endpoint);
        self.queue.push_back(Change::Insert(endpoint.addr, service));
    }

    fn remove_where(&mut self, mut gone: impl FnMut(&SocketAddr) -> bool) {
        let mut removed: Vec<SocketAddr> = self.known.iter().filter(|a| gone(a)).copied().collect();
        removed.sort_unstable();
        for addr in removed {
            self.known.remove(&addr);
            self.queue.push_back(Change::Remove(addr));
        }
    }
}

impl<M, S> Stream for DiscoverServices<M, S>
where
    M: FnMut(&Endpoint) -> S + Unpin,
{
    type Item = Result<Change<SocketAddr, S>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(change) = self.queue.pop_front() {
                return Poll::Ready(Some(Ok(change)));
            }
            match Pin::new(&mut self.updates).poll_next(cx) {
                Poll::Ready(Some(update)) => self.apply(update),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

// Nothing here is pinned structurally: the services are only moved in and out of the queue.
impl<M: Unpin, S> Unpin for DiscoverServices<M, S> {}

impl<M, S> std::fmt::Debug for DiscoverServices<M, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoverServices")
            .field("updates", &self.updates)
            .field("known", &self.known.len())
            .finish_non_exhaustive()
    }
}
