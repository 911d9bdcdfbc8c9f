//! Planning a lab: which pods run where, in what order, and what DNS is served about them.
//!
//! The plan is responsible for turning what podns derived from the manifests into [`LabPod`]s
//! (address, identity, command, readiness port, owner), for the StatefulSet start order
//! ([`start_stages`]), for new identities when a controller replaces a deleted pod
//! ([`replacement`]), and for the manifests the lab's DNS server serves ([`served_objects`],
//! [`served_pods`]). Everything here is pure; running it is `lab`'s job.
//!
//! The lab's DNS server does not re-derive pods from the workloads: it serves the lab's pods as
//! explicit Pods (status, IP and readiness as the lab sees them), next to the manifests' other
//! objects. That is what lets DNS follow the lab: a pod that is not ready yet is not published,
//! and a Deployment pod replaced under a new name and IP is published under those.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodIP, Service};
use podns_cluster::{DerivedCluster, Object};
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::process::ProcessId;

/// One pod of the lab: its identity and what runs in it, plus what the lab made for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabPod {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name; also the name of its network namespace and of `/etc/netns/<name>/`.
    pub name: String,
    /// The pod's address on the lab bridge.
    pub ip: Ipv4Addr,
    /// Who made the pod, which decides its start order and what replaces it when deleted.
    pub owner: Owner,
    /// `hostname` inside the pod: `spec.hostname`, else the pod name (as the kubelet sets it).
    pub hostname: String,
    /// `<hostname>.<subdomain>.<ns>.svc.<zone>` when a headless Service publishes it.
    pub fqdn: Option<String>,
    /// Headless Services that select the pod and publish only ready endpoints: DNS shows the
    /// pod under them exactly while it is ready (see [`LabPod::dns_name`]).
    #[serde(default)]
    pub headless: Vec<String>,
    /// The first container's `command` + `args`; empty when it has none (the image's entry
    /// point is unknown here), and then the pod runs no process.
    pub command: Vec<String>,
    /// The first container's literal `env` values (`valueFrom` cannot be resolved here).
    pub env: Vec<(String, String)>,
    /// The first container's first TCP port: the pod is ready when it accepts connections.
    pub port: Option<u16>,
    /// The pod as podns derived it; served (with the lab's status) to the DNS server.
    pub object: Pod,
    /// The lab-side end of the pod's veth pair, in the lab namespace (unique per lab).
    pub veth: String,
    /// Whether the pod's network namespace exists (the lab made it).
    pub netns_made: bool,
    /// Whether `/etc/netns/<name>/` exists (the lab made it).
    pub etc_made: bool,
    /// The running container process, if any.
    pub process: Option<ProcessId>,
    /// Whether the pod is ready, and so published in DNS.
    pub ready: bool,
}

/// Who made a pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Owner {
    /// A StatefulSet: pods keep their name when replaced and start in ordinal order.
    StatefulSet {
        /// The StatefulSet's name.
        set: String,
        /// The pod's ordinal.
        ordinal: u32,
        /// `podManagementPolicy: Parallel`: no ordering.
        parallel: bool,
    },
    /// Another controller (ReplicaSet, DaemonSet, …): a deleted pod comes back under a new
    /// name and address.
    Controller {
        /// The owner's kind.
        owner_kind: String,
        /// The owner's name, the prefix of its pods' names.
        owner_name: String,
    },
    /// A bare Pod: nothing brings it back when it is deleted.
    Bare,
}

// === impl LabPod ===

impl LabPod {
    /// The name whose A record shows the pod exactly while it is ready, if there is one: its
    /// hostname under its subdomain, else its dashed address under a headless Service that
    /// selects it (the spec's name for endpoints without a hostname). The lab waits on it
    /// after each readiness change, so the next step sees in DNS what it should.
    pub fn dns_name(&self, zone: &str) -> Option<String> {
        if let Some(fqdn) = &self.fqdn {
            return Some(fqdn.clone());
        }
        let svc = self.headless.first()?;
        let dashed = self.ip.to_string().replace('.', "-");
        Some(format!("{dashed}.{svc}.{}.svc.{zone}", self.namespace))
    }
}

