use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EndpointAddress, EndpointSubset, Endpoints, Pod, PodCondition, PodIP,
    PodSpec, PodStatus, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::object::Object;

// === builders ===

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.to_owned()),
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

/// A Service with one port `http` 80 → `target`, selecting `selector` (none when empty).
fn mk_service(ns: &str, name: &str, selector: &[(&str, &str)], headless: bool) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            cluster_ip: headless.then(|| "None".to_owned()),
            selector: (!selector.is_empty()).then(|| labels(selector)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: 80,
                target_port: Some(IntOrString::Int(8080)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// A Running pod with `ip` (none: no status at all), Ready as given, one container port `web` 8080.
fn mk_pod(ns: &str, name: &str, pod_labels: &[(&str, &str)], ip: Option<&str>, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            labels: Some(labels(pod_labels)),
            ..meta(ns, name)
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".to_owned(),
                ports: Some(vec![ContainerPort {
                    name: Some("web".to_owned()),
                    container_port: 8080,
                    ..ContainerPort::default()
                }]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: ip.map(|ip| PodStatus {
            phase: Some("Running".to_owned()),
            pod_ip: Some(ip.to_owned()),
            pod_ips: Some(vec![PodIP { ip: ip.to_owned() }]),
            conditions: Some(vec![PodCondition {
                type_: "Ready".to_owned(),
                status: if ready { "True" } else { "False" }.to_owned(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
    }
}

fn mk_template(template_labels: &[(&str, &str)]) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(template_labels)),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".to_owned(),
                image: Some("nginx".to_owned()),
                ports: Some(vec![ContainerPort {
                    name: Some("web".to_owned()),
                    container_port: 8080,
                    ..ContainerPort::default()
                }]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

fn mk_statefulset(
    ns: &str,
    name: &str,
    service: &str,
    replicas: i32,
    tl: &[(&str, &str)],
) -> StatefulSet {
    StatefulSet {
        metadata: meta(ns, name),
        spec: Some(StatefulSetSpec {
            service_name: Some(service.to_owned()),
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(tl)),
                ..LabelSelector::default()
            },
            template: mk_template(tl),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

fn mk_deployment(ns: &str, name: &str, replicas: i32, tl: &[(&str, &str)]) -> Deployment {
    Deployment {
        metadata: meta(ns, name),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(tl)),
                ..LabelSelector::default()
            },
            template: mk_template(tl),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn mk_daemonset(ns: &str, name: &str, tl: &[(&str, &str)]) -> DaemonSet {
    DaemonSet {
        metadata: meta(ns, name),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(labels(tl)),
                ..LabelSelector::default()
            },
            template: mk_template(tl),
            ..DaemonSetSpec::default()
        }),
        status: None,
    }
}

fn mk_store(objects: Vec<Object>) -> ClusterStore {
    ClusterStore::from_objects(objects)
}

fn run(objects: Vec<Object>) -> DerivedCluster {
    derive(&mk_store(objects), &ControllerConfig::default()).unwrap()
}

fn pod<'a>(d: &'a DerivedCluster, name: &str) -> &'a Pod {
    d.pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("pod {name}"))
}

fn service<'a>(d: &'a DerivedCluster, name: &str) -> &'a Service {
    d.services
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap()
}

fn slices_of<'a>(d: &'a DerivedCluster, svc: &str) -> Vec<&'a EndpointSlice> {
    d.endpoint_slices
        .iter()
        .filter(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
                .map(String::as_str)
                == Some(svc)
        })
        .collect()
}

fn label<'a>(m: &'a ObjectMeta, k: &str) -> Option<&'a str> {
    m.labels.as_ref()?.get(k).map(String::as_str)
}

fn is_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| SAFE_ALPHABET.contains(&b))
}

// === naming ===

#[test]
fn safe_encode_is_kubernetes_alphabet_of_the_decimal_string() {
    // '0' is byte 48, 48 % 27 = 21 → '4'; … '6' is 54 % 27 = 0 → 'b'.
    assert_eq!(safe_encode("0123456789"), "456789bcdf");
    assert_eq!(fnv32a(b""), 0x811c_9dc5);
    assert_eq!(fnv32a(b"a"), 0xe40c_292c);
    let h = template_hash(&mk_template(&[("app", "nginx")]));
    assert!(is_safe(&h) && h.len() <= 10, "{h}");
    assert_ne!(h, template_hash(&mk_template(&[("app", "other")])));
    assert_eq!(suffix5("x").len(), 5);
}

#[test]
fn generated_names_are_unique_and_cut_to_58_characters() {
    let mut taken = HashSet::new();
    let a = generate_name("ns", "web", "seed", &mut taken);
    let b = generate_name("ns", "web", "seed", &mut taken);
    assert_ne!(a, b, "a clash is resolved");
    let long = generate_name("ns", &"x".repeat(80), "s", &mut taken);
    assert_eq!(long.len(), 63);
}

// === workload ===

#[test]
fn statefulset_pods_have_ordinal_names_and_dns_identity() {
    let sts = mk_statefulset("default", "web", "nginx", 3, &[("app", "web")]);
    let config = ControllerConfig {
        nodes: vec!["n1".to_owned(), "n2".to_owned()],
        ..ControllerConfig::default()
    };
    let d = derive(&mk_store(vec![Object::from(sts)]), &config).unwrap();
    let names: Vec<_> = d
        .pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    let p1 = pod(&d, "web-1");
    let spec = p1.spec.as_ref().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("web-1"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    assert_eq!(spec.node_name.as_deref(), Some("n2"));
    assert_eq!(
        pod(&d, "web-2").spec.as_ref().unwrap().node_name.as_deref(),
        Some("n1")
    );
    assert_eq!(label(&p1.metadata, "app"), Some("web"));
    assert_eq!(
        label(&p1.metadata, "statefulset.kubernetes.io/pod-name"),
        Some("web-1")
    );
    assert_eq!(
        label(&p1.metadata, "apps.kubernetes.io/pod-index"),
        Some("1")
    );
    assert!(
        label(&p1.metadata, "controller-revision-hash")
            .unwrap()
            .starts_with("web-")
    );
    let owner = &p1.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("StatefulSet", "web", Some(true))
    );
    let status = p1.status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(pod::PodFacts::is_ready(p1));
    assert!(status.pod_ip.as_deref().unwrap().starts_with("10.244."));
}

