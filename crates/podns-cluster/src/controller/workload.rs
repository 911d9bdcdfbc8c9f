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
//!
//! Naming and placement are decided here once; making a pod of a [`Workload`] is left to its
//! [`PodForm`], so full pods and lean ones ([`super::lean`]) get the same names, labels and
//! nodes.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, ReplicaSetSpec, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use super::pod::PodFacts;
use super::{ControllerConfig, READY_ANNOTATION, generate_name, key_of, owner_ref, template_hash};
use crate::store::ClusterStore;

/// Appends to `pods` every Pod the workload controllers would create, in no particular order,
/// in the form `P`. Names never clash with the store's explicit Pods or with each other.
pub(crate) fn synthesise<P: PodForm>(
    store: &ClusterStore,
    config: &ControllerConfig,
    pods: &mut Vec<P>,
) {
    let context = P::context(config);
    let mut taken: HashSet<(String, String)> = store.pods().map(|p| key_of(&p.metadata)).collect();
    for sts in store.stateful_sets() {
        stateful_set_pods(&sts, &context, pods);
    }
    for deploy in store.deployments() {
        let rs = deployment_replica_set(&deploy);
        replica_set_pods(&rs, &context, &mut taken, pods);
    }
    for rs in store.replica_sets() {
        replica_set_pods(&rs, &context, &mut taken, pods);
    }
    for ds in store.daemon_sets() {
        daemon_set_pods(&ds, config, &context, &mut taken, pods);
    }
}

/// What the pods of one workload share: its template and what its controller adds to it.
pub(crate) struct Workload<'a> {
    pub(crate) template: &'a PodTemplateSpec,
    pub(crate) namespace: &'a str,
    /// Labels every pod gets on top of the template's (a revision hash, a generation).
    pub(crate) labels: Vec<(&'static str, String)>,
    /// StatefulSets: `spec.serviceName`, the pods' subdomain (their hostname is their name).
    pub(crate) stateful: Option<Option<String>>,
    pub(crate) owner: OwnerReference,
}

impl Workload<'_> {
    /// The labels every pod of the workload has: the template's, then the workload's own.
    pub(crate) fn pod_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        for (k, v) in &self.labels {
            labels.insert((*k).to_owned(), v.clone());
        }
        labels
    }
}

/// One pod of a [`Workload`].
pub(crate) struct NewPod {
    pub(crate) name: String,
    /// StatefulSet pods: their ordinal (the `apps.kubernetes.io/pod-index` label).
    pub(crate) ordinal: Option<usize>,
    pub(crate) node: Node,
}

/// Which of [`ControllerConfig::nodes`] a new pod runs on.
#[derive(Clone, Copy)]
pub(crate) enum Node {
    /// `nodes[i % n]`, unless the template names a node.
    Spread(usize),
    /// `nodes[i]` whatever the template says (a DaemonSet's pod for that node).
    Fixed(usize),
}

/// `statefulset.kubernetes.io/pod-name`: a StatefulSet pod's own name.
pub(crate) const LABEL_POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
/// `apps.kubernetes.io/pod-index`: a StatefulSet pod's ordinal.
pub(crate) const LABEL_POD_INDEX: &str = "apps.kubernetes.io/pod-index";

/// A form pods are made in: full k8s-openapi [`Pod`]s, or [`super::lean::LeanPod`]s.
pub(crate) trait PodForm: PodFacts + Sized {
    /// What every pod of one derivation shares (made once per [`synthesise`]).
    type Context;
    /// What the pods of one [`Workload`] share (made once per workload).
    type Shared;
    fn context(config: &ControllerConfig) -> Self::Context;
    /// An explicit Pod of the manifests, with the status a kubelet would report
    /// ([`with_status`]).
    fn given(pod: &Pod) -> Self;
    fn shared(workload: &Workload<'_>, context: &Self::Context) -> Self::Shared;
    fn new(
        workload: &Workload<'_>,
        shared: &Self::Shared,
        pod: NewPod,
        context: &Self::Context,
    ) -> Self;
}

impl PodForm for Pod {
    type Context = Vec<String>;
    type Shared = ();

    fn context(config: &ControllerConfig) -> Vec<String> {
        config.nodes.clone()
    }

    fn given(pod: &Pod) -> Self {
        with_status(pod.clone())
    }