/// Where the pods live: the pod CIDR the lab lays out and the bridge's address in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The IPv4 pod CIDR, on-link for every pod (the only route a pod has).
    pub cidr: Ipv4Net,
    /// The bridge's address: the first usable address of `cidr` that no pod has. The lab's
    /// DNS server listens here.
    pub bridge_ip: Ipv4Addr,
}

/// Lays the derived pods out on the first IPv4 pod CIDR.
///
/// `objects` are the manifests' objects (for StatefulSet policies and headless Services),
/// `derived` what the controllers made of them, `zone` the cluster domain.
pub fn plan(
    objects: &[Object],
    derived: &DerivedCluster,
    pod_cidrs: &[IpNet],
    zone: &str,
) -> Result<(Network, Vec<LabPod>)> {
    let cidr = pod_cidrs
        .iter()
        .find_map(|c| match c {
            IpNet::V4(n) => Some(n.trunc()),
            IpNet::V6(_) => None,
        })
        .ok_or_else(|| LabError::Plan("the lab needs an IPv4 pod CIDR".to_owned()))?;
    let parallel_sets: HashSet<(String, String)> = objects
        .iter()
        .filter_map(|o| match o {
            Object::StatefulSet(s) => {
                let parallel = s
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.pod_management_policy.as_deref())
                    == Some("Parallel");
                parallel.then(|| (o.namespace().to_owned(), o.name().to_owned()))
            }
            _ => None,
        })
        .collect();

    let mut pods = Vec::new();
    let mut names = HashSet::new();
    for pod in &derived.pods {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(ip) = pod_ipv4(pod) else {
            tracing::warn!(pod = %format!("{namespace}/{name}"), "no IPv4 address (not running): not in the lab");
            continue;
        };
        if !cidr.contains(&ip) {
            return Err(LabError::Plan(format!(
                "pod {namespace}/{name}: address {ip} is outside the pod CIDR {cidr}, so no lab route reaches it"
            )));
        }
        // Network namespaces are per machine, not per Kubernetes namespace.
        if !names.insert(name.clone()) {
            return Err(LabError::Plan(format!(
                "two pods are named {name}; the lab names network namespaces after pods, so pod names must be unique across namespaces"
            )));
        }
        let owner = owner_of(pod, &namespace, &parallel_sets);
        let spec = pod.spec.as_ref();
        let hostname = spec
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| name.clone());
        let headless = headless_selecting(&derived.services, &namespace, pod);
        let fqdn = spec
            .and_then(|s| s.subdomain.as_deref())
            .filter(|sub| headless.iter().any(|h| h == sub))
            .map(|sub| format!("{hostname}.{sub}.{namespace}.svc.{zone}"));
        let container = spec.and_then(|s| s.containers.first());
        let command = container
            .map(|c| {
                let mut argv = c.command.clone().unwrap_or_default();
                if !argv.is_empty() {
                    argv.extend(c.args.clone().unwrap_or_default());
                }
                argv
            })
            .unwrap_or_default();
        let env = container
            .and_then(|c| c.env.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect();
        let port = container
            .and_then(|c| c.ports.as_ref())
            .into_iter()
            .flatten()
            .find(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .and_then(|p| u16::try_from(p.container_port).ok());
        pods.push(LabPod {
            veth: format!("veth{}", pods.len()),
            namespace,
            name,
            ip,
            owner,
            hostname,
            fqdn,
            headless,
            command,
            env,
            port,
            object: pod.clone(),
            netns_made: false,
            etc_made: false,
            process: None,
            ready: false,
        });
    }

    let taken: HashSet<Ipv4Addr> = pods.iter().map(|p| p.ip).collect();
    let bridge_ip = usable(cidr)
        .find(|ip| !taken.contains(ip))
        .ok_or_else(|| LabError::Plan(format!("no address left in {cidr} for the lab bridge")))?;
    Ok((Network { cidr, bridge_ip }, pods))
}

