//! Endpoints and endpoint sets: what discovery produces and balancers choose from.
//!
//! This module owns [`Endpoint`] (one address a client may connect to, with the pod identity DNS
//! told us), [`EndpointSet`] (one complete, canonically ordered answer), the diff between two
//! sets, and the StatefulSet naming rules ([`ordinal_of`], [`pod_hostname`]). It does no I/O.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// One address a client may connect to.
///
/// Two endpoints are the same endpoint when their [`addr`](Self::addr) is equal: sets are keyed
/// by address, and an endpoint whose other fields change is reported as removed and added.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The address and port to connect to (the pod IP and, from SRV, the endpoint's port).
    pub addr: SocketAddr,
    /// The pod hostname, when the endpoint came from an SRV record whose target is
    /// `<hostname>.<service>.<ns>.svc.<zone>` and the label is not the system-assigned dashed
    /// address (`10-244-1-5`). `None` for A/AAAA discovery.
    pub hostname: Option<Arc<str>>,
    /// The StatefulSet ordinal: the trailing `-N` of [`hostname`](Self::hostname) (`redis-2` → 2).
    pub ordinal: Option<u32>,
    /// SRV priority (0 when not from SRV). Kept for callers; the policies do not use it, since
    /// Kubernetes gives every record the same priority.
    pub priority: u16,
    /// SRV weight (0 when not from SRV). Kept for callers; see [`priority`](Self::priority).
    pub weight: u16,
}

// === impl Endpoint ===

impl Endpoint {
    /// An endpoint with no hostname, ordinal, priority or weight.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            hostname: None,
            ordinal: None,
            priority: 0,
            weight: 0,
        }
    }

    /// Sets the pod hostname, and the ordinal derived from it by [`ordinal_of`].
    #[must_use]
    pub fn with_hostname(mut self, hostname: &str) -> Self {
        self.ordinal = ordinal_of(hostname);
        self.hostname = Some(Arc::from(hostname));
        self
    }

    /// Sets the SRV priority and weight.
    #[must_use]
    pub fn with_srv(mut self, priority: u16, weight: u16) -> Self {
        self.priority = priority;
        self.weight = weight;
        self
    }

    /// The pod hostname, if known.
    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }

    /// Same address, hostname and ordinal (SRV priority and weight aside).
    fn same_identity(&self, other: &Self) -> bool {
        self.addr == other.addr && self.hostname == other.hostname && self.ordinal == other.ordinal
    }

    /// The canonical sort key: ordinal first (so a StatefulSet reads 0, 1, 2…), then address.
    fn sort_key(&self) -> (u64, SocketAddr) {
        (self.ordinal.map_or(u64::MAX, u64::from), self.addr)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if let Some(hostname) = &self.hostname {
            write!(f, " ({hostname})")?;
        }
        Ok(())
    }
}

/// Whether a name exists and what discovery knows about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetState {
    /// No answer yet: the first lookup has not completed (or has only failed).
    Pending,
    /// The name exists; the set may still be empty (NODATA: no record of the asked type).
    Exists,
    /// NXDOMAIN: the service does not exist, or (Kubernetes DNS spec 2.4.1) is headless and has
    /// no ready endpoint.
    DoesNotExist,
}

/// One complete answer: the endpoints of a target at one moment, in canonical order.
///
/// Canonical order is by ordinal, then address, so that the rotation a DNS server applies to
/// multi-address answers does not look like a change, and "first" means ordinal 0. Addresses are
/// unique within a set (the first record for an address wins).
#[derive(Clone, Debug)]
pub struct EndpointSet {
    /// The endpoints, sorted and unique by address.
    endpoints: Arc<[Endpoint]>,
    /// Whether the name exists.
    state: SetState,
    /// Publication counter: 0 for [`pending`](Self::pending), then increased by discovery on
    /// every change.
    version: u64,
}

// === impl EndpointSet ===

impl EndpointSet {
    /// The set before any answer.
    pub fn pending() -> Self {
        Self {
            endpoints: Arc::from(Vec::new()),
            state: SetState::Pending,
            version: 0,
        }
    }

    /// The set of a name that does not exist (NXDOMAIN).
    pub fn does_not_exist() -> Self {
        Self {
            endpoints: Arc::from(Vec::new()),
            state: SetState::DoesNotExist,
            version: 0,
        }
    }

