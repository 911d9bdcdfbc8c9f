//! The EndpointSlice controller: Service selector → EndpointSlices, by Kubernetes' rules.
//!
//! Rules (from `pkg/controller/endpointslice/` and `staging/src/k8s.io/endpointslice/`):
//! - only Services with a non-empty `spec.selector` that are not `type: ExternalName` (an empty
//!   selector is dropped by the API, so it counts as none);
//! - pods of the Service's namespace whose labels contain every `key: value` of the selector;
//!   pods without an IP, or in phase `Succeeded`/`Failed`, are left out
//!   (`ShouldPodBeInEndpoints` with terminating pods included);
//! - one set of slices per `spec.ipFamilies` entry, `addressType` `IPv4`/`IPv6`, each endpoint
//!   with the pod's address of that family;
//! - conditions: `serving` = pod Ready or `publishNotReadyAddresses`; `terminating` =
//!   `deletionTimestamp` set; `ready` = `publishNotReadyAddresses` or (serving and not terminating);
//! - `hostname` only when the pod has `spec.hostname` and its `spec.subdomain` is the Service name;
//! - ports: each Service port, `targetPort` resolved per pod (a number as is; a name as the
//!   container port of that name and protocol, in containers or restartable init containers,
//!   the port left out for that pod when missing; unset as the port), `name` (`""` when unnamed)
//!   and `protocol` (`TCP` by default) kept;
//! - endpoints with different resolved port sets go to different slices, at most
//!   [`MAX_ENDPOINTS_PER_SLICE`] per slice, ordered by pod name; a Service with no endpoints of
//!   a family gets one empty placeholder slice for it;
//! - names `<service>-<5 chars>` (deterministic here), the Service's labels plus
//!   `kubernetes.io/service-name`, `endpointslice.kubernetes.io/managed-by` and, for headless
//!   Services, `service.kubernetes.io/headless: ""`; an owner reference to the Service.
//!
//! `zone` stays unset: standalone nodes have no topology labels.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::Resource;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ipam::ip_family;
use super::pod::PodFacts;
use super::service_ip::is_headless;
use super::{generate_name, key_of, key_ref, owner_ref};

/// The controller's default `--max-endpoints-per-slice`.
pub(crate) const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// `kubernetes.io/service-name`: which Service a slice belongs to.
pub(crate) const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// `endpointslice.kubernetes.io/managed-by`: which controller owns a slice.
pub(crate) const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// `service.kubernetes.io/headless`: set (to `""`) on slices of headless Services.
pub(crate) const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// The EndpointSlice controller's `managed-by` value.
pub(crate) const MANAGED_BY_CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// The label keys some selector of `svc` names (what [`PodIndex`] indexes pods by).
pub(crate) fn selector_keys(svc: &Service) -> impl Iterator<Item = &String> {
    selected(svc).into_iter().flat_map(BTreeMap::keys)
}

/// Pods by (namespace, label key, label value), each list in name order: a Service only
/// looks at the pods that carry the rarest pair of its selector, not at every pod. Only keys
/// some selector names are indexed (a StatefulSet pod's own name and index would otherwise be
/// two entries per pod), and keys borrow from the pods and the key set.
///
/// The lists are ranges of one array of pod positions, filled in two passes (count, then
/// place): a `Vec` of references per pair spent 4.5 MB at 100k pods (its own header and
/// doubling slack, in a table of 72-byte slots), this spends 4 bytes per indexed label.
pub(crate) struct PodIndex<'a, P> {
    pods: &'a [P],
    /// (namespace, key, value) → the range of `positions` holding its pods.
    by_label: HashMap<(&'a str, &'a str, &'a str), (u32, u32)>,
    /// Positions in `pods`, grouped by pair, each group in pod order.
    positions: Vec<u32>,
}

