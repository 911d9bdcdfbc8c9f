//! Lean pods: only what DNS reads of a pod ([`super::ControllerConfig::lean_pods`]).
//!
//! A [`LeanPod`] is what a lean derivation works on, from the workload controllers to the
//! EndpointSlices and the view:
//! - a pod a workload made is a [`MadePod`]: its name, node and IPs, and an `Arc` of what every
//!   pod of its template shares ([`Template`]: namespace, labels, readiness, hostname and
//!   subdomain, the named container ports). About a hundred bytes, where a k8s-openapi `Pod`
//!   is 2 kB before its strings;
//! - an explicit Pod of the manifests stays a `Pod`, stripped by [`pod`] to identity (namespace,
//!   name, uid, labels, `deletionTimestamp`), `hostname`/`subdomain`/`nodeName`, the named
//!   container ports, the phase, the IPs and the `Ready` condition. Images, commands, env,
//!   volumes, probes, resources, annotations and owner references are left behind.
//!
//! [`LeanPod::to_pod`] gives back the `Pod` that [`super::derive`] lists for a lean derivation
//! (what [`crate::view::cluster_view`] reads: identity, labels, phase, IPs).
//!
//! Whatever this drops must decide no slice and no view: the controller tests check that lean
//! and full derivations give the same slices and views.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Pod, PodCondition, PodIP, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podns_view::PodView;

use super::pod::{PodFacts, search_order};
use super::workload::{
    self, LABEL_POD_INDEX, LABEL_POD_NAME, NewPod, Node, PodForm, Workload, is_marked_ready,
};
use super::{ControllerConfig, Keyed, key_ref, stable_uid_of};
use crate::view::Labels;

/// A pod of a lean derivation.
#[derive(Clone, Debug)]
pub(crate) enum LeanPod {
    /// An explicit Pod of the manifests, stripped by [`pod`].
    Given(Box<Pod>),
    /// A pod a workload controller made.
    Made(MadePod),
}

/// A pod a workload controller made, in the few bytes that differ from its siblings'.
#[derive(Clone, Debug)]
pub(crate) struct MadePod {
    template: Arc<Template>,
    name: Box<str>,
    /// StatefulSet pods: the ordinal, as the `apps.kubernetes.io/pod-index` label's value.
    ordinal: Option<Ordinal>,
    node: Arc<str>,
    /// `status.podIPs`, one per pod CIDR (at most two), primary first.
    ips: [Option<IpAddr>; 2],
}

/// What every pod of one workload's template shares.
#[derive(Debug)]
pub(crate) struct Template {
    namespace: Box<str>,
    /// The template's labels and the workload's (revision hash, generation); a StatefulSet
    /// pod's own two are in [`MadePod`]. Packed: a map spent a 540-byte node per workload
    /// (5.7 MB of the derivation's peak at 10k workloads).
    labels: Labels,
    /// A StatefulSet's: hostname is the pod name, subdomain the `serviceName`.
    stateful: bool,
    /// The template's `spec.hostname` (not a StatefulSet's).
    hostname: Option<Box<str>>,
    subdomain: Option<Box<str>>,
    /// Not marked `podns.io/ready: "false"`.
    ready: bool,
    /// The named container ports, in the order `podutil.FindPort` looks.
    ports: Box<[NamedPort]>,
    /// The template's own `spec.nodeName`, when not empty.
    node: Option<Arc<str>>,
}

/// A named container port: only a name can be a `targetPort`'s.
#[derive(Debug)]
struct NamedPort {
    name: Box<str>,
    /// As written, `TCP` when unset.
    protocol: Box<str>,
    port: i32,
}

/// A decimal number kept inline, so a label lookup can borrow it (a `usize` has at most 20
/// digits).
#[derive(Clone, Copy, Debug)]
struct Ordinal {
    digits: [u8; 20],
    len: u8,
}

// === impl LeanPod ===

impl LeanPod {
    /// The `Pod` a lean [`super::derive`] lists: identity, labels, phase and IPs.
    pub(crate) fn to_pod(&self) -> Pod {
        match self {
            Self::Given(pod) => {
                let mut pod = Pod::clone(pod);
                strip_for_view(&mut pod);
                pod
            }
            Self::Made(made) => {
                let (namespace, name) = made.key();
                let mut labels = made.template.labels.to_map();
                if let Some(ordinal) = &made.ordinal {
                    labels.insert(LABEL_POD_NAME.to_owned(), name.to_owned());
                    labels.insert(LABEL_POD_INDEX.to_owned(), ordinal.as_str().to_owned());
                }
                let ips = made.ips();
                Pod {
                    metadata: ObjectMeta {
                        namespace: Some(namespace.to_owned()),
                        name: Some(name.to_owned()),
                        uid: Some(stable_uid_of("Pod", namespace, name)),
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    },
                    spec: None,
                    status: Some(PodStatus {
                        phase: Some("Running".to_owned()),
                        pod_ip: ips.first().map(ToString::to_string),
                        pod_ips: (!ips.is_empty())
                            .then(|| ips.iter().map(|ip| PodIP { ip: ip.to_string() }).collect()),
                        ..PodStatus::default()
                    }),
                }
            }
        }
    }