#[test]
fn statefulset_replicas_default_to_one() {
    let mut sts = mk_statefulset("default", "db", "db", 1, &[("app", "db")]);
    sts.spec.as_mut().unwrap().replicas = None;
    let d = run(vec![Object::from(sts)]);
    assert_eq!(d.pods.len(), 1);
    assert_eq!(d.pods[0].metadata.name.as_deref(), Some("db-0"));
}

#[test]
fn deployment_pods_are_named_by_replica_set_hash_and_suffix_deterministically() {
    let objects = vec![Object::from(mk_deployment(
        "default",
        "nginx-deployment",
        3,
        &[("app", "nginx")],
    ))];
    let d = run(objects.clone());
    assert_eq!(d.pods.len(), 3);
    for p in &d.pods {
        let name = p.metadata.name.as_deref().unwrap();
        let rest = name.strip_prefix("nginx-deployment-").unwrap();
        let (hash, suffix) = rest.rsplit_once('-').unwrap();
        assert!(is_safe(hash) && hash.len() <= 10, "{name}");
        assert!(is_safe(suffix) && suffix.len() == 5, "{name}");
        assert_eq!(label(&p.metadata, "pod-template-hash"), Some(hash));
        assert_eq!(label(&p.metadata, "app"), Some("nginx"));
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "ReplicaSet");
        assert_eq!(owner.name, format!("nginx-deployment-{hash}"));
        assert!(p.spec.as_ref().unwrap().hostname.is_none());
    }
    assert_eq!(run(objects), d, "same manifests, same pods");
}

#[test]
fn daemonset_runs_one_pod_per_node() {
    let config = ControllerConfig {
        nodes: vec!["a".to_owned(), "b".to_owned(), "c".to_owned()],
        ..ControllerConfig::default()
    };
    let store = mk_store(vec![Object::from(mk_daemonset(
        "kube-system",
        "multitool",
        &[("app", "multitool")],
    ))]);
    let d = derive(&store, &config).unwrap();
    let mut nodes: Vec<_> = d
        .pods
        .iter()
        .map(|p| p.spec.as_ref().unwrap().node_name.clone().unwrap())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["a", "b", "c"]);
    for p in &d.pods {
        let name = p.metadata.name.as_deref().unwrap();
        assert!(is_safe(name.strip_prefix("multitool-").unwrap()), "{name}");
    }
}

#[test]
fn ready_annotation_false_makes_pods_not_ready() {
    let mut sts = mk_statefulset("default", "web", "web", 1, &[("app", "web")]);
    let tpl = sts
        .spec
        .as_mut()
        .unwrap()
        .template
        .metadata
        .as_mut()
        .unwrap();
    tpl.annotations = Some(labels(&[(READY_ANNOTATION, "false")]));
    let d = run(vec![
        Object::from(sts),
        Object::from(mk_service("default", "web", &[("app", "web")], true)),
    ]);
    let p = pod(&d, "web-0");
    assert!(!pod::PodFacts::is_ready(p));
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    let c = slices_of(&d, "web")[0].endpoints[0]
        .conditions
        .clone()
        .unwrap();
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(false), Some(false), Some(false))
    );
}

#[test]
fn explicit_pods_are_kept_and_win_over_synthesised_ones() {
    let mut explicit = mk_pod(
        "default",
        "web-0",
        &[("app", "web"), ("mine", "yes")],
        Some("10.244.7.7"),
        false,
    );
    explicit.spec.as_mut().unwrap().hostname = Some("web-0".to_owned());
    let bare = mk_pod("default", "bare", &[], None, true);
    let d = run(vec![
        Object::from(mk_statefulset(
            "default",
            "web",
            "web",
            2,
            &[("app", "web")],
        )),
        Object::from(explicit.clone()),
        Object::from(bare),
    ]);
    // Kept as written, with the stable UID an API server would have given it.
    explicit.metadata.uid = Some(super::stable_uid("Pod", &explicit.metadata));
    assert_eq!(pod(&d, "web-0"), &explicit, "kept as written");
    assert_eq!(d.pods.len(), 3);
    let bare = pod(&d, "bare");
    assert!(
        pod::PodFacts::is_ready(bare),
        "no status: Running and Ready"
    );
    assert!(bare.status.as_ref().unwrap().pod_ip.is_some());
}

// === pod IPs ===

#[test]
fn pod_ips_are_unique_deterministic_and_skip_taken_ones() {
    let mut objects = vec![Object::from(mk_deployment(
        "default",
        "d",
        50,
        &[("app", "d")],
    ))];
    objects.push(Object::from(mk_pod(
        "default",
        "explicit",
        &[],
        Some("10.244.0.5"),
        true,
    )));
    let d = run(objects.clone());
    let ips: Vec<String> = d
        .pods
        .iter()
        .map(|p| p.status.as_ref().unwrap().pod_ip.clone().unwrap())
        .collect();
    let unique: HashSet<&String> = ips.iter().collect();
    assert_eq!(unique.len(), 51);
    let net: IpNet = "10.244.0.0/16".parse().unwrap();
    for ip in &ips {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        assert!(net.contains(&ip));
        assert_ne!(ip, net.network());
        assert_ne!(ip, net.broadcast());
    }
    assert_eq!(run(objects), d);
}

#[test]
fn dual_stack_pods_get_one_ip_per_family() {
    let config = ControllerConfig {
        pod_cidrs: vec![
            "10.244.0.0/16".parse().unwrap(),
            "fd00:10:244::/56".parse().unwrap(),
        ],
        ..ControllerConfig::default()
    };
    let store = mk_store(vec![Object::from(mk_pod("default", "p", &[], None, true))]);
    let d = derive(&store, &config).unwrap();
    let ips = d.pods[0].status.as_ref().unwrap().pod_ips.clone().unwrap();
    assert_eq!(ips.len(), 2);
    assert!(ips[0].ip.starts_with("10.244."));
    assert!(ips[1].ip.starts_with("fd00:10:244:"));
}

#[test]
fn exhausted_pod_cidr_names_the_pod_and_the_range() {
    let config = ControllerConfig {
        pod_cidrs: vec!["10.1.0.0/30".parse().unwrap()],
        ..ControllerConfig::default()
    };
    let store = mk_store(vec![Object::from(mk_statefulset(
        "default",
        "web",
        "web",
        3,
        &[("app", "web")],
    ))]);
    let err = derive(&store, &config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Pod default/web-2: no free address left in pod CIDR 10.1.0.0/30"
    );
}

