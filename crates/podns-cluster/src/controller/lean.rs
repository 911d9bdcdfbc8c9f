//! Lean pods: only what DNS reads of a pod ([`super::ControllerConfig::lean_pods`]).
//!
//! Two steps, because the EndpointSlice controller reads more of a pod than the view does:
//! - [`pod`] / [`spec`] / [`status`], before the slices: identity (namespace, name, uid,
//!   labels, `deletionTimestamp`), `hostname`/`subdomain`/`nodeName`, the container ports a
//!   Service's `targetPort` names ([`PortNames`]), the phase, the IPs and the `Ready`
//!   condition. Images, commands, env, volumes, probes, resources, annotations and owner
//!   references are left behind.
//! - [`strip_for_view`], after the slices: what [`crate::view::cluster_view`] reads (identity,
//!   labels, phase, IPs).
//!
//! Whatever one of these drops must decide no slice and no view: the controller tests check
//! that lean and full derivations give the same slices and views.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::store::ClusterStore;

/// The port names Services give as `targetPort`: the only container ports the EndpointSlice
/// controller can ever look up (a named `targetPort` matches a container port of that name;
/// a numbered one reads no container).
#[derive(Debug, Default)]
pub(crate) struct PortNames(HashSet<String>);

impl PortNames {
    pub(crate) fn of(store: &ClusterStore) -> Self {
        Self(
            store
                .services()
                .filter_map(|s| s.spec.as_ref())
                .flat_map(|s| s.ports.iter().flatten())
                .filter_map(|p| match &p.target_port {
                    Some(IntOrString::String(name)) => Some(name.clone()),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// A lean copy of an explicit Pod. The readiness annotation is kept when the pod has no status
/// yet ([`super::workload::with_status`] reads it).
pub(crate) fn pod(pod: &Pod, names: &PortNames) -> Pod {
    let mut metadata = identity(&pod.metadata);
    if pod.status.is_none() {
        metadata.annotations = pod.metadata.annotations.as_ref().and_then(|a| {
            let ready = a.get(super::READY_ANNOTATION)?;
            Some([(super::READY_ANNOTATION.to_owned(), ready.clone())].into())
        });
    }
    Pod {
        metadata,
        spec: pod.spec.as_ref().map(|s| spec(s, names)),
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

/// The spec the EndpointSlice controller reads: hostname, subdomain, node name, and the
/// container ports a `targetPort` may name. Those ports go into one container, those of the
/// containers first, then those of restartable init containers (sidecars, `restartPolicy:
/// Always`): the order in which `podutil.FindPort` looks, so it finds the same port. A pod
/// with no such port has no container (a `Container` is 2 KB).
pub(crate) fn spec(spec: &PodSpec, names: &PortNames) -> PodSpec {
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    let ports: Vec<ContainerPort> = spec
        .containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.name.as_ref().is_some_and(|n| names.0.contains(n)))
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
pub(crate) fn status(status: &PodStatus) -> PodStatus {
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
pub(crate) fn strip_for_view(pod: &mut Pod) {
    pod.spec = None;
    pod.metadata.annotations = None;
    if let Some(status) = pod.status.as_mut() {
        status.conditions = None;
    }
}