    /// [`crate::view::pod_view`] of [`Self::to_pod`], without making the `Pod`.
    pub(crate) fn view(&self) -> Option<PodView> {
        match self {
            Self::Given(pod) => crate::view::pod_view(pod),
            Self::Made(made) => {
                let addresses = made.ips();
                if addresses.is_empty() {
                    return None;
                }
                let (namespace, name) = made.key();
                Some(PodView {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    addresses,
                })
            }
        }
    }
}

impl Keyed for LeanPod {
    fn key(&self) -> (&str, &str) {
        match self {
            Self::Given(pod) => key_ref(&pod.metadata),
            Self::Made(made) => made.key(),
        }
    }
}

/// Forwards to the `Pod` or the [`MadePod`].
macro_rules! either {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            LeanPod::Given($p) => $e,
            LeanPod::Made($p) => $e,
        }
    };
}

impl PodFacts for LeanPod {
    fn label(&self, key: &str) -> Option<&str> {
        either!(self, p => p.label(key))
    }
    fn phase(&self) -> Option<&str> {
        either!(self, p => p.phase())
    }
    fn ips(&self) -> Vec<IpAddr> {
        either!(self, p => p.ips())
    }
    fn has_written_ip(&self) -> bool {
        either!(self, p => p.has_written_ip())
    }
    fn set_ips(&mut self, ips: &[IpAddr]) {
        either!(self, p => p.set_ips(ips));
    }
    fn is_ready(&self) -> bool {
        either!(self, p => p.is_ready())
    }
    fn is_terminating(&self) -> bool {
        either!(self, p => p.is_terminating())
    }
    fn uid(&self) -> Option<Cow<'_, str>> {
        either!(self, p => p.uid())
    }
    fn ensure_uid(&mut self) {
        either!(self, p => p.ensure_uid());
    }
    fn hostname(&self) -> Option<&str> {
        either!(self, p => p.hostname())
    }
    fn subdomain(&self) -> Option<&str> {
        either!(self, p => p.subdomain())
    }
    fn node_name(&self) -> Option<&str> {
        either!(self, p => p.node_name())
    }
    fn find_port(&self, name: &str, protocol: &str) -> Option<i32> {
        either!(self, p => p.find_port(name, protocol))
    }
}

impl PodForm for LeanPod {
    /// The nodes, each allocated once for every pod on it.
    type Context = Vec<Arc<str>>;
    type Shared = Arc<Template>;

    fn context(config: &ControllerConfig) -> Vec<Arc<str>> {
        config.nodes.iter().map(|n| Arc::from(n.as_str())).collect()
    }

    fn given(pod: &Pod) -> Self {
        Self::Given(Box::new(workload::with_status(self::pod(pod))))
    }

