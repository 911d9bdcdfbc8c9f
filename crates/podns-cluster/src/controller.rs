//! Standalone controllers: what a cluster's controllers would have made of the manifests.
//!
//! [`derive()`] is responsible for playing, in one pure and deterministic function, the parts of
//! a Kubernetes control plane that decide DNS answers when there is no cluster:
//!
//! ```text
//! ClusterStore ─▶ workload       StatefulSet / Deployment→ReplicaSet / ReplicaSet / DaemonSet → Pods
//!              ─▶ pod_ip         podIP(s) for Pods that have none        (pod CIDRs)
//!              ─▶ service_ip     clusterIP(s), ipFamilies, ipFamilyPolicy (service CIDRs)
//!              ─▶ endpoint_slice selector → EndpointSlices                (EndpointSlice controller)
//!              ─▶ mirroring      legacy Endpoints → EndpointSlices        (EndpointSliceMirroring)
//!              ═▶ DerivedCluster (k8s objects, as `kubectl get` would show them)
//! ```
//!
//! In cluster mode none of this runs: those objects come from the API server as they are, and
//! [`observed()`] hands them on unchanged.
//!
//! Conventions (documented here because users write them):
//! - **`podns.io/ready: "false"`** ([`READY_ANNOTATION`]) on a pod template or a Pod makes the
//!   synthesised pod Running but not Ready (its endpoints get `ready: false`). Explicit Pods that
//!   carry a `status` keep it; their `Ready` condition decides.
//! - Everything is deterministic: pod names, pod IPs, VIPs and slice names are hashes of
//!   namespace/name (FNV), so the same manifests give the same answers after a restart.
//!   Pod-template hashes follow Kubernetes in spirit (FNV-32a over a canonical JSON form of the
//!   template, then `rand.SafeEncodeString` of its decimal string, e.g. `55d7bb4b86`); they are
//!   not byte-identical to a real cluster's.
//! - Synthesised pods are spread over [`ControllerConfig::nodes`] round-robin by replica index;
//!   DaemonSets get one pod per node.
//!
//! With [`ControllerConfig::lean_pods`] the pods are made, and kept, with only what DNS reads
//! (`lean`: a synthesised pod is a name, a node, its IPs and an `Arc` of what its template's
//! pods share), the same code deciding names, IPs and slices for both forms (`pod::PodFacts`,
//! `workload::PodForm`): the Services, EndpointSlices and [`cluster_view`] are exactly those
//! of a full derivation. `podns serve` goes one step further with
//! [`standalone_view`](crate::view::standalone_view), which never makes the k8s `Pod`s and
//! parses each slice as it is made.
//!
//! [`cluster_view`]: crate::view::cluster_view

mod endpoint_slice;
mod ipam;
mod lean;
mod mirroring;
mod pod;
mod pod_ip;
mod service_ip;
mod workload;

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::object::{DEFAULT_NAMESPACE, Kind};
use crate::store::ClusterStore;
pub(crate) use lean::LeanPod;
pub(crate) use pod::PodFacts;
use workload::PodForm;

/// The annotation that marks synthesised (or status-less explicit) pods not ready: `"false"`.
pub const READY_ANNOTATION: &str = "podns.io/ready";

/// What the standalone controllers need to know about the cluster they pretend to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Pod networks: one, or two of different families for dual-stack. Default `10.244.0.0/16`.
    pub pod_cidrs: Vec<IpNet>,
    /// Service (VIP) networks: one, or two of different families for dual-stack; the first is
    /// the primary family. Default `10.96.0.0/12`.
    pub service_cidrs: Vec<IpNet>,
    /// Node names, for DaemonSets (one pod each) and `nodeName` of other synthesised pods.
    /// Default `["node-1"]`.
    pub nodes: Vec<String>,
    /// Keep only what DNS reads of each pod (default `false`: full pods, as `kubectl get`
    /// would show them). The controllers then work on lean pods (no template copy, only the
    /// named container ports, shared by the pods of a template), and [`DerivedCluster::pods`]
    /// keeps of each pod only what [`cluster_view`] reads: namespace, name, uid, labels,
    /// `deletionTimestamp`, `status.phase` and the pod IPs. Namespaces, Services,
    /// EndpointSlices and the view are the same either way.
    ///
    /// [`cluster_view`]: crate::view::cluster_view
    pub lean_pods: bool,
}