impl<'a, P: PodFacts> PodIndex<'a, P> {
    /// Indexes `pods` (sorted by namespace/name) under the label keys in `keys`.
    pub(crate) fn new(pods: &'a [P], keys: &'a HashSet<String>) -> Self {
        let pairs = |pod: &'a P| {
            let (namespace, _) = pod.key();
            keys.iter()
                .filter_map(move |key| Some((namespace, key.as_str(), pod.label(key)?)))
        };
        // Pass 1: how many pods each pair has (as the range's length, for now).
        let mut by_label: HashMap<(&str, &str, &str), (u32, u32)> = HashMap::new();
        let mut total = 0usize;
        for pod in pods {
            for pair in pairs(pod) {
                by_label.entry(pair).or_default().1 += 1;
                total += 1;
            }
        }
        assert!(u32::try_from(total).is_ok(), "{total} indexed pod labels");
        // Each pair's start; its length counts up again as pass 2 places its pods.
        let mut start = 0u32;
        for range in by_label.values_mut() {
            let count = range.1;
            *range = (start, 0);
            start += count;
        }
        let mut positions = vec![0u32; total];
        for (at, pod) in pods.iter().enumerate() {
            for pair in pairs(pod) {
                let range = by_label.get_mut(&pair).expect("counted in pass 1");
                positions[(range.0 + range.1) as usize] = at as u32;
                range.1 += 1;
            }
        }
        by_label.shrink_to_fit();
        Self {
            pods,
            by_label,
            positions,
        }
    }

    /// Where the pods carrying `key=value` in `namespace` are in `positions`.
    fn range(&self, namespace: &str, key: &str, value: &str) -> (u32, u32) {
        let range = self.by_label.get(&(namespace, key, value));
        range.copied().unwrap_or_default()
    }

    /// The pods of a range of `positions`, in name order.
    fn pods_in(&self, (start, len): (u32, u32)) -> impl Iterator<Item = &'a P> + '_ {
        let pods = self.pods;
        self.positions[start as usize..(start + len) as usize]
            .iter()
            .map(move |&at| &pods[at as usize])
    }

    /// Hands `sink` the slices of `svc`, if it has a selector. `taken` holds the slice names
    /// in use and receives the new ones.
    pub(crate) fn derive(
        &self,
        svc: &Service,
        taken: &mut HashSet<(String, String)>,
        sink: &mut dyn FnMut(EndpointSlice),
    ) {
        let Some(selector) = selected(svc) else {
            return;
        };
        let spec = svc.spec.as_ref();
        let (namespace, name) = key_of(&svc.metadata);
        let rarest = selector
            .iter()
            .map(|(k, v)| self.range(&namespace, k, v))
            .min_by_key(|&(_, len)| len)
            .unwrap_or_default();
        let members: Vec<&P> = self
            .pods_in(rarest)
            .filter(|p| selector.iter().all(|(k, v)| p.label(k) == Some(v.as_str())))
            .filter(|p| should_be_in_endpoints(*p))
            .collect();
        let families: Vec<String> = match spec.and_then(|s| s.ip_families.as_deref()) {
            Some(f) if !f.is_empty() => f.to_vec(),
            _ => vec!["IPv4".to_owned()],
        };
        for family in &families {
            // Port set → endpoints, in first-seen order (pods are in name order).
            let mut groups: Vec<(Vec<EndpointPort>, Vec<Endpoint>)> = Vec::new();
            for pod in &members {
                let Some(endpoint) = pod_to_endpoint(*pod, svc, family) else {
                    continue;
                };
                let ports = endpoint_ports(svc, *pod);
                match groups.iter_mut().find(|(p, _)| *p == ports) {
                    Some((_, eps)) => eps.push(endpoint),
                    None => groups.push((ports, vec![endpoint])),
                }
            }
            let mut made = 0;
            for (group, (ports, endpoints)) in groups.into_iter().enumerate() {
                for (chunk_no, chunk) in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE).enumerate() {
                    let seed = format!("{namespace}/{name}/{family}/{group}/{chunk_no}");
                    sink(new_slice(
                        svc,
                        family,
                        &seed,
                        chunk.to_vec(),
                        Some(ports.clone()),
                        taken,
                    ));
                    made += 1;
                }
            }
            if made == 0 {
                let seed = format!("{namespace}/{name}/{family}/placeholder");
                sink(new_slice(svc, family, &seed, Vec::new(), None, taken));
            }
        }
    }
}