// === service IPs ===

#[test]
fn cluster_ips_are_allocated_kept_and_reserved() {
    let mut explicit = mk_service("default", "explicit", &[], false);
    explicit.spec.as_mut().unwrap().cluster_ip = Some("10.96.204.67".to_owned());
    let mut dns = mk_service("kube-system", "kube-dns", &[], false);
    dns.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.10".to_owned());
    let mut objects = vec![Object::from(explicit), Object::from(dns)];
    for i in 0..40 {
        objects.push(Object::from(mk_service(
            "default",
            &format!("s{i}"),
            &[("app", "x")],
            false,
        )));
    }
    objects.push(Object::from(mk_service(
        "default",
        "headless",
        &[("app", "x")],
        true,
    )));
    let d = run(objects);
    let spec = |n: &str| service(&d, n).spec.clone().unwrap();
    assert_eq!(spec("explicit").cluster_ips.unwrap(), ["10.96.204.67"]);
    assert_eq!(spec("kube-dns").cluster_ip.as_deref(), Some("10.96.0.10"));
    let net: IpNet = "10.96.0.0/12".parse().unwrap();
    let mut seen = HashSet::new();
    for i in 0..40 {
        let s = spec(&format!("s{i}"));
        let ip: std::net::IpAddr = s.cluster_ip.clone().unwrap().parse().unwrap();
        assert!(net.contains(&ip));
        assert!(!["10.96.0.1", "10.96.0.10", "10.96.204.67"].contains(&ip.to_string().as_str()));
        assert!(seen.insert(ip));
        assert_eq!(s.ip_families.unwrap(), ["IPv4"]);
        assert_eq!(s.ip_family_policy.as_deref(), Some("SingleStack"));
        assert_eq!(s.type_.as_deref(), Some("ClusterIP"));
    }
    let h = spec("headless");
    assert_eq!(h.cluster_ips.unwrap(), ["None"]);
    assert_eq!(h.ip_families.unwrap(), ["IPv4"]);
}

#[test]
fn dual_stack_policies_follow_the_api_server() {
    let config = ControllerConfig {
        service_cidrs: vec![
            "10.96.0.0/12".parse().unwrap(),
            "fd00:10:96::/112".parse().unwrap(),
        ],
        ..ControllerConfig::default()
    };
    let mut prefer = mk_service("default", "prefer", &[("app", "x")], false);
    prefer.spec.as_mut().unwrap().ip_family_policy = Some("PreferDualStack".to_owned());
    let single = mk_service("default", "single", &[("app", "x")], false);
    let selectorless_headless = mk_service("default", "manual", &[], true);
    let store = mk_store(vec![
        Object::from(prefer.clone()),
        Object::from(single),
        Object::from(selectorless_headless),
    ]);
    let d = derive(&store, &config).unwrap();
    let p = service(&d, "prefer").spec.clone().unwrap();
    assert_eq!(p.ip_families.unwrap(), ["IPv4", "IPv6"]);
    let ips = p.cluster_ips.unwrap();
    assert!(ips[1].starts_with("fd00:10:96::"), "{ips:?}");
    assert_eq!(
        service(&d, "single")
            .spec
            .clone()
            .unwrap()
            .ip_families
            .unwrap(),
        ["IPv4"]
    );
    let m = service(&d, "manual").spec.clone().unwrap();
    assert_eq!(m.ip_family_policy.as_deref(), Some("RequireDualStack"));
    assert_eq!(m.ip_families.unwrap(), ["IPv4", "IPv6"]);

    // Single-stack cluster: PreferDualStack stays single; RequireDualStack is refused, as
    // the API server would, and only that Service is left out.
    let d = run(vec![Object::from(prefer.clone())]);
    assert_eq!(
        service(&d, "prefer")
            .spec
            .clone()
            .unwrap()
            .cluster_ips
            .unwrap()
            .len(),
        1
    );
    prefer.spec.as_mut().unwrap().ip_family_policy = Some("RequireDualStack".to_owned());
    let d = run(vec![
        Object::from(prefer),
        Object::from(mk_service("default", "fine", &[], false)),
    ]);
    assert_eq!(d.services.len(), 1);
    assert_eq!(d.rejected.len(), 1);
    assert!(
        d.rejected[0].to_string().starts_with(
            "Service default/prefer: spec.ipFamilyPolicy: RequireDualStack needs two service CIDRs"
        ),
        "{}",
        d.rejected[0]
    );
}

#[test]
fn service_ip_errors_name_the_service() {
    let mut a = mk_service("default", "a", &[], false);
    a.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.50".to_owned());
    let mut b = mk_service("default", "b", &[], false);
    b.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.50".to_owned());
    let mut v6 = mk_service("default", "v6", &[], false);
    v6.spec.as_mut().unwrap().ip_families = Some(vec!["IPv6".to_owned()]);
    let mut bad = mk_service("default", "bad", &[], false);
    bad.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.300".to_owned());
    let d = run(vec![
        Object::from(a),
        Object::from(b),
        Object::from(v6),
        Object::from(bad),
    ]);
    let names: Vec<_> = d
        .services
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    let rejected: Vec<String> = d.rejected.iter().map(ToString::to_string).collect();
    assert_eq!(
        rejected,
        [
            "Service default/b: spec.clusterIPs: 10.96.0.50 is already allocated to Service default/a",
            "Service default/bad: spec.clusterIP: \"10.96.0.300\" is not an IP address or None",
            "Service default/v6: spec.ipFamilies: IPv6 is not configured on this cluster (service CIDRs: 10.96.0.0/12)",
        ]
    );

    // An exhausted range fails the whole derivation: the configuration is too small.
    let config = ControllerConfig {
        service_cidrs: vec!["10.0.0.0/30".parse().unwrap()],
        ..ControllerConfig::default()
    };
    let store = mk_store(vec![
        Object::from(mk_service("default", "x", &[], false)),
        Object::from(mk_service("default", "y", &[], false)),
    ]);
    let err = derive(&store, &config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Service default/y: no free address left in service CIDR 10.0.0.0/30"
    );
}

// === EndpointSlices ===