/// The cluster after the controllers ran: what `podns get` shows and views are built from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DerivedCluster {
    /// Namespace objects from the sources, by name.
    pub namespaces: Vec<Namespace>,
    /// Services with `clusterIP(s)`, `ipFamilies` and `ipFamilyPolicy` filled, by namespace/name.
    pub services: Vec<Service>,
    /// Pods, given and synthesised, each with a status and IPs, by namespace/name.
    pub pods: Vec<Pod>,
    /// EndpointSlices: given, derived from selectors and mirrored from Endpoints, by
    /// namespace/name.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Objects an API server would have refused, each with why; they are left out of the
    /// lists above (and logged at `warn`). Today: Services with unusable families or VIPs.
    pub rejected: Vec<ControllerError>,
}

/// A controller could not do what a cluster would have done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    /// The configuration itself is unusable (no CIDR, two CIDRs of one family, no node).
    #[error("controller config: {0}")]
    Config(String),
    /// No free address is left in a pod CIDR.
    #[error("Pod {pod}: no free address left in pod CIDR {cidr}")]
    PodCidrExhausted {
        /// `namespace/name` of the pod that needed an address.
        pod: String,
        /// The exhausted range.
        cidr: IpNet,
    },
    /// No free address is left in a service CIDR.
    #[error("Service {service}: no free address left in service CIDR {cidr}")]
    ServiceCidrExhausted {
        /// `namespace/name` of the Service.
        service: String,
        /// The exhausted range.
        cidr: IpNet,
    },
    /// A Service asks for an IP family no service CIDR is configured for.
    #[error(
        "Service {service}: {field}: {family} is not configured on this cluster (service CIDRs: {cidrs})"
    )]
    FamilyNotConfigured {
        /// `namespace/name` of the Service.
        service: String,
        /// The field that asks for it.
        field: &'static str,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The configured service CIDRs.
        cidrs: String,
    },
    /// A Service's families, policy or VIPs cannot be used as written.
    #[error("Service {service}: {field}: {message}")]
    InvalidService {
        /// `namespace/name` of the Service.
        service: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Two Services name the same VIP.
    #[error("Service {service}: spec.clusterIPs: {ip} is already allocated to Service {other}")]
    ClusterIpInUse {
        /// `namespace/name` of the second Service.
        service: String,
        /// The VIP.
        ip: std::net::IpAddr,
        /// `namespace/name` of the Service that has it.
        other: String,
    },
}

/// Runs every standalone controller over the store.
///
/// Fails only when the configuration cannot serve the objects (an invalid config, an
/// exhausted pod or service CIDR); single objects an API server would refuse are left out and
/// listed in [`DerivedCluster::rejected`].
pub fn derive(
    store: &ClusterStore,
    config: &ControllerConfig,
) -> Result<DerivedCluster, ControllerError> {
    let mut endpoint_slices = Vec::new();
    let mut sink = |slice| endpoint_slices.push(slice);
    let mut services = Vec::new();
    let mut service_sink = |svc| services.push(svc);
    let (namespaces, pods, rejected) = if config.lean_pods {
        let d = derive_with::<LeanPod>(store, config, &mut sink, &mut service_sink)?;
        let pods = d.pods.iter().map(LeanPod::to_pod).collect();
        (d.namespaces, pods, d.rejected)
    } else {
        let d = derive_with::<Pod>(store, config, &mut sink, &mut service_sink)?;
        (d.namespaces, d.pods, d.rejected)
    };
    sort_by_key(&mut endpoint_slices);
    Ok(DerivedCluster {
        namespaces,
        services,
        pods,
        endpoint_slices,
        rejected,
    })
}

/// A derivation before its Services and EndpointSlices are collected: [`DerivedCluster`] with
/// pods of the form `P` and neither Services nor slices (they went to the sinks).
pub(crate) struct Derivation<P> {
    pub(crate) namespaces: Vec<Namespace>,
    pub(crate) pods: Vec<P>,
    pub(crate) rejected: Vec<ControllerError>,
}

/// [`derive()`] with lean pods, handing each EndpointSlice (uid filled, in no particular order)
/// to `sink` and each accepted Service (filled, in key order) to `service_sink` as it is made,
/// so that a caller that only wants the view never holds them all.
pub(crate) fn derive_lean(
    store: &ClusterStore,
    config: &ControllerConfig,
    sink: &mut dyn FnMut(EndpointSlice),
    service_sink: &mut dyn FnMut(Service),
) -> Result<Derivation<LeanPod>, ControllerError> {
    derive_with(store, config, sink, service_sink)
}

