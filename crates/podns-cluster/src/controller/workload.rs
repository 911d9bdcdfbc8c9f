//! Workload controllers: the Pods that StatefulSets, Deployments, ReplicaSets and DaemonSets
//! would have created, and the status a kubelet would have reported.
//!
//! This module is responsible for pod *identity* (names, labels, hostname/subdomain, owner
//! references, node) and *status* (phase, conditions); addresses are left to `pod_ip`.
//!
//! | owner | pod names | extra labels |
//! |---|---|---|
//! | StatefulSet `web` | `web-0` … `web-(replicas-1)` (from `spec.ordinals.start`) | `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index`, `controller-revision-hash: web-<hash>` |
//! | Deployment `web` | ReplicaSet `web-<pod-template-hash>`, then as a ReplicaSet | `pod-template-hash` |
//! | ReplicaSet `rs` | `rs-<5 chars>` per replica | — |
//! | DaemonSet `ds` | `ds-<5 chars>` per node, `spec.nodeName` = that node | `controller-revision-hash`, `pod-template-generation: "1"` |
//!
//! StatefulSet pods get `spec.hostname` = pod name and `spec.subdomain` = `spec.serviceName`,
//! which is what gives them `web-0.<service>` DNS names.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, ReplicaSetSpec, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use super::{
    ControllerConfig, READY_ANNOTATION, generate_name, key_of, lean, owner_ref, template_hash,
};
use crate::store::ClusterStore;

/// Appends to `pods` every Pod the workload controllers would create, in no particular order.
/// Names never clash with the store's explicit Pods or with each other.
/// With `lean` (the port names of [`lean::PortNames`]), the pods are lean.
pub(crate) fn synthesise(
    store: &ClusterStore,
    config: &ControllerConfig,
    lean: Option<&lean::PortNames>,
    pods: &mut Vec<Pod>,
) {
    let mut taken: HashSet<(String, String)> = store.pods().map(|p| key_of(&p.metadata)).collect();
    for sts in store.stateful_sets() {
        pods.extend(stateful_set_pods(sts, config, lean));
    }
    for deploy in store.deployments() {
        let rs = deployment_replica_set(deploy);
        pods.extend(replica_set_pods(&rs, config, lean, &mut taken));
    }
    for rs in store.replica_sets() {
        pods.extend(replica_set_pods(rs, config, lean, &mut taken));
    }
    for ds in store.daemon_sets() {
        pods.extend(daemon_set_pods(ds, config, lean, &mut taken));
    }
}

/// How many Pods [`synthesise`] appends.
pub(crate) fn count(store: &ClusterStore, config: &ControllerConfig) -> usize {
    let stateful = store
        .stateful_sets()
        .filter_map(|s| s.spec.as_ref())
        .map(|s| replicas(s.replicas));
    let deployed = store
        .deployments()
        .map(|d| d.spec.as_ref().map_or(1, |s| replicas(s.replicas)));
    let replicated = store
        .replica_sets()
        .filter_map(|r| r.spec.as_ref())
        .filter(|s| s.template.is_some())
        .map(|s| replicas(s.replicas));
    let daemons = store
        .daemon_sets()
        .filter(|d| d.spec.is_some())
        .map(|_| config.nodes.len());
    stateful
        .chain(deployed)
        .chain(replicated)
        .chain(daemons)
        .sum()
}

/// An explicit Pod as the kubelet would report it: kept as written when it has a status;
/// otherwise Running, Ready unless annotated `podns.io/ready: "false"`.
pub(crate) fn with_status(mut pod: Pod) -> Pod {
    if pod.status.is_none() {
        pod.status = Some(running_status(is_marked_ready(&pod.metadata)));
    }
    pod
}

/// Whether the readiness annotation leaves the pod ready (anything but `"false"`).
pub(crate) fn is_marked_ready(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(READY_ANNOTATION))
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"))
}

/// `phase: Running` with the conditions a kubelet reports; addresses are filled later.
fn running_status(ready: bool) -> PodStatus {
    let condition = |type_: &str, status: bool| PodCondition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        ..PodCondition::default()
    };
    PodStatus {
        phase: Some("Running".to_owned()),
        conditions: Some(vec![
            condition("PodScheduled", true),
            condition("Initialized", true),
            condition("ContainersReady", ready),
            condition("Ready", ready),
        ]),
        ..PodStatus::default()
    }
}

/// A new pod from a template: labels and annotations from the template, plus `extra_labels`.
/// With `lean`, only what DNS reads ([`lean`]): no annotations, no
/// owner, a lean spec and status.
fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    name: String,
    extra_labels: &[(&str, String)],
    owner: impl FnOnce() -> OwnerReference,
    lean: Option<&lean::PortNames>,
) -> Pod {
    let template_meta = template.metadata.as_ref();
    let mut labels = template_meta
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    for (k, v) in extra_labels {
        labels.insert((*k).to_owned(), v.clone());
    }
    let ready = template_meta.is_none_or(is_marked_ready);
    let (annotations, owner_references, spec, status) = if let Some(names) = lean {
        let spec = template
            .spec
            .as_ref()
            .map(|s| lean::spec(s, names))
            .unwrap_or_default();
        (None, None, spec, lean::status(&running_status(ready)))
    } else {
        (
            template_meta.and_then(|m| m.annotations.clone()),
            Some(vec![owner()]),
            template.spec.clone().unwrap_or_default(),
            running_status(ready),
        )
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations,
            owner_references,
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: Some(status),
    }
}