#[test]
fn headless_statefulset_slice_has_hostnames_labels_and_resolved_ports() {
    let mut svc = mk_service("default", "web", &[("app", "web")], true);
    svc.metadata.labels = Some(labels(&[("team", "a")]));
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port =
        Some(IntOrString::String("web".to_owned()));
    let d = run(vec![
        Object::from(svc),
        Object::from(mk_statefulset(
            "default",
            "web",
            "web",
            3,
            &[("app", "web")],
        )),
        Object::from(mk_statefulset(
            "default",
            "other",
            "elsewhere",
            1,
            &[("app", "web")],
        )),
    ]);
    let slices = slices_of(&d, "web");
    assert_eq!(slices.len(), 1);
    let s = slices[0];
    assert_eq!(s.address_type, "IPv4");
    assert!(s.metadata.name.as_deref().unwrap().starts_with("web-"));
    assert_eq!(
        label(&s.metadata, "endpointslice.kubernetes.io/managed-by"),
        Some("endpointslice-controller.k8s.io")
    );
    assert_eq!(
        label(&s.metadata, "service.kubernetes.io/headless"),
        Some("")
    );
    assert_eq!(label(&s.metadata, "team"), Some("a"));
    assert_eq!(
        s.metadata.owner_references.as_ref().unwrap()[0].kind,
        "Service"
    );
    let hosts: Vec<_> = s.endpoints.iter().map(|e| e.hostname.clone()).collect();
    // Ordered by pod name; `other-0` has a subdomain of another service: no hostname.
    assert_eq!(
        hosts,
        [
            None,
            Some("web-0".to_owned()),
            Some("web-1".to_owned()),
            Some("web-2".to_owned())
        ]
    );
    let ports = s.ports.clone().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(
        (
            ports[0].name.as_deref(),
            ports[0].port,
            ports[0].protocol.as_deref()
        ),
        (Some("http"), Some(8080), Some("TCP"))
    );
    let ep = &s.endpoints[1];
    assert_eq!(
        ep.target_ref.as_ref().unwrap().name.as_deref(),
        Some("web-0")
    );
    assert!(ep.node_name.is_some());
    assert!(ep.zone.is_none());
}

#[test]
fn pods_without_the_named_port_get_their_own_slice() {
    let mut svc = mk_service("default", "svc", &[("app", "x")], false);
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port =
        Some(IntOrString::String("web".to_owned()));
    let mut odd = mk_pod("default", "odd", &[("app", "x")], Some("10.244.0.2"), true);
    odd.spec.as_mut().unwrap().containers[0].ports = None;
    let d = run(vec![
        Object::from(svc),
        Object::from(mk_pod(
            "default",
            "a",
            &[("app", "x")],
            Some("10.244.0.1"),
            true,
        )),
        Object::from(odd),
    ]);
    let slices = slices_of(&d, "svc");
    assert_eq!(slices.len(), 2);
    let port_counts: Vec<usize> = slices
        .iter()
        .map(|s| s.ports.as_ref().unwrap().len())
        .collect();
    assert!(port_counts.contains(&0) && port_counts.contains(&1));
}

#[test]
fn conditions_follow_readiness_termination_and_publish_not_ready() {
    let mut terminating = mk_pod(
        "default",
        "c-term",
        &[("app", "x")],
        Some("10.244.0.3"),
        true,
    );
    terminating.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let mut done = mk_pod(
        "default",
        "d-done",
        &[("app", "x")],
        Some("10.244.0.4"),
        true,
    );
    done.status.as_mut().unwrap().phase = Some("Succeeded".to_owned());
    let mut pending = mk_pod("default", "e-pending", &[("app", "x")], None, true);
    pending.status = Some(PodStatus {
        phase: Some("Pending".to_owned()),
        ..PodStatus::default()
    });
    let objects = vec![
        Object::from(mk_service("default", "svc", &[("app", "x")], true)),
        Object::from(mk_pod(
            "default",
            "a-ready",
            &[("app", "x")],
            Some("10.244.0.1"),
            true,
        )),
        Object::from(mk_pod(
            "default",
            "b-unready",
            &[("app", "x")],
            Some("10.244.0.2"),
            false,
        )),
        Object::from(terminating),
        Object::from(done),
        Object::from(pending),
        Object::from(mk_pod(
            "other",
            "f-elsewhere",
            &[("app", "x")],
            Some("10.244.0.6"),
            true,
        )),
        Object::from(mk_pod(
            "default",
            "g-unlabelled",
            &[("app", "y")],
            Some("10.244.0.7"),
            true,
        )),
    ];
    let d = run(objects.clone());
    let s = slices_of(&d, "svc");
    let got: Vec<(String, bool, bool, bool)> = s[0]
        .endpoints
        .iter()
        .map(|e| {
            let c = e.conditions.clone().unwrap();
            (
                e.target_ref.clone().unwrap().name.unwrap(),
                c.ready.unwrap(),
                c.serving.unwrap(),
                c.terminating.unwrap(),
            )
        })
        .collect();
    let want = |n: &str, r, s, t| (n.to_owned(), r, s, t);
    assert_eq!(
        got,
        [
            want("a-ready", true, true, false),
            want("b-unready", false, false, false),
            want("c-term", false, true, true)
        ]
    );

    let mut objects = objects;
    let Object::Service(svc) = &mut objects[0] else {
        unreachable!()
    };
    std::sync::Arc::make_mut(svc)
        .spec
        .as_mut()
        .unwrap()
        .publish_not_ready_addresses = Some(true);
    let d = run(objects);
    assert!(
        slices_of(&d, "svc")[0]
            .endpoints
            .iter()
            .all(|e| e.conditions.as_ref().unwrap().ready == Some(true))
    );
}

#[test]
fn slices_hold_at_most_100_endpoints_and_empty_services_get_a_placeholder() {
    let d = run(vec![
        Object::from(mk_service("default", "big", &[("app", "big")], true)),
        Object::from(mk_deployment("default", "big", 250, &[("app", "big")])),
        Object::from(mk_service("default", "empty", &[("app", "nobody")], true)),
    ]);
    let sizes: Vec<usize> = slices_of(&d, "big")
        .iter()
        .map(|s| s.endpoints.len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 250);
    assert!(sizes.iter().all(|n| *n <= 100));
    assert_eq!(sizes.len(), 3);
    let empty = slices_of(&d, "empty");
    assert_eq!(empty.len(), 1);
    assert!(empty[0].endpoints.is_empty() && empty[0].ports.is_none());
}