/// Every controller, with pods of the form `P`. Services are decoded from the store twice (for
/// the VIPs written, then one at a time to fill, slice and hand on) rather than held at once.
fn derive_with<P: PodForm>(
    store: &ClusterStore,
    config: &ControllerConfig,
    sink: &mut dyn FnMut(EndpointSlice),
    service_sink: &mut dyn FnMut(Service),
) -> Result<Derivation<P>, ControllerError> {
    config.validate()?;
    let namespaces: Vec<Namespace> = store.namespaces().collect();

    // One vector of pods, sized up front: at 100k pods each doubling would copy hundreds of
    // megabytes of `Pod` structs.
    let mut pods: Vec<P> =
        Vec::with_capacity(store.count(Kind::Pod) + workload::count(store, config));
    pods.extend(store.pods().map(|pod| P::given(&pod)));
    let given = pods.len();
    workload::synthesise(store, config, &mut pods);
    {
        let explicit: HashSet<(String, String)> =
            store.pods().map(|p| key_of(&p.metadata)).collect();
        let mut index = 0;
        pods.retain(|pod| {
            index += 1;
            if index <= given {
                return true;
            }
            let key = pod.key();
            let replaced = explicit.contains(&(key.0.to_owned(), key.1.to_owned()));
            if replaced {
                tracing::debug!(pod = %format!("{}/{}", key.0, key.1), "an explicit Pod replaces the one its controller would create");
            }
            !replaced
        });
    }
    sort_by_key(&mut pods);
    pod_ip::assign(&mut pods, &config.pod_cidrs)?;
    pods.iter_mut().for_each(P::ensure_uid);

    let mut rejected = Vec::new();
    let mut selector_keys: HashSet<String> = HashSet::new();
    let written = store.services().inspect(|svc| {
        selector_keys.extend(endpoint_slice::selector_keys(svc).cloned());
    });
    let mut assigner = service_ip::Assigner::new(written, &config.service_cidrs, &mut rejected);
    let index = endpoint_slice::PodIndex::new(&pods, &selector_keys);

    let mut taken: HashSet<(String, String)> = store
        .endpoint_slices()
        .map(|s| key_of(&s.metadata))
        .collect();
    let mut sink = |mut slice: EndpointSlice| {
        ensure_uid("EndpointSlice", &mut slice.metadata);
        sink(slice);
    };
    store.endpoint_slices().for_each(&mut sink);
    let mut selectorless: HashSet<(String, String)> = HashSet::new();
    for mut svc in store.services() {
        if !assigner.fill(&mut svc, &mut rejected)? {
            continue;
        }
        ensure_uid("Service", &mut svc.metadata);
        index.derive(&svc, &mut taken, &mut sink);
        if mirroring::is_selectorless(&svc) {
            selectorless.insert(key_of(&svc.metadata));
        }
        service_sink(svc);
    }
    drop(index);
    let endpoints: Vec<_> = store.endpoints().collect();
    mirroring::mirror(&selectorless, endpoints.iter(), &mut taken)
        .into_iter()
        .for_each(&mut sink);

    Ok(Derivation {
        namespaces,
        pods,
        rejected,
    })
}

/// Cluster mode: the namespaces, services, pods and endpoint slices exactly as the API server
/// has them, in the same order [`derive()`] gives.
///
/// Nothing is synthesised, no VIP or pod IP assigned and no Endpoints mirrored: the cluster's own
/// controllers did all of that (its EndpointSliceMirroring controller wrote the mirrored slices
/// the store already holds). Nothing is rejected: the API server validated every object.
pub fn observed(store: &ClusterStore) -> DerivedCluster {
    DerivedCluster {
        namespaces: store.namespaces().collect(),
        services: store.services().collect(),
        pods: store.pods().collect(),
        endpoint_slices: store.endpoint_slices().collect(),
        rejected: Vec::new(),
    }
}

// === impl ControllerConfig ===

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            pod_cidrs: vec!["10.244.0.0/16".parse().expect("a valid CIDR")],
            service_cidrs: vec!["10.96.0.0/12".parse().expect("a valid CIDR")],
            nodes: vec!["node-1".to_owned()],
            lean_pods: false,
        }
    }
}

impl ControllerConfig {
    /// Checks the CIDR lists (one or two, of different families) and the node list (not empty).
    pub fn validate(&self) -> Result<(), ControllerError> {
        for (what, cidrs) in [("pod", &self.pod_cidrs), ("service", &self.service_cidrs)] {
            match cidrs.as_slice() {
                [_] => {}
                [a, b] if ipam::family(a) != ipam::family(b) => {}
                [_, _] => {
                    return Err(ControllerError::Config(format!(
                        "the two {what} CIDRs must be of different IP families (dual-stack)"
                    )));
                }
                [] => {
                    return Err(ControllerError::Config(format!("no {what} CIDR")));
                }
                _ => {
                    return Err(ControllerError::Config(format!(
                        "at most two {what} CIDRs (one per IP family)"
                    )));
                }
            }
        }
        if self.nodes.is_empty() {
            return Err(ControllerError::Config("no node".to_owned()));
        }
        Ok(())
    }
}

// === helpers shared by the controllers ===