    fn shared(_: &Workload<'_>, _: &Vec<String>) {}

    /// Labels and annotations from the template, plus the workload's and the pod's own
    /// labels; the owner; the StatefulSet identity; the node.
    fn new(workload: &Workload<'_>, (): &(), new: NewPod, nodes: &Vec<String>) -> Self {
        let template_meta = workload.template.metadata.as_ref();
        let mut labels = workload.pod_labels();
        if let Some(ordinal) = new.ordinal {
            labels.insert(LABEL_POD_NAME.to_owned(), new.name.clone());
            labels.insert(LABEL_POD_INDEX.to_owned(), ordinal.to_string());
        }
        let ready = template_meta.is_none_or(is_marked_ready);
        let mut spec = workload.template.spec.clone().unwrap_or_default();
        if let Some(subdomain) = &workload.stateful {
            // The StatefulSet controller's identity: hostname = pod name, subdomain = service.
            spec.hostname = Some(new.name.clone());
            spec.subdomain.clone_from(subdomain);
        }
        match new.node {
            Node::Spread(i) if spec.node_name.as_deref().is_none_or(str::is_empty) => {
                spec.node_name = Some(nodes[i % nodes.len()].clone());
            }
            Node::Spread(_) => {}
            Node::Fixed(i) => spec.node_name = Some(nodes[i].clone()),
        }
        Self {
            metadata: ObjectMeta {
                name: Some(new.name),
                namespace: Some(workload.namespace.to_owned()),
                labels: Some(labels),
                annotations: template_meta.and_then(|m| m.annotations.clone()),
                owner_references: Some(vec![workload.owner.clone()]),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
            status: Some(running_status(ready)),
        }
    }
}

/// How many Pods [`synthesise`] appends.
pub(crate) fn count(store: &ClusterStore, config: &ControllerConfig) -> usize {
    let stateful = store
        .stateful_sets()
        .filter_map(|s| s.spec)
        .map(|s| replicas(s.replicas));
    let deployed = store
        .deployments()
        .map(|d| d.spec.map_or(1, |s| replicas(s.replicas)));
    let replicated = store
        .replica_sets()
        .filter_map(|r| r.spec)
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
pub(crate) fn running_status(ready: bool) -> PodStatus {
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

fn replicas(replicas: Option<i32>) -> usize {
    usize::try_from(replicas.unwrap_or(1)).unwrap_or(0)
}

fn stateful_set_pods<P: PodForm>(sts: &StatefulSet, context: &P::Context, pods: &mut Vec<P>) {
    let Some(spec) = sts.spec.as_ref() else {
        return;
    };
    let (namespace, name) = key_of(&sts.metadata);
    let start = spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .and_then(|s| usize::try_from(s).ok())
        .unwrap_or(0);
    let workload = Workload {
        template: &spec.template,
        namespace: &namespace,
        labels: vec![(
            "controller-revision-hash",
            format!("{name}-{}", template_hash(&spec.template)),
        )],
        stateful: Some(spec.service_name.clone().filter(|s| !s.is_empty())),
        owner: owner_ref(StatefulSet::API_VERSION, StatefulSet::KIND, &sts.metadata),
    };
    let shared = P::shared(&workload, context);
    pods.extend((0..replicas(spec.replicas)).map(|i| {
        let ordinal = start + i;
        let new = NewPod {
            name: format!("{name}-{ordinal}"),
            ordinal: Some(ordinal),
            node: Node::Spread(i),
        };
        P::new(&workload, &shared, new, context)
    }));
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

fn replica_set_pods<P: PodForm>(
    rs: &ReplicaSet,
    context: &P::Context,
    taken: &mut HashSet<(String, String)>,
    pods: &mut Vec<P>,
) {
    let Some(template) = rs.spec.as_ref().and_then(|s| s.template.as_ref()) else {
        return;
    };
    let (namespace, name) = key_of(&rs.metadata);
    let workload = Workload {
        template,
        namespace: &namespace,
        labels: Vec::new(),
        stateful: None,
        owner: owner_ref(ReplicaSet::API_VERSION, ReplicaSet::KIND, &rs.metadata),
    };
    let shared = P::shared(&workload, context);
    let count = rs.spec.as_ref().map_or(0, |s| replicas(s.replicas));
    pods.extend((0..count).map(|i| {
        let seed = format!("{namespace}/{name}/{i}");
        let new = NewPod {
            name: generate_name(&namespace, &name, &seed, taken),
            ordinal: None,
            node: Node::Spread(i),
        };
        P::new(&workload, &shared, new, context)
    }));
}

fn daemon_set_pods<P: PodForm>(
    ds: &DaemonSet,
    config: &ControllerConfig,
    context: &P::Context,
    taken: &mut HashSet<(String, String)>,
    pods: &mut Vec<P>,
) {
    let Some(spec) = ds.spec.as_ref() else {
        return;
    };
    let (namespace, name) = key_of(&ds.metadata);
    let workload = Workload {
        template: &spec.template,
        namespace: &namespace,
        labels: vec![
            ("controller-revision-hash", template_hash(&spec.template)),
            ("pod-template-generation", "1".to_owned()),
        ],
        stateful: None,
        owner: owner_ref(DaemonSet::API_VERSION, DaemonSet::KIND, &ds.metadata),
    };
    let shared = P::shared(&workload, context);
    pods.extend(config.nodes.iter().enumerate().map(|(i, node)| {
        let seed = format!("{namespace}/{name}/{node}");
        let new = NewPod {
            name: generate_name(&namespace, &name, &seed, taken),
            ordinal: None,
            node: Node::Fixed(i),
        };
        P::new(&workload, &shared, new, context)
    }));
}