#[test]
fn dual_stack_services_get_a_slice_per_family() {
    let config = ControllerConfig {
        pod_cidrs: vec![
            "10.244.0.0/16".parse().unwrap(),
            "fd00:10:244::/56".parse().unwrap(),
        ],
        service_cidrs: vec![
            "10.96.0.0/12".parse().unwrap(),
            "fd00:10:96::/112".parse().unwrap(),
        ],
        ..ControllerConfig::default()
    };
    let mut svc = mk_service("default", "web", &[("app", "web")], true);
    svc.spec.as_mut().unwrap().ip_family_policy = Some("PreferDualStack".to_owned());
    let store = mk_store(vec![
        Object::from(svc),
        Object::from(mk_statefulset(
            "default",
            "web",
            "web",
            2,
            &[("app", "web")],
        )),
    ]);
    let d = derive(&store, &config).unwrap();
    let s = slices_of(&d, "web");
    let mut types: Vec<&str> = s.iter().map(|s| s.address_type.as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, ["IPv4", "IPv6"]);
    let v6 = s.iter().find(|s| s.address_type == "IPv6").unwrap();
    assert!(v6.endpoints.iter().all(|e| e.addresses[0].contains(':')));
}

#[test]
fn endpoints_are_mirrored_only_for_selectorless_services() {
    let endpoints = |name: &str| Endpoints {
        metadata: meta("default", name),
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![
                EndpointAddress {
                    ip: "192.168.1.11".to_owned(),
                    hostname: Some("db-a".to_owned()),
                    ..EndpointAddress::default()
                },
                EndpointAddress {
                    ip: "not-an-ip".to_owned(),
                    ..EndpointAddress::default()
                },
            ]),
            not_ready_addresses: Some(vec![EndpointAddress {
                ip: "192.168.1.12".to_owned(),
                node_name: Some("n".to_owned()),
                ..EndpointAddress::default()
            }]),
            ports: Some(vec![k8s_openapi::api::core::v1::EndpointPort {
                port: 8080,
                ..Default::default()
            }]),
        }]),
    };
    let d = run(vec![
        Object::from(mk_service("default", "manual", &[], true)),
        Object::from(endpoints("manual")),
        Object::from(mk_service("default", "selected", &[("app", "x")], true)),
        Object::from(endpoints("selected")),
    ]);
    let m = slices_of(&d, "manual");
    assert_eq!(m.len(), 1);
    assert_eq!(
        label(&m[0].metadata, "endpointslice.kubernetes.io/managed-by"),
        Some("endpointslicemirroring-controller.k8s.io")
    );
    assert_eq!(
        m[0].metadata.owner_references.as_ref().unwrap()[0].kind,
        "Endpoints"
    );
    let eps: Vec<(String, Option<bool>, Option<String>)> = m[0]
        .endpoints
        .iter()
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.conditions.as_ref().unwrap().ready,
                e.hostname.clone(),
            )
        })
        .collect();
    assert_eq!(
        eps,
        [
            (
                "192.168.1.11".to_owned(),
                Some(true),
                Some("db-a".to_owned())
            ),
            ("192.168.1.12".to_owned(), Some(false), None)
        ]
    );
    let ports = m[0].ports.clone().unwrap();
    assert_eq!(
        (
            ports[0].name.as_deref(),
            ports[0].port,
            ports[0].protocol.as_deref()
        ),
        (Some(""), Some(8080), Some("TCP"))
    );
    // The selector's controller owns `selected`: only its (empty placeholder) slice.
    let s = slices_of(&d, "selected");
    assert_eq!(s.len(), 1);
    assert!(s[0].endpoints.is_empty());
}

#[test]
fn hand_written_slices_are_kept() {
    let slice = EndpointSlice {
        metadata: ObjectMeta {
            labels: Some(labels(&[("kubernetes.io/service-name", "manual")])),
            ..meta("default", "manual-1")
        },
        address_type: "IPv4".to_owned(),
        endpoints: vec![],
        ports: None,
    };
    let d = run(vec![
        Object::from(mk_service("default", "manual", &[], true)),
        Object::from(slice.clone()),
    ]);
    let mut slice = slice;
    slice.metadata.uid = Some(super::stable_uid("EndpointSlice", &slice.metadata));
    assert_eq!(d.endpoint_slices, [slice]);
}

// === properties of the EndpointSlice derivation ===

#[derive(Clone, Debug)]
struct PodCase {
    in_ns: bool,
    matching: bool,
    ready: bool,
    has_ip: bool,
    finished: bool,
    /// 0: no hostname; 1: hostname + subdomain = service; 2: hostname + other subdomain.
    host: u8,
}

