//! Service views: the vocabulary between cluster state and the DNS zone.
//!
//! `podns-cluster` turns Kubernetes objects (Services, EndpointSlices, Pods, …) into a
//! [`ClusterView`]; `podns-zone` turns a [`ClusterView`] into DNS records. Nothing else crosses
//! that boundary, so this crate is plain data: no Kubernetes types, no async runtime, no DNS
//! encoding. Everything here is already normalised:
//!
//! - names are as the API stores them (DNS-1123 labels, lower case); the zone lower-cases again
//!   defensively because DNS comparisons are case-insensitive;
//! - endpoints keep their EndpointSlice conditions, so the zone decides what "ready" means for
//!   DNS (the spec: only *ready* endpoints are published);
//! - endpoint ports are the EndpointSlice ports (resolved `targetPort`s), service ports are the
//!   Service's own `spec.ports`.
//!
//! ```text
//! ClusterView ─┬─ namespaces: [String]
//!              ├─ services:  [ServiceView] ─┬─ key (namespace/name), kind, ports
//!              │                            └─ endpoints: [EndpointView] ── addresses, hostname,
//!              │                                                            conditions, ports, pod
//!              └─ pods:      [PodView] ── namespace, name, addresses (for `pods verified`)
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// Everything the DNS zone needs to know about the cluster at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Every namespace known to exist (from Namespace objects and from the namespaces of the
    /// objects themselves), sorted and unique. `<ns>.svc.<zone>` exists for each of them.
    pub namespaces: Vec<String>,
    /// Every Service, sorted by [`ServiceKey`].
    pub services: Vec<ServiceView>,
    /// Every Pod that may have a pod record (CoreDNS `pods verified`: not terminating, not
    /// finished, with an IP), sorted by namespace and name. Only the zone's `pods verified`
    /// mode reads it; it may be left empty otherwise.
    pub pods: Vec<PodView>,
}

/// One Pod as `pods verified` sees it: an address that `a-b-c-d.<ns>.pod.<zone>` may name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodView {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name` (for logs and display; DNS names a pod by its address).
    pub name: String,
    /// `status.podIPs` (primary first), at most one per family.
    pub addresses: Vec<IpAddr>,
}

/// Namespace and name of a Service: its identity in the cluster and in DNS.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ServiceKey {
    /// A key from namespace and name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One Service as DNS sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceView {
    /// Namespace and name.
    pub key: ServiceKey,
    /// What kind of records the Service gets.
    pub kind: ServiceKind,
    /// The Service's own `spec.ports` (port numbers as clients of a ClusterIP use them).
    pub ports: Vec<PortView>,
    /// Endpoints from every EndpointSlice of the Service, in slice order; the same address may
    /// appear more than once (several slices, several port sets).
    pub endpoints: Vec<EndpointView>,
}

/// The DNS-relevant kind of a Service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// A Service with virtual IPs (`spec.clusterIPs`, one per IP family): spec §2.3.
    ClusterIp {
        /// The VIPs, primary family first.
        cluster_ips: Vec<IpAddr>,
    },
    /// A Service with `clusterIP: None`: spec §2.4, records come from the endpoints.
    Headless,
    /// `type: ExternalName`: spec §2.5, a CNAME to `external_name`.
    ExternalName {
        /// `spec.externalName`, without a trailing dot.
        external_name: String,
    },
}

/// One port, of a Service or of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortView {
    /// The port name; `None` for an unnamed port, which gets no SRV record.
    pub name: Option<String>,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Port number.
    pub port: u16,
}

/// Transport protocol of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP, the Kubernetes default.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The SRV protocol label, lower case as the spec writes it (`_tcp`, `_udp`, `_sctp`).
    pub fn srv_label(self) -> &'static str {
        match self {
            Self::Tcp => "_tcp",
            Self::Udp => "_udp",
            Self::Sctp => "_sctp",
        }
    }

    /// The Kubernetes spelling (`TCP`, `UDP`, `SCTP`).
    pub fn as_k8s(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        }
    }
}

/// The conditions of an endpoint, as an EndpointSlice carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EndpointConditions {
    /// `conditions.ready` (a missing value counts as ready, as the API documents).
    pub ready: bool,
    /// `conditions.serving` (missing: same as `ready`).
    pub serving: bool,
    /// `conditions.terminating` (missing: false).
    pub terminating: bool,
}

impl EndpointConditions {
    /// Ready, serving, not terminating.
    pub const READY: Self = Self {
        ready: true,
        serving: true,
        terminating: false,
    };
}

/// One endpoint of a Service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointView {
    /// The endpoint's addresses (all of one family: an EndpointSlice has one `addressType`).
    pub addresses: Vec<IpAddr>,
    /// `hostname` from the EndpointSlice: set only when the pod's `spec.hostname` is set and its
    /// `spec.subdomain` names this Service (or as written in a manual slice/Endpoints).
    pub hostname: Option<String>,
    /// Readiness as the EndpointSlice says.
    pub conditions: EndpointConditions,
    /// The EndpointSlice's ports (resolved `targetPort`s), shared by every endpoint of a slice.
    pub ports: Arc<[PortView]>,
    /// `nodeName`, when known.
    pub node_name: Option<String>,
    /// `zone` (topology), when known.
    pub zone: Option<String>,
    /// Name of the Pod in `targetRef` (kind `Pod`), when the endpoint is a pod. The zone uses
    /// it as the endpoint's DNS label under CoreDNS's `endpoint_pod_names` when the endpoint has
    /// no hostname and the name is a DNS-1123 label.
    pub target_pod: Option<String>,
}