/// The selector of a Service the controller makes slices for: not empty (the API drops an
/// empty one), not `type: ExternalName`.
fn selected(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    (spec.type_.as_deref() != Some("ExternalName")).then_some(selector)
}

/// `ShouldPodBeInEndpoints(pod, includeTerminating: true)`: has an IP, not finished.
fn should_be_in_endpoints(pod: &impl PodFacts) -> bool {
    !matches!(pod.phase(), Some("Succeeded" | "Failed")) && !pod.ips().is_empty()
}

/// `podToEndpoint`: `None` when the pod has no address of `family`.
fn pod_to_endpoint(pod: &impl PodFacts, svc: &Service, family: &str) -> Option<Endpoint> {
    let address = pod.ips().into_iter().find(|ip| ip_family(ip) == family)?;
    let spec = svc.spec.as_ref();
    let publish_not_ready = spec
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let serving = publish_not_ready || pod.is_ready();
    let terminating = pod.is_terminating();
    // "ready" is never true for a terminating pod, unless publishNotReadyAddresses is set.
    let ready = publish_not_ready || (serving && !terminating);
    let (pod_ns, pod_name) = pod.key();
    let (svc_ns, svc_name) = key_ref(&svc.metadata);
    let hostname = pod
        .hostname()
        .filter(|h| !h.is_empty())
        .filter(|_| pod.subdomain() == Some(svc_name) && pod_ns == svc_ns)
        .map(str::to_owned);
    Some(Endpoint {
        addresses: vec![address.to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname,
        node_name: pod.node_name().filter(|n| !n.is_empty()).map(str::to_owned),
        target_ref: Some(ObjectReference {
            kind: Some(Pod::KIND.to_owned()),
            namespace: Some(pod_ns.to_owned()),
            name: Some(pod_name.to_owned()),
            uid: pod.uid().map(Cow::into_owned),
            ..ObjectReference::default()
        }),
        ..Endpoint::default()
    })
}

/// `getEndpointPorts`: the Service's ports with `targetPort` resolved for this pod.
fn endpoint_ports(svc: &Service, pod: &impl PodFacts) -> Vec<EndpointPort> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".to_owned())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// `podutil.FindPort`: the pod port a Service port's `targetPort` means.
fn find_port(pod: &impl PodFacts, sp: &ServicePort) -> Option<i32> {
    match sp.target_port.as_ref() {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            pod.find_port(name, sp.protocol.as_deref().unwrap_or("TCP"))
        }
    }
}

fn new_slice(
    svc: &Service,
    family: &str,
    seed: &str,
    endpoints: Vec<Endpoint>,
    ports: Option<Vec<EndpointPort>>,
    taken: &mut HashSet<(String, String)>,
) -> EndpointSlice {
    let (namespace, name) = key_of(&svc.metadata);
    let mut labels: BTreeMap<String, String> = svc
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| {
            ![LABEL_SERVICE_NAME, LABEL_MANAGED_BY, LABEL_HEADLESS].contains(&k.as_str())
        })
        .collect();
    labels.insert(LABEL_SERVICE_NAME.to_owned(), name.clone());
    labels.insert(
        LABEL_MANAGED_BY.to_owned(),
        MANAGED_BY_CONTROLLER.to_owned(),
    );
    if svc.spec.as_ref().is_some_and(is_headless) {
        labels.insert(LABEL_HEADLESS.to_owned(), String::new());
    }
    let owner = owner_ref(Service::API_VERSION, Service::KIND, &svc.metadata);
    EndpointSlice {
        metadata: slice_metadata(namespace, &name, labels, owner, seed, taken),
        address_type: family.to_owned(),
        endpoints,
        ports,
    }
}

/// The metadata of a slice a controller makes for `service`: a generated name
/// `<service>-<5 chars>` unique in the namespace, the labels, and the owner as controller.
pub(crate) fn slice_metadata(
    namespace: String,
    service: &str,
    labels: BTreeMap<String, String>,
    owner: OwnerReference,
    seed: &str,
    taken: &mut HashSet<(String, String)>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(generate_name(&namespace, service, seed, taken)),
        generate_name: Some(format!("{service}-")),
        namespace: Some(namespace),
        labels: Some(labels),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    }
}