/// Indices of `pods` in start order: each stage starts together and is ready before the next.
///
/// Pods of no StatefulSet come first, all at once (their controllers do not order them); then
/// each StatefulSet, one pod per stage in ordinal order (`OrderedReady`), or all at once when it
/// is `Parallel`. Stopping walks the stages backwards, so StatefulSet pods stop in reverse.
pub fn start_stages(pods: &[LabPod]) -> Vec<Vec<usize>> {
    let mut stages = Vec::new();
    let unordered: Vec<usize> = (0..pods.len())
        .filter(|&i| !matches!(pods[i].owner, Owner::StatefulSet { .. }))
        .collect();
    if !unordered.is_empty() {
        stages.push(unordered);
    }
    // (namespace, set) → (ordinal, pod index, parallel), in a stable order across sets.
    let mut sets: BTreeMap<(&str, &str), Vec<Member>> = BTreeMap::new();
    for (i, pod) in pods.iter().enumerate() {
        if let Owner::StatefulSet {
            set,
            ordinal,
            parallel,
        } = &pod.owner
        {
            sets.entry((pod.namespace.as_str(), set.as_str()))
                .or_default()
                .push((*ordinal, i, *parallel));
        }
    }
    for mut members in sets.into_values() {
        members.sort_unstable();
        if members.iter().any(|m| m.2) {
            stages.push(members.iter().map(|m| m.1).collect());
        } else {
            stages.extend(members.iter().map(|m| vec![m.1]));
        }
    }
    stages
}

/// One StatefulSet pod while stages are built: ordinal, index into the pods, `Parallel`.
type Member = (u32, usize, bool);

/// The name and address a controller gives the pod that replaces a deleted `pod`, or `None`
/// when nothing replaces it (a bare Pod). StatefulSet pods keep both; other controllers' pods
/// get `<owner>-<5 chars>` and a free address, as a ReplicaSet and a CNI would give them.
pub fn replacement(
    pod: &LabPod,
    network: &Network,
    pods: &[LabPod],
    generation: u64,
) -> Option<(String, Ipv4Addr)> {
    match &pod.owner {
        Owner::StatefulSet { .. } => Some((pod.name.clone(), pod.ip)),
        Owner::Bare => None,
        Owner::Controller { owner_name, .. } => {
            let names: HashSet<&str> = pods.iter().map(|p| p.name.as_str()).collect();
            let mut taken: HashSet<Ipv4Addr> = pods.iter().map(|p| p.ip).collect();
            taken.insert(network.bridge_ip);
            let seed = format!("{}/{}#{generation}", pod.namespace, pod.name);
            let name = (0u64..)
                .map(|i| {
                    format!(
                        "{owner_name}-{}",
                        suffix(fnv64a(format!("{seed}/{i}").as_bytes()))
                    )
                })
                .find(|n| !names.contains(n.as_str()))?;
            let hosts: Vec<Ipv4Addr> = usable(network.cidr).collect();
            let start = (fnv64a(seed.as_bytes()) % hosts.len() as u64) as usize;
            let ip = (0..hosts.len())
                .map(|i| hosts[(start + i) % hosts.len()])
                .find(|ip| !taken.contains(ip))?;
            Some((name, ip))
        }
    }
}

/// The manifests' objects the DNS server needs besides pods: everything but Pods and the
/// workloads that make them (the lab serves its own pods instead), as a `kind: List`.
pub fn served_objects(objects: &[Object]) -> Result<serde_json::Value> {
    let mut items = Vec::new();
    for object in objects {
        let item = match object {
            Object::Namespace(o) => serde_json::to_value(&**o),
            Object::Service(o) => serde_json::to_value(&**o),
            Object::EndpointSlice(o) => serde_json::to_value(&**o),
            Object::Endpoints(o) => serde_json::to_value(&**o),
            Object::Pod(_)
            | Object::StatefulSet(_)
            | Object::Deployment(_)
            | Object::ReplicaSet(_)
            | Object::DaemonSet(_) => continue,
        };
        items.push(item.map_err(|e| LabError::Plan(format!("{}: {e}", object.name())))?);
    }
    Ok(list(items))
}