fn pod_case() -> impl Strategy<Value = PodCase> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
        0u8..3,
    )
        .prop_map(|(in_ns, matching, ready, has_ip, finished, host)| PodCase {
            in_ns,
            matching,
            ready,
            has_ip,
            finished,
            host,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn endpoint_slices_hold_exactly_the_matching_pods(
        cases in prop::collection::vec(pod_case(), 0..260),
        headless in any::<bool>(),
    ) {
        let mut objects = vec![Object::from(mk_service("a", "svc", &[("app", "x"), ("tier", "web")], headless))];
        for (i, c) in cases.iter().enumerate() {
            let ns = if c.in_ns { "a" } else { "b" };
            let app = if c.matching { "x" } else { "y" };
            let ip = format!("10.244.{}.{}", i / 250, i % 250 + 1);
            let mut p = mk_pod(ns, &format!("p{i:03}"), &[("app", app), ("tier", "web"), ("extra", "1")], c.has_ip.then_some(ip.as_str()), c.ready);
            if !c.has_ip {
                p.status = Some(PodStatus { phase: Some("Pending".to_owned()), ..PodStatus::default() });
            }
            if c.finished && c.has_ip {
                p.status.as_mut().unwrap().phase = Some("Failed".to_owned());
            }
            let spec = p.spec.as_mut().unwrap();
            match c.host {
                1 => { spec.hostname = Some(format!("h{i}")); spec.subdomain = Some("svc".to_owned()); }
                2 => { spec.hostname = Some(format!("h{i}")); spec.subdomain = Some("other".to_owned()); }
                _ => {}
            }
            objects.push(Object::from(p));
        }
        let d = run(objects);
        let slices = slices_of(&d, "svc");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for s in &slices {
            prop_assert!(s.endpoints.len() <= 100);
            prop_assert_eq!(s.metadata.namespace.as_deref(), Some("a"));
            for e in &s.endpoints {
                let name = e.target_ref.clone().unwrap().name.unwrap();
                *seen.entry(name.clone()).or_default() += 1;
                let i: usize = name[1..].parse().unwrap();
                let c = &cases[i];
                prop_assert!(c.in_ns && c.matching && c.has_ip && !c.finished, "{} should not be here", name);
                prop_assert_eq!(e.conditions.clone().unwrap().ready, Some(c.ready));
                prop_assert_eq!(e.hostname.is_some(), c.host == 1, "hostname only with the service's subdomain");
            }
        }
        for (i, c) in cases.iter().enumerate() {
            let expected = usize::from(c.in_ns && c.matching && c.has_ip && !c.finished);
            prop_assert_eq!(seen.get(&format!("p{i:03}")).copied().unwrap_or(0), expected, "pod p{:03} once", i);
        }
        // Every ready matching pod appears, exactly once.
        let ready_in = seen.keys().filter(|n| cases[n[1..].parse::<usize>().unwrap()].ready).count();
        let ready_want = cases.iter().filter(|c| c.in_ns && c.matching && c.has_ip && !c.finished && c.ready).count();
        prop_assert_eq!(ready_in, ready_want);
    }
}

/// Many services at once: every one gets exactly its own StatefulSet's pods, with hostnames.
#[test]
fn many_services_each_get_their_own_pods() {
    let mut objects = Vec::new();
    for i in 0..300 {
        let name = format!("s{i}");
        objects.push(Object::from(mk_service(
            "default",
            &name,
            &[("app", &name)],
            true,
        )));
        objects.push(Object::from(mk_statefulset(
            "default",
            &name,
            &name,
            10,
            &[("app", &name)],
        )));
    }
    let d = run(objects);
    assert_eq!(d.pods.len(), 3000);
    let view = crate::view::cluster_view(&d, &crate::view::ViewConfig::default());
    assert_eq!(view.services.len(), 300);
    for svc in &view.services {
        assert_eq!(svc.endpoints.len(), 10, "{}", svc.key);
        for e in &svc.endpoints {
            let host = e.hostname.as_deref().unwrap();
            assert!(host.starts_with(&format!("{}-", svc.key.name)), "{host}");
        }
    }
}

// === lean pods ===

/// Full and lean derivations of `store` under `config`: the same namespaces, Services,
/// EndpointSlices, rejections and views (unfiltered and label-filtered), the same pods by name;
/// the lean pods without spec.
fn assert_lean_matches_full(what: &str, store: &ClusterStore, config: &ControllerConfig) {
    use crate::view::{ViewConfig, cluster_view};
    use podns_view::ClusterView;
    let full = derive(store, config).unwrap();
    let lean = derive(
        store,
        &ControllerConfig {
            lean_pods: true,
            ..config.clone()
        },
    )
    .unwrap();
    assert_eq!(lean.namespaces, full.namespaces, "{what}: namespaces");
    assert_eq!(lean.services, full.services, "{what}: services");
    assert_eq!(
        lean.endpoint_slices.len(),
        full.endpoint_slices.len(),
        "{what}: slices"
    );
    for (l, f) in lean.endpoint_slices.iter().zip(&full.endpoint_slices) {
        assert_eq!(l, f, "{what}: slice");
    }
    assert_eq!(lean.rejected, full.rejected, "{what}: rejected");
    let names = |d: &DerivedCluster| -> Vec<(String, String)> {
        d.pods.iter().map(|p| key_of(&p.metadata)).collect()
    };
    assert_eq!(names(&lean), names(&full), "{what}: pods");
    for (l, f) in lean.pods.iter().zip(&full.pods) {
        assert_eq!(l.metadata.uid, f.metadata.uid, "{what}: pod uid");
        assert_eq!(l.metadata.labels, f.metadata.labels, "{what}: pod labels");
        assert_eq!(l.spec, None, "{what}: a lean pod keeps no spec");
    }
    let filtered = ViewConfig {
        labels: Some("tier=backend".parse().unwrap()),
        ..ViewConfig::default()
    };
    for view in [ViewConfig::default(), filtered] {
        let want = cluster_view(&full, &view);
        assert_eq!(cluster_view(&lean, &view), want, "{what}: view ({view:?})");
        let served = crate::view::standalone_view(store, config, &view, true).unwrap();
        let endpoints: usize = full.endpoint_slices.iter().map(|s| s.endpoints.len()).sum();
        assert_eq!(
            served.counts,
            crate::view::DerivedCounts {
                services: full.services.len(),
                pods: full.pods.len(),
                endpoint_slices: full.endpoint_slices.len(),
                endpoints,
            },
            "{what}: standalone_view counts"
        );
        let keys: Vec<_> = served.service_keys().cloned().collect();
        let want_keys: Vec<_> = want.services.iter().map(|s| s.key.clone()).collect();
        assert_eq!(keys, want_keys, "{what}: standalone_view keys");
        let views: Vec<_> = served.services().collect();
        assert_eq!(views, want.services, "{what}: StandaloneView::services");
        assert_eq!(
            served.into_cluster_view(),
            want,
            "{what}: standalone_view ({view:?})"
        );
        let without_pods = crate::view::standalone_view(store, config, &view, false).unwrap();
        assert!(without_pods.pods.is_empty(), "{what}: pods only when asked");
        assert_eq!(
            without_pods.into_cluster_view(),
            ClusterView {
                pods: Vec::new(),
                ..want
            },
            "{what}: standalone_view without pods ({view:?})"
        );
    }
}

fn dual_stack() -> ControllerConfig {
    ControllerConfig {
        pod_cidrs: vec![
            "10.244.0.0/16".parse().unwrap(),
            "fd00:10:244::/56".parse().unwrap(),
        ],
        service_cidrs: vec![
            "10.96.0.0/12".parse().unwrap(),
            "fd00:10:96::/112".parse().unwrap(),
        ],
        nodes: vec![
            "node-1".to_owned(),
            "node-2".to_owned(),
            "node-3".to_owned(),
        ],
        lean_pods: false,
    }
}

/// Every bundled example and test fixture: lean derivation changes no slice and no view.
#[test]
fn lean_pods_change_no_slice_and_no_view_of_the_examples() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<std::path::PathBuf> = ["../../examples", "tests/fixtures"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.ends_with("broken"))
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 12, "examples found: {dirs:?}");
    for dir in &dirs {
        let store = ClusterStore::from_objects(
            crate::source::manifest::load(std::slice::from_ref(dir)).unwrap(),
        );
        let what = dir.display().to_string();
        assert!(!store.is_empty(), "{what}: no objects");
        assert_lean_matches_full(&what, &store, &ControllerConfig::default());
        assert_lean_matches_full(&what, &store, &dual_stack());
    }
}

