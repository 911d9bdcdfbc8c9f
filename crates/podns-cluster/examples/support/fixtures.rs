//! Synthetic clusters for the memory example and the view bench: objects shaped as an API
//! server returns them (uids, resourceVersions, owner references, target refs), so sizes are
//! realistic, built from JSON so they read like the manifests they stand for.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use podns_cluster::Object;
use serde_json::json;

/// Namespaces the services are spread over.
pub const NAMESPACES: usize = 10;

fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("fixture JSON matches the k8s-openapi type")
}

fn uid(kind: &str, i: usize, j: usize) -> String {
    format!("{:08x}-{kind:.4}-4000-8000-{:012x}", i, j)
}

/// The namespace of service `i`.
pub fn namespace_of(i: usize) -> String {
    format!("ns-{}", i % NAMESPACES)
}

/// A Namespace as the API server has it.
pub fn namespace(n: usize) -> Object {
    let name = format!("ns-{n}");
    from::<Namespace>(json!({
        "metadata": {
            "name": name, "uid": uid("ns", n, 0), "resourceVersion": "12",
            "creationTimestamp": "2026-11-01T10:00:00Z",
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }))
    .into()
}

/// Service `i` as the API server has it: headless for even `i`, a ClusterIP otherwise.
pub fn service(i: usize) -> Object {
    let headless = i.is_multiple_of(2);
    let ip = if headless {
        "None".to_owned()
    } else {
        format!("10.96.{}.{}", (i / 250) % 250, i % 250 + 1)
    };
    from::<Service>(json!({
        "metadata": {
            "name": format!("svc-{i}"), "namespace": namespace_of(i), "uid": uid("svc", i, 0),
            "resourceVersion": format!("{}", 1000 + i), "creationTimestamp": "2026-11-01T10:00:00Z",
            "labels": {"app": format!("svc-{i}"), "team": "dns"},
        },
        "spec": {
            "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
            "selector": {"app": format!("svc-{i}")},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
        "status": {"loadBalancer": {}},
    }))
    .into()
}

/// The `slice`-th EndpointSlice of service `i` with `endpoints` endpoints; `generation` varies
/// the addresses' readiness so a bench can change a slice.
pub fn endpoint_slice(i: usize, slice: usize, endpoints: usize, generation: usize) -> Object {
    let headless = i.is_multiple_of(2);
    let ns = namespace_of(i);
    let svc = format!("svc-{i}");
    let eps: Vec<_> = (0..endpoints)
        .map(|e| {
            let n = i * 100 + slice * endpoints + e;
            let pod = format!("{svc}-{}", slice * endpoints + e);
            let ready = !(e + generation).is_multiple_of(7);
            json!({
                "addresses": [format!("10.{}.{}.{}", 128 + n / 62500 % 64, n / 250 % 250, n % 250 + 1)],
                "conditions": {"ready": ready, "serving": ready, "terminating": false},
                "hostname": if headless { Some(pod.clone()) } else { None },
                "nodeName": format!("node-{}", n % 50), "zone": format!("zone-{}", n % 3),
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pod, "uid": uid("pod", n, 1)},
            })
        })
        .collect();
    let mut labels = json!({
        "kubernetes.io/service-name": svc,
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        "app": svc,
    });
    if headless {
        labels["service.kubernetes.io/headless"] = json!("");
    }
    from::<EndpointSlice>(json!({
        "metadata": {
            "name": format!("{svc}-{slice:05}"), "namespace": ns, "uid": uid("eps", i, slice),
            "resourceVersion": format!("{}", 50_000 + i * 10 + slice + generation),
            "generation": 1 + generation, "creationTimestamp": "2026-11-01T10:00:01Z",
            "generateName": format!("{svc}-"), "labels": labels,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc,
                "uid": uid("svc", i, 0), "controller": true, "blockOwnerDeletion": true}],
        },
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))
    .into()
}

/// A cluster-mode object set: `services` Services, each with `endpoints_per_service`
/// endpoints in slices of at most 100, over [`NAMESPACES`] Namespaces.
pub fn cluster(services: usize, endpoints_per_service: usize) -> Vec<Object> {
    let mut objects: Vec<Object> = (0..NAMESPACES).map(namespace).collect();
    for i in 0..services {
        objects.push(service(i));
        let slices = endpoints_per_service.div_ceil(100);
        for s in 0..slices {
            let n = (endpoints_per_service - s * 100).min(100);
            objects.push(endpoint_slice(i, s, n, 0));
        }
    }
    objects
}

/// A standalone manifest set: `services` Services, each over a StatefulSet (even `i`) or a
/// Deployment (odd `i`) of `replicas` replicas.
pub fn manifests(services: usize, replicas: usize) -> Vec<Object> {
    let mut objects: Vec<Object> = (0..NAMESPACES).map(namespace).collect();
    for i in 0..services {
        let name = format!("app-{i}");
        let ns = namespace_of(i);
        let headless = i.is_multiple_of(2);
        objects.push(
            from::<Service>(json!({
                "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
                "spec": {
                    "clusterIP": if headless { Some("None") } else { None },
                    "selector": {"app": name},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                },
            }))
            .into(),
        );
        let template = json!({
            "metadata": {"labels": {"app": name, "tier": "backend"}},
            "spec": {"containers": [{
                "name": "app", "image": "registry.example/app:1.2.3",
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [{"name": "MODE", "value": "prod"}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }]},
        });
        let spec = json!({
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
        });
        if headless {
            let mut spec = spec;
            spec["serviceName"] = json!(name);
            objects.push(
                from::<StatefulSet>(
                    json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}),
                )
                .into(),
            );
        } else {
            objects.push(
                from::<Deployment>(
                    json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}),
                )
                .into(),
            );
        }
    }
    objects
}