    /// A set of an existing name, put in canonical order and deduplicated by address.
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        let mut seen = std::collections::HashSet::new();
        let mut endpoints: Vec<Endpoint> = endpoints
            .into_iter()
            .filter(|e| seen.insert(e.addr))
            .collect();
        endpoints.sort_by_key(Endpoint::sort_key);
        Self {
            endpoints: Arc::from(endpoints),
            state: SetState::Exists,
            version: 0,
        }
    }

    /// Returns the same set with another version number.
    #[must_use]
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// The endpoints, in canonical order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Whether the name exists, or whether we know yet.
    pub fn state(&self) -> SetState {
        self.state
    }

    /// The publication counter (0 before the first answer, then increasing with each change).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether there is no endpoint (pending, NXDOMAIN or NODATA).
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Whether no answer has arrived yet.
    pub fn is_pending(&self) -> bool {
        self.state == SetState::Pending
    }

    /// The endpoint with this address.
    pub fn get(&self, addr: SocketAddr) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.addr == addr)
    }

    /// Whether two sets hold the same state and the same endpoints (ignoring versions).
    pub fn same_as(&self, other: &Self) -> bool {
        self.state == other.state && self.endpoints == other.endpoints
    }

    /// What changed from `self` to `next`: `(added, removed)`, each in canonical order. An
    /// endpoint whose hostname or ordinal changed is in both.
    ///
    /// SRV priority and weight are not identity: Kubernetes DNS answers weight
    /// ⌊100 / number of records⌋, so it changes for every endpoint whenever the service scales,
    /// and reporting that as every endpoint leaving and joining would make `tower` balancers
    /// drop every connection. The new values are in `next`.
    pub fn diff(&self, next: &Self) -> (Vec<Endpoint>, Vec<Endpoint>) {
        let old: HashMap<SocketAddr, &Endpoint> =
            self.endpoints.iter().map(|e| (e.addr, e)).collect();
        let new: HashMap<SocketAddr, &Endpoint> =
            next.endpoints.iter().map(|e| (e.addr, e)).collect();
        let added = next
            .endpoints
            .iter()
            .filter(|e| !old.get(&e.addr).is_some_and(|o| o.same_identity(e)))
            .cloned()
            .collect();
        let removed = self
            .endpoints
            .iter()
            .filter(|e| !new.get(&e.addr).is_some_and(|n| n.same_identity(e)))
            .cloned()
            .collect();
        (added, removed)
    }
}

impl Default for EndpointSet {
    fn default() -> Self {
        Self::pending()
    }
}

/// The StatefulSet ordinal of a pod hostname: the decimal after the last `-`.
///
/// `redis-2` → `Some(2)`, `web-10` → `Some(10)`; `redis` (no dash), `redis-` (no digits),
/// `-3` (no name), `redis-02` (a leading zero, which the StatefulSet controller never writes)
/// and `nginx-7d9f8` → `None`.
pub fn ordinal_of(hostname: &str) -> Option<u32> {
    let (name, digits) = hostname.rsplit_once('-')?;
    if name.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// The pod hostname in an SRV target, if the target names a pod of `service`.
///
/// A headless service's SRV targets are `<hostname>.<service>` for pods with a hostname, and a
/// system-assigned label otherwise (CoreDNS uses the dashed address, `10-244-1-5.<service>`;
/// `fd00--1` style for IPv6). Only the first kind is a hostname. `service` and `target` are
/// compared without case and without the trailing dot.
///
/// ```
/// use podns_client::pod_hostname;
/// let svc = "redis-headless.default.svc.cluster.local.";
/// assert_eq!(pod_hostname("redis-0.redis-headless.default.svc.cluster.local.", svc), Some("redis-0"));
/// assert_eq!(pod_hostname("10-244-1-5.redis-headless.default.svc.cluster.local.", svc), None);
/// assert_eq!(pod_hostname("redis-headless.default.svc.cluster.local.", svc), None);
/// ```
pub fn pod_hostname<'t>(target: &'t str, service: &str) -> Option<&'t str> {
    let target_trim = target.strip_suffix('.').unwrap_or(target);
    let service = service.strip_suffix('.').unwrap_or(service);
    let (label, rest) = target_trim.split_once('.')?;
    if label.is_empty() || !rest.eq_ignore_ascii_case(service) || is_dashed_address(label) {
        return None;
    }
    Some(label)
}

/// Whether a DNS label is an address written with dashes (`10-244-1-5`, `fd00--5`), the label
/// Kubernetes DNS assigns to endpoints without a hostname.
pub fn is_dashed_address(label: &str) -> bool {
    let v4 = label.replace('-', ".");
    if v4.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let v6 = label.replace('-', ":");
    v6.contains(':') && v6.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests;