/// A generated cluster with every kind of workload and what slices read of pods: named
/// targetPorts some pods lack, restartable and plain init containers, not-ready templates,
/// explicit pods with and without status (finished, terminating, not ready, replacing a
/// StatefulSet's pod), more than 100 endpoints per Service.
#[test]
fn lean_pods_change_no_slice_and_no_view_of_a_generated_cluster() {
    fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }
    let mut objects: Vec<Object> = Vec::new();
    for i in 0..60 {
        let ns = ["default", "prod", "dev"][i % 3];
        let name = format!("app-{i}");
        let kind = i % 5;
        let headless = i % 2 == 0;
        let target = if i % 4 == 0 {
            json!("http")
        } else {
            json!(8080)
        };
        objects.push(Object::from(typed::<Service>(json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "tier": if i % 3 == 0 { "backend" } else { "frontend" }}},
            "spec": {
                "clusterIP": if headless { Some("None") } else { None },
                "selector": {"app": name},
                "publishNotReadyAddresses": i % 7 == 0,
                "ports": [
                    {"name": "http", "port": 80, "targetPort": target},
                    {"name": "metrics", "port": 9090, "targetPort": "metrics"},
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
                ],
            },
        }))));
        // Odd workloads' containers lack the `metrics` port; every third has a DNS sidecar.
        let mut ports = vec![json!({"name": "http", "containerPort": 8080})];
        if i % 2 == 0 {
            ports.push(json!({"name": "metrics", "containerPort": 9100}));
        }
        let init = if i % 3 == 0 {
            json!([
                {"name": "dns", "image": "dns", "restartPolicy": "Always",
                 "ports": [{"name": "dns", "containerPort": 5353, "protocol": "UDP"}]},
                {"name": "setup", "image": "setup", "command": ["true"],
                 "ports": [{"name": "metrics", "containerPort": 1}]},
            ])
        } else {
            json!([])
        };
        let template = json!({
            "metadata": {
                "labels": {"app": name, "tier": "backend"},
                "annotations": if i % 6 == 1 { json!({READY_ANNOTATION: "false", "note": "x"}) } else { json!({"note": "x"}) },
            },
            "spec": {
                "containers": [
                    {"name": "app", "image": "registry.example/app:1", "command": ["app"],
                     "env": [{"name": "MODE", "value": "prod"}], "ports": ports,
                     "resources": {"requests": {"cpu": "100m"}},
                     "readinessProbe": {"httpGet": {"path": "/", "port": 8080}}},
                    {"name": "log", "image": "log"},
                ],
                "initContainers": init,
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        });
        let replicas = if i == 5 { 130 } else { i % 4 + 1 };
        let spec = json!({
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
        });
        let meta = json!({"name": name, "namespace": ns});
        let workload = match kind {
            0 => Object::from(typed::<StatefulSet>(
                json!({"metadata": meta, "spec": spec}),
            )),
            1 => Object::from(typed::<Deployment>(json!({"metadata": meta, "spec": spec}))),
            2 => Object::from(typed::<k8s_openapi::api::apps::v1::ReplicaSet>(
                json!({"metadata": meta, "spec": spec}),
            )),
            3 => Object::from(typed::<DaemonSet>(json!({"metadata": meta, "spec": spec}))),
            _ => {
                // Explicit pods, one of each kind of status.
                let statuses = [
                    json!(null),
                    json!({"phase": "Running", "podIP": format!("10.1.{i}.1"),
                           "conditions": [{"type": "PodScheduled", "status": "True"},
                                          {"type": "Ready", "status": "False"}]}),
                    json!({"phase": "Running", "podIPs": [{"ip": format!("10.1.{i}.2")}, {"ip": format!("fd00::{i}:2")}],
                           "hostIP": "192.168.0.1",
                           "conditions": [{"type": "Ready", "status": "True", "reason": "ok"}],
                           "containerStatuses": [{"name": "app", "image": "i", "imageID": "x", "ready": true, "restartCount": 0}]}),
                    json!({"phase": "Failed", "podIP": format!("10.1.{i}.3")}),
                    json!({"phase": "Pending"}),
                ];
                for (n, status) in statuses.into_iter().enumerate() {
                    let mut pod = json!({
                        "metadata": {"name": format!("{name}-p{n}"), "namespace": ns,
                                     "labels": {"app": name, "tier": "backend"},
                                     "annotations": {READY_ANNOTATION: if n == 0 && i % 2 == 0 { "false" } else { "true" }}},
                        "spec": {"hostname": format!("p{n}"), "subdomain": name, "nodeName": "node-9",
                                 "containers": template["spec"]["containers"].clone(),
                                 "initContainers": template["spec"]["initContainers"].clone()},
                    });
                    if !status.is_null() {
                        pod["status"] = status;
                    }
                    if n == 1 {
                        pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                        pod["metadata"]["uid"] = json!("explicit-uid");
                    }
                    objects.push(Object::from(typed::<Pod>(pod)));
                }
                Object::from(typed::<StatefulSet>(
                    json!({"metadata": meta, "spec": spec}),
                ))
            }
        };
        objects.push(workload);
        if kind == 0 {
            // An explicit Pod in place of the StatefulSet's first pod.
            objects.push(Object::from(typed::<Pod>(json!({
                "metadata": {"name": format!("{name}-0"), "namespace": ns, "labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "other"}]},
            }))));
        }
    }
    let store = mk_store(objects);
    let full = derive(&store, &dual_stack()).unwrap();
    assert!(full.pods.len() > 300, "{} pods", full.pods.len());
    assert!(
        full.endpoint_slices
            .iter()
            .any(|s| s.endpoints.len() == 100),
        "a Service with more than 100 endpoints"
    );
    assert_lean_matches_full("generated", &store, &ControllerConfig::default());
    assert_lean_matches_full("generated, dual-stack", &store, &dual_stack());
}