/// (namespace, name) of an object, with the namespace defaulted.
pub(crate) fn key_of(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        meta.name.clone().unwrap_or_default(),
    )
}

/// [`key_of`], borrowed.
pub(crate) fn key_ref(meta: &ObjectMeta) -> (&str, &str) {
    (
        meta.namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Sorts objects by (namespace, name) in place. Sorts indices, then moves each object into
/// place along the permutation's cycles: pods and slices are large structs (a `Pod` is over
/// 2 KB), and moving them around in a sort dominated the cost at 20k pods, while a sorted copy
/// would double the memory they take.
fn sort_by_key<T: Keyed>(items: &mut [T]) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|a, b| items[*a].key().cmp(&items[*b].key()));
    // `order[i]` is the index of the object that belongs at `i`. Walking a cycle from `start`,
    // each swap puts one object in its place; the last one of the cycle is then in place too.
    let mut placed = vec![false; items.len()];
    for start in 0..items.len() {
        let mut i = start;
        while !placed[i] {
            placed[i] = true;
            let from = order[i];
            if from == start {
                break;
            }
            items.swap(i, from);
            i = from;
        }
    }
}

/// Objects known by (namespace, name), the namespace defaulted as [`key_of`] does.
pub(crate) trait Keyed {
    fn key(&self) -> (&str, &str);
}

impl Keyed for EndpointSlice {
    fn key(&self) -> (&str, &str) {
        key_ref(&self.metadata)
    }
}

/// `namespace/name`, for messages.
pub(crate) fn display_key(meta: &ObjectMeta) -> String {
    let (ns, name) = key_of(meta);
    format!("{ns}/{name}")
}

/// A controller owner reference to an object.
pub(crate) fn owner_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_else(|| stable_uid(kind, meta)),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A UID for an object the manifests gave none, in the API server's UUID form: derived from
/// kind, namespace and name, so owner references, `get -o yaml` and restarts all agree.
pub(crate) fn stable_uid(kind: &str, meta: &ObjectMeta) -> String {
    let (ns, name) = key_ref(meta);
    stable_uid_of(kind, ns, name)
}

/// [`stable_uid`] of the object `kind` `ns/name`.
pub(crate) fn stable_uid_of(kind: &str, ns: &str, name: &str) -> String {
    let a = fnv64a(format!("{kind}/{ns}/{name}").as_bytes());
    let b = fnv64a(format!("{name}/{ns}/{kind}").as_bytes());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 52) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// Gives `meta` its [`stable_uid`] unless the manifest set one.
fn ensure_uid(kind: &str, meta: &mut ObjectMeta) {
    if meta.uid.as_deref().is_none_or(str::is_empty) {
        meta.uid = Some(stable_uid(kind, meta));
    }
}

/// `rand.SafeEncodeString`'s alphabet: no vowels, no `0`, `1`, `3` (no accidental words).
pub(crate) const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a, 32 bits.
pub(crate) fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv64a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `rand.SafeEncodeString`: each byte to `SAFE_ALPHABET[byte % 27]`.
pub(crate) fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// Kubernetes' pod-template hash, in spirit: FNV-32a of the canonical JSON of `template`, its
/// decimal string safe-encoded.
pub(crate) fn template_hash<T: serde::Serialize>(template: &T) -> String {
    // k8s-openapi serialises fields in a fixed order and maps are BTreeMaps: canonical.
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    safe_encode(&fnv32a(&bytes).to_string())
}

/// Five characters of [`SAFE_ALPHABET`] derived from `seed` (a random name suffix, made
/// deterministic).
pub(crate) fn suffix5(seed: &str) -> String {
    let mut h = fnv64a(seed.as_bytes());
    let mut out = String::with_capacity(5);
    for _ in 0..5 {
        out.push(char::from(SAFE_ALPHABET[(h % 27) as usize]));
        h /= 27;
    }
    out
}

/// `generateName` made deterministic: `<base>-<5 chars>`, base cut to 58 characters as the API
/// server does, unique within `taken` (namespace, name).
pub(crate) fn generate_name(
    namespace: &str,
    base: &str,
    seed: &str,
    taken: &mut HashSet<(String, String)>,
) -> String {
    /// 63 − 5: the API server's `maxGeneratedNameLength`.
    const MAX_BASE: usize = 58;
    let mut prefix = format!("{base}-");
    if prefix.len() > MAX_BASE {
        let mut cut = MAX_BASE;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    for attempt in 0u32.. {
        let seed = if attempt == 0 {
            seed.to_owned()
        } else {
            format!("{seed}#{attempt}")
        };
        let name = format!("{prefix}{}", suffix5(&seed));
        if taken.insert((namespace.to_owned(), name.clone())) {
            return name;
        }
    }
    unreachable!("u32 attempts exhausted")
}