    fn shared(workload: &Workload<'_>, _: &Vec<Arc<str>>) -> Arc<Template> {
        let labels = Labels::of(Some(&workload.pod_labels()));
        let spec = workload.template.spec.as_ref();
        let boxed = |s: Option<&String>| s.map(|s| Box::from(s.as_str()));
        let (hostname, subdomain) = match &workload.stateful {
            Some(service) => (None, boxed(service.as_ref())),
            None => (
                boxed(spec.and_then(|s| s.hostname.as_ref())),
                boxed(spec.and_then(|s| s.subdomain.as_ref())),
            ),
        };
        let ports = spec
            .map(|s| {
                search_order(s)
                    .filter_map(|p| {
                        Some(NamedPort {
                            name: Box::from(p.name.as_deref()?),
                            protocol: Box::from(p.protocol.as_deref().unwrap_or("TCP")),
                            port: p.container_port,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Arc::new(Template {
            namespace: Box::from(workload.namespace),
            labels,
            stateful: workload.stateful.is_some(),
            hostname,
            subdomain,
            ready: workload
                .template
                .metadata
                .as_ref()
                .is_none_or(is_marked_ready),
            ports,
            node: spec
                .and_then(|s| s.node_name.as_deref())
                .filter(|n| !n.is_empty())
                .map(Arc::from),
        })
    }

    fn new(
        workload: &Workload<'_>,
        template: &Arc<Template>,
        new: NewPod,
        nodes: &Vec<Arc<str>>,
    ) -> Self {
        let node = match new.node {
            Node::Spread(i) => template
                .node
                .clone()
                .unwrap_or_else(|| Arc::clone(&nodes[i % nodes.len()])),
            Node::Fixed(i) => Arc::clone(&nodes[i]),
        };
        debug_assert_eq!(workload.stateful.is_some(), new.ordinal.is_some());
        Self::Made(MadePod {
            template: Arc::clone(template),
            name: new.name.into_boxed_str(),
            ordinal: new.ordinal.map(Ordinal::new),
            node,
            ips: [None, None],
        })
    }
}

// === impl MadePod ===

impl Keyed for MadePod {
    fn key(&self) -> (&str, &str) {
        (&self.template.namespace, &self.name)
    }
}

impl PodFacts for MadePod {
    fn label(&self, key: &str) -> Option<&str> {
        if let Some(ordinal) = &self.ordinal {
            match key {
                LABEL_POD_NAME => return Some(&self.name),
                LABEL_POD_INDEX => return Some(ordinal.as_str()),
                _ => {}
            }
        }
        self.template.labels.get(key)
    }

    fn phase(&self) -> Option<&str> {
        Some("Running")
    }

    fn ips(&self) -> Vec<IpAddr> {
        self.ips.iter().flatten().copied().collect()
    }

    fn has_written_ip(&self) -> bool {
        self.ips[0].is_some()
    }

    fn set_ips(&mut self, ips: &[IpAddr]) {
        assert!(
            ips.len() <= self.ips.len(),
            "at most one pod CIDR per family"
        );
        self.ips = [ips.first().copied(), ips.get(1).copied()];
    }

    fn is_ready(&self) -> bool {
        self.template.ready
    }

    fn is_terminating(&self) -> bool {
        false
    }

    fn uid(&self) -> Option<Cow<'_, str>> {
        let (namespace, name) = self.key();
        Some(Cow::Owned(stable_uid_of("Pod", namespace, name)))
    }

    /// Nothing to do: the uid is derived from the key when asked for, not kept.
    fn ensure_uid(&mut self) {}

    fn hostname(&self) -> Option<&str> {
        if self.template.stateful {
            Some(&self.name)
        } else {
            self.template.hostname.as_deref()
        }
    }

    fn subdomain(&self) -> Option<&str> {
        self.template.subdomain.as_deref()
    }

    fn node_name(&self) -> Option<&str> {
        Some(&self.node)
    }

    fn find_port(&self, name: &str, protocol: &str) -> Option<i32> {
        self.template
            .ports
            .iter()
            .find(|p| &*p.name == name && &*p.protocol == protocol)
            .map(|p| p.port)
    }
}

// === impl Ordinal ===

impl Ordinal {
    fn new(n: usize) -> Self {
        let text = n.to_string();
        let mut digits = [0; 20];
        digits[..text.len()].copy_from_slice(text.as_bytes());
        Self {
            digits,
            len: u8::try_from(text.len()).expect("at most 20 digits"),
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).expect("ASCII digits")
    }
}

// === explicit Pods ===

/// A lean copy of an explicit Pod. The readiness annotation is kept when the pod has no status
/// yet ([`super::workload::with_status`] reads it).
pub(crate) fn pod(pod: &Pod) -> Pod {
    let mut metadata = identity(&pod.metadata);
    if pod.status.is_none() {
        metadata.annotations = pod.metadata.annotations.as_ref().and_then(|a| {
            let ready = a.get(super::READY_ANNOTATION)?;
            Some([(super::READY_ANNOTATION.to_owned(), ready.clone())].into())
        });
    }
    Pod {
        metadata,
        spec: pod.spec.as_ref().map(spec),
        status: pod.status.as_ref().map(status),
    }
}

/// The metadata DNS reads: namespace, name, uid, labels, `deletionTimestamp`.
fn identity(meta: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        labels: meta.labels.clone(),
        deletion_timestamp: meta.deletion_timestamp.clone(),
        ..ObjectMeta::default()
    }
}

/// The spec the EndpointSlice controller reads: hostname, subdomain, node name, and the named
/// container ports (only a name can be a `targetPort`'s), in [`search_order`] in one
/// container, so `podutil.FindPort` finds the same port. A pod with no named port has no
/// container (a `Container` is 2 KB).
fn spec(spec: &PodSpec) -> PodSpec {
    let ports: Vec<ContainerPort> = search_order(spec)
        .filter(|p| p.name.is_some())
        .cloned()
        .collect();
    let containers = if ports.is_empty() {
        Vec::new()
    } else {
        vec![Container {
            name: "ports".to_owned(),
            ports: Some(ports),
            ..Container::default()
        }]
    };
    PodSpec {
        containers,
        hostname: spec.hostname.clone(),
        subdomain: spec.subdomain.clone(),
        node_name: spec.node_name.clone(),
        ..PodSpec::default()
    }
}

/// The status DNS reads: phase, IPs, and the first `Ready` condition (type and status).
fn status(status: &PodStatus) -> PodStatus {
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| PodCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            ..PodCondition::default()
        });
    PodStatus {
        phase: status.phase.clone(),
        pod_ip: status.pod_ip.clone(),
        pod_ips: status.pod_ips.clone(),
        conditions: ready.map(|c| vec![c]),
        ..PodStatus::default()
    }
}

/// Drops what only the EndpointSlice controller read: the spec, the conditions and the
/// annotations. What stays is what [`crate::view::cluster_view`] reads.
fn strip_for_view(pod: &mut Pod) {
    pod.spec = None;
    pod.metadata.annotations = None;
    if let Some(status) = pod.status.as_mut() {
        status.conditions = None;
    }
}