/// The in-place sort gives what a sorted copy would, whatever the permutation.
#[test]
fn sort_by_key_sorts_in_place() {
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(
            &prop::collection::vec((0u8..4, 0u16..500), 0..200),
            |keys| {
                let mut seen = std::collections::HashSet::new();
                let mut pods: Vec<Pod> = keys
                    .into_iter()
                    .filter(|k| seen.insert(*k))
                    .map(|(ns, name)| Pod {
                        metadata: meta(&format!("ns{ns}"), &format!("p{name}")),
                        ..Pod::default()
                    })
                    .collect();
                let mut want: Vec<(String, String)> =
                    pods.iter().map(|p| key_of(&p.metadata)).collect();
                want.sort();
                sort_by_key(&mut pods);
                let got: Vec<(String, String)> = pods.iter().map(|p| key_of(&p.metadata)).collect();
                prop_assert_eq!(got, want);
                Ok(())
            },
        )
        .unwrap();
}

/// One generated object for [`lean_and_full_derivations_agree_on_generated_manifests`].
fn arb_object(i: usize) -> impl Strategy<Value = serde_json::Value> {
    let labels = prop::sample::subsequence(vec!["app=a", "app=b", "tier=web", "tier=db"], 0..3);
    (
        0u8..6,
        0i32..4,
        labels,
        prop::sample::subsequence(vec!["http", "metrics", "dns"], 0..3),
        any::<bool>(),
        0u8..3,
        0u8..5,
    )
        .prop_map(move |(kind, replicas, labels, ports, flag, host, status)| {
            let labels: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k.to_owned(), json!(v))
                })
                .collect();
            let ns = ["default", "prod"][i % 2];
            let name = format!("o{i}");
            let ports: Vec<_> = ports
                .iter()
                .enumerate()
                .map(|(n, p)| {
                    let protocol = if *p == "dns" { "UDP" } else { "TCP" };
                    json!({"name": p, "containerPort": 8000 + n, "protocol": protocol})
                })
                .collect();
            let mut spec = json!({"containers": [{"name": "c", "image": "i", "ports": ports}]});
            match host {
                1 => spec["hostname"] = json!("h"),
                2 => {
                    spec["hostname"] = json!("h");
                    spec["subdomain"] = json!("s0");
                    spec["nodeName"] = json!("pinned");
                }
                _ => {}
            }
            let mut template = json!({"metadata": {"labels": labels}, "spec": spec});
            if flag {
                template["metadata"]["annotations"] = json!({READY_ANNOTATION: "false"});
            }
            let workload = |kind: &str| {
                json!({"kind": kind, "metadata": {"name": name, "namespace": ns},
                       "spec": {"replicas": replicas, "serviceName": "s0",
                                "selector": {"matchLabels": labels}, "template": template}})
            };
            match kind {
                0 => {
                    let selector = if labels.is_empty() { json!(null) } else { json!(labels) };
                    let target = if flag { json!("http") } else { json!(80) };
                    json!({"kind": "Service", "metadata": {"name": format!("s{}", i % 3), "namespace": ns},
                           "spec": {"clusterIP": if host == 0 { json!("None") } else { json!(null) },
                                    "selector": selector, "publishNotReadyAddresses": status == 0,
                                    "ports": [{"name": "web", "port": 80, "targetPort": target},
                                              {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}]}})
                }
                1 => workload("StatefulSet"),
                2 => workload("Deployment"),
                3 => workload("ReplicaSet"),
                4 => workload("DaemonSet"),
                _ => {
                    let statuses = [
                        json!(null),
                        json!({"phase": "Running", "podIP": format!("10.9.0.{i}"),
                               "conditions": [{"type": "Ready", "status": if flag { "True" } else { "False" }}]}),
                        json!({"phase": "Failed", "podIP": format!("10.9.1.{i}")}),
                        json!({"phase": "Pending"}),
                        json!({"phase": "Running", "podIPs": [{"ip": format!("10.9.2.{i}")}, {"ip": "not-an-ip"}]}),
                    ];
                    let mut pod = json!({"kind": "Pod",
                        "metadata": {"name": if flag { "o1-0".to_owned() } else { name.clone() },
                                     "namespace": ns, "labels": labels},
                        "spec": spec});
                    if !statuses[usize::from(status)].is_null() {
                        pod["status"] = statuses[usize::from(status)].clone();
                    }
                    if host == 1 {
                        pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                    }
                    pod
                }
            }
        })
}

fn arb_manifests() -> impl Strategy<Value = Vec<serde_json::Value>> {
    (0usize..14).prop_flat_map(|n| (0..n).map(arb_object).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the manifests (workloads of every kind, templates with and without named
    /// ports, hostnames, pinned nodes, not-ready marks; explicit pods of every status, some
    /// replacing a StatefulSet's; Services with and without selectors): lean and full
    /// derivations, and the view `serve` makes, agree.
    #[test]
    fn lean_and_full_derivations_agree_on_generated_manifests(docs in arb_manifests()) {
        let objects: Vec<Object> = docs
            .into_iter()
            .map(|doc| {
                let kind = doc["kind"].as_str().unwrap().to_owned();
                let mut doc = doc;
                doc.as_object_mut().unwrap().remove("kind");
                match kind.as_str() {
                    "Service" => Object::from(serde_json::from_value::<Service>(doc).unwrap()),
                    "StatefulSet" => Object::from(serde_json::from_value::<StatefulSet>(doc).unwrap()),
                    "Deployment" => Object::from(serde_json::from_value::<Deployment>(doc).unwrap()),
                    "ReplicaSet" => Object::from(
                        serde_json::from_value::<k8s_openapi::api::apps::v1::ReplicaSet>(doc).unwrap(),
                    ),
                    "DaemonSet" => Object::from(serde_json::from_value::<DaemonSet>(doc).unwrap()),
                    _ => Object::from(serde_json::from_value::<Pod>(doc).unwrap()),
                }
            })
            .collect();
        let store = mk_store(objects);
        assert_lean_matches_full("generated", &store, &ControllerConfig::default());
        assert_lean_matches_full("generated, dual-stack", &store, &dual_stack());
    }
}