/// `nodes[index % n]` for pods that do not name a node.
fn place(pod: &mut Pod, config: &ControllerConfig, index: usize) {
    if let Some(spec) = pod.spec.as_mut()
        && spec.node_name.as_deref().is_none_or(str::is_empty)
    {
        spec.node_name = Some(config.nodes[index % config.nodes.len()].clone());
    }
}

fn replicas(replicas: Option<i32>) -> usize {
    usize::try_from(replicas.unwrap_or(1)).unwrap_or(0)
}

fn stateful_set_pods(
    sts: &StatefulSet,
    config: &ControllerConfig,
    lean: Option<&lean::PortNames>,
) -> Vec<Pod> {
    let Some(spec) = sts.spec.as_ref() else {
        return Vec::new();
    };
    let (namespace, name) = key_of(&sts.metadata);
    let start = spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .and_then(|s| usize::try_from(s).ok())
        .unwrap_or(0);
    let revision = format!("{name}-{}", template_hash(&spec.template));
    let service_name = spec.service_name.clone().filter(|s| !s.is_empty());
    (0..replicas(spec.replicas))
        .map(|i| {
            let ordinal = start + i;
            let pod_name = format!("{name}-{ordinal}");
            let extra = [
                ("controller-revision-hash", revision.clone()),
                ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                ("apps.kubernetes.io/pod-index", ordinal.to_string()),
            ];
            let owner = || owner_ref(StatefulSet::API_VERSION, StatefulSet::KIND, &sts.metadata);
            let mut pod = pod_from_template(
                &spec.template,
                &namespace,
                pod_name.clone(),
                &extra,
                owner,
                lean,
            );
            if let Some(pod_spec) = pod.spec.as_mut() {
                // The StatefulSet controller's identity: hostname = pod name, subdomain = service.
                pod_spec.hostname = Some(pod_name);
                pod_spec.subdomain.clone_from(&service_name);
            }
            place(&mut pod, config, i);
            pod
        })
        .collect()
}

/// The ReplicaSet a Deployment's controller would create for its current template.
fn deployment_replica_set(deploy: &Deployment) -> ReplicaSet {
    let (namespace, name) = key_of(&deploy.metadata);
    let spec = deploy.spec.clone().unwrap_or_default();
    let hash = template_hash(&spec.template);
    let add_hash = |labels: Option<BTreeMap<String, String>>| {
        let mut labels = labels.unwrap_or_default();
        labels.insert("pod-template-hash".to_owned(), hash.clone());
        Some(labels)
    };
    let mut template = spec.template.clone();
    let mut template_meta = template.metadata.take().unwrap_or_default();
    template_meta.labels = add_hash(template_meta.labels);
    template.metadata = Some(template_meta);
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: Some(namespace),
            labels: add_hash(
                spec.template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone()),
            ),
            owner_references: Some(vec![owner_ref(
                Deployment::API_VERSION,
                Deployment::KIND,
                &deploy.metadata,
            )]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(spec.replicas.unwrap_or(1)),
            selector: LabelSelector {
                match_labels: add_hash(spec.selector.match_labels.clone()),
                match_expressions: spec.selector.match_expressions.clone(),
            },
            template: Some(template),
            min_ready_seconds: spec.min_ready_seconds,
        }),
        status: None,
    }
}

fn replica_set_pods(
    rs: &ReplicaSet,
    config: &ControllerConfig,
    lean: Option<&lean::PortNames>,
    taken: &mut HashSet<(String, String)>,
) -> Vec<Pod> {
    let Some(spec) = rs.spec.as_ref() else {
        return Vec::new();
    };
    let Some(template) = spec.template.as_ref() else {
        return Vec::new();
    };
    let (namespace, name) = key_of(&rs.metadata);
    (0..replicas(spec.replicas))
        .map(|i| {
            let seed = format!("{namespace}/{name}/{i}");
            let pod_name = generate_name(&namespace, &name, &seed, taken);
            let owner = || owner_ref(ReplicaSet::API_VERSION, ReplicaSet::KIND, &rs.metadata);
            let mut pod = pod_from_template(template, &namespace, pod_name, &[], owner, lean);
            place(&mut pod, config, i);
            pod
        })
        .collect()
}

fn daemon_set_pods(
    ds: &DaemonSet,
    config: &ControllerConfig,
    lean: Option<&lean::PortNames>,
    taken: &mut HashSet<(String, String)>,
) -> Vec<Pod> {
    let Some(spec) = ds.spec.as_ref() else {
        return Vec::new();
    };
    let (namespace, name) = key_of(&ds.metadata);
    let revision = template_hash(&spec.template);
    config
        .nodes
        .iter()
        .map(|node| {
            let seed = format!("{namespace}/{name}/{node}");
            let pod_name = generate_name(&namespace, &name, &seed, taken);
            let extra = [
                ("controller-revision-hash", revision.clone()),
                ("pod-template-generation", "1".to_owned()),
            ];
            let owner = || owner_ref(DaemonSet::API_VERSION, DaemonSet::KIND, &ds.metadata);
            let mut pod =
                pod_from_template(&spec.template, &namespace, pod_name, &extra, owner, lean);
            if let Some(pod_spec) = pod.spec.as_mut() {
                pod_spec.node_name = Some(node.clone());
            }
            pod
        })
        .collect()
}