/// The lab's pods as explicit Pods, with the lab's name, address and readiness, as a
/// `kind: List`.
pub fn served_pods(pods: &[LabPod]) -> Result<serde_json::Value> {
    let mut items = Vec::new();
    for pod in pods {
        let mut object = pod.object.clone();
        object.metadata.name = Some(pod.name.clone());
        object.metadata.uid = None;
        let status = object.status.get_or_insert_default();
        status.phase = Some("Running".to_owned());
        status.pod_ip = Some(pod.ip.to_string());
        status.pod_ips = Some(vec![PodIP {
            ip: pod.ip.to_string(),
        }]);
        let ready = if pod.ready { "True" } else { "False" };
        status.conditions = Some(
            [
                ("PodScheduled", "True"),
                ("Initialized", "True"),
                ("ContainersReady", ready),
                ("Ready", ready),
            ]
            .into_iter()
            .map(|(type_, status)| PodCondition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                ..PodCondition::default()
            })
            .collect(),
        );
        items.push(
            serde_json::to_value(&object)
                .map_err(|e| LabError::Plan(format!("pod {}: {e}", pod.name)))?,
        );
    }
    Ok(list(items))
}

fn list(items: Vec<serde_json::Value>) -> serde_json::Value {
    let mut list = serde_json::json!({ "apiVersion": "v1", "kind": "List" });
    list["items"] = serde_json::Value::Array(items);
    list
}

fn pod_ipv4(pod: &Pod) -> Option<Ipv4Addr> {
    let status = pod.status.as_ref()?;
    status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .chain(status.pod_ip.as_deref())
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .find_map(|ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
}

fn owner_of(pod: &Pod, namespace: &str, parallel_sets: &HashSet<(String, String)>) -> Owner {
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller.unwrap_or(true));
    let Some(controller) = controller else {
        return Owner::Bare;
    };
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let ordinal = name
        .strip_prefix(controller.name.as_str())
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|n| n.parse().ok());
    match (controller.kind.as_str(), ordinal) {
        ("StatefulSet", Some(ordinal)) => Owner::StatefulSet {
            parallel: parallel_sets.contains(&(namespace.to_owned(), controller.name.clone())),
            set: controller.name.clone(),
            ordinal,
        },
        _ => Owner::Controller {
            owner_kind: controller.kind.clone(),
            owner_name: controller.name.clone(),
        },
    }
}

/// Headless Services in `namespace` that select `pod` and publish only ready endpoints.
fn headless_selecting(services: &[Service], namespace: &str, pod: &Pod) -> Vec<String> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    services
        .iter()
        .filter(|s| {
            let Some(spec) = s.spec.as_ref() else {
                return false;
            };
            s.metadata.namespace.as_deref() == Some(namespace)
                && spec.cluster_ip.as_deref() == Some("None")
                && spec.publish_not_ready_addresses != Some(true)
                && spec.selector.as_ref().is_some_and(|sel| {
                    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
        })
        .filter_map(|s| s.metadata.name.clone())
        .collect()
}

/// Host addresses of `cidr` (no network or broadcast address), lowest first.
fn usable(cidr: Ipv4Net) -> impl Iterator<Item = Ipv4Addr> {
    let base = u32::from(cidr.network());
    let size = 1u64 << (32 - u32::from(cidr.prefix_len()));
    let (first, count) = if size >= 4 { (1, size - 2) } else { (0, size) };
    (first..first + count).map(move |off| Ipv4Addr::from(base.wrapping_add(off as u32)))
}

/// The alphabet Kubernetes uses for generated name suffixes (`rand.String`): no vowels, no
/// look-alike digits.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn suffix(mut hash: u64) -> String {
    (0..5)
        .map(|_| {
            let c = SUFFIX_ALPHABET[(hash % SUFFIX_ALPHABET.len() as u64) as usize];
            hash /= SUFFIX_ALPHABET.len() as u64;
            char::from(c)
        })
        .collect()
}

fn fnv64a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
