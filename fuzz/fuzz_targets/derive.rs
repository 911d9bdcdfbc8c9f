//! Fuzz target `derive`: structured cluster objects through the standalone controllers, the
//! service views and the zone builder.
//!
//! The input is a list of Services, StatefulSets, Deployments, Pods, EndpointSlices and
//! Namespaces whose names, labels, ports, addresses and conditions come mostly from small
//! pools (so selectors match and services own slices) and sometimes from arbitrary strings
//! (so validation is reached). Each becomes JSON, then the real `k8s-openapi` type (inputs the
//! API types reject are skipped, as the API server would reject them), then goes through
//! `podns_cluster::derive`, `cluster_view` and `podns_zone::build`, in both standalone and
//! cluster (`observed`) mode. Errors are fine; panics are not.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use podns_cluster::{ClusterStore, ControllerConfig, Object, ViewConfig};
use serde_json::{Value, json};

const NAMES: [&str; 8] = [
    "default",
    "web",
    "api",
    "web-0",
    "db",
    "kube-system",
    "a",
    "x.y",
];

#[derive(Arbitrary, Debug)]
enum Pick {
    Known(u8),
    Raw(String),
}

impl Pick {
    fn get(&self) -> String {
        match self {
            Self::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            Self::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Ip {
    V4([u8; 4]),
    V6([u16; 8]),
    Text(String),
}

impl Ip {
    fn get(&self) -> String {
        match self {
            Self::V4(o) => std::net::Ipv4Addr::from(*o).to_string(),
            Self::V6(s) => std::net::Ipv6Addr::from(*s).to_string(),
            Self::Text(t) => t.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Port {
    name: Option<Pick>,
    port: i32,
    target: Option<i32>,
    protocol: u8,
}

impl Port {
    fn json(&self) -> Value {
        let protocol = ["TCP", "UDP", "SCTP", "tcp"][usize::from(self.protocol % 4)];
        let mut v = json!({ "port": self.port, "protocol": protocol });
        if let Some(n) = &self.name {
            v["name"] = json!(n.get());
        }
        if let Some(t) = self.target {
            v["targetPort"] = json!(t);
        }
        v
    }
}

#[derive(Arbitrary, Debug)]
struct Endpoint {
    ip: Ip,
    hostname: Option<Pick>,
    ready: Option<bool>,
    serving: Option<bool>,
    terminating: Option<bool>,
}

#[derive(Arbitrary, Debug)]
enum Obj {
    Namespace {
        name: Pick,
    },
    Service {
        ns: Pick,
        name: Pick,
        headless: bool,
        selector: Option<Pick>,
        ports: Vec<Port>,
        cluster_ips: Vec<Ip>,
        external_name: Option<Pick>,
        publish_not_ready: bool,
    },
    StatefulSet {
        ns: Pick,
        name: Pick,
        service: Pick,
        replicas: i8,
        app: Pick,
    },
    Deployment {
        ns: Pick,
        name: Pick,
        replicas: i8,
        app: Pick,
        hostname: Option<Pick>,
        subdomain: Option<Pick>,
    },
    Pod {
        ns: Pick,
        name: Pick,
        app: Pick,
        ips: Vec<Ip>,
        hostname: Option<Pick>,
        subdomain: Option<Pick>,
        ready: bool,
    },
    EndpointSlice {
        ns: Pick,
        name: Pick,
        service: Pick,
        ipv6: bool,
        endpoints: Vec<Endpoint>,
        ports: Vec<Port>,
    },
}

fn meta(ns: &Pick, name: &Pick) -> Value {
    json!({ "namespace": ns.get(), "name": name.get() })
}

fn object(o: &Obj) -> Option<Object> {
    use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
    use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Option<T> {
        serde_json::from_value(v).ok()
    }
    Some(match o {
        Obj::Namespace { name } => Object::from(typed::<Namespace>(json!({
            "metadata": { "name": name.get() }
        }))?),
        Obj::Service {
            ns,
            name,
            headless,
            selector,
            ports,
            cluster_ips,
            external_name,
            publish_not_ready,
        } => {
            let mut spec = json!({
                "ports": ports.iter().take(8).map(Port::json).collect::<Vec<_>>(),
                "publishNotReadyAddresses": publish_not_ready,
            });
            if let Some(s) = selector {
                spec["selector"] = json!({ "app": s.get() });
            }
            if *headless {
                spec["clusterIP"] = json!("None");
            } else if !cluster_ips.is_empty() {
                let ips: Vec<String> = cluster_ips.iter().take(2).map(Ip::get).collect();
                spec["clusterIP"] = json!(ips[0]);
                spec["clusterIPs"] = json!(ips);
            }
            if let Some(e) = external_name {
                spec["type"] = json!("ExternalName");
                spec["externalName"] = json!(e.get());
            }
            Object::from(typed::<Service>(
                json!({ "metadata": meta(ns, name), "spec": spec }),
            )?)
        }
        Obj::StatefulSet {
            ns,
            name,
            service,
            replicas,
            app,
        } => Object::from(typed::<StatefulSet>(json!({
            "metadata": meta(ns, name),
            "spec": {
                "serviceName": service.get(),
                "replicas": replicas,
                "selector": { "matchLabels": { "app": app.get() } },
                "template": { "metadata": { "labels": { "app": app.get() } } },
            }
        }))?),
        Obj::Deployment {
            ns,
            name,
            replicas,
            app,
            hostname,
            subdomain,
        } => {
            let mut pod_spec = json!({ "containers": [] });
            if let Some(h) = hostname {
                pod_spec["hostname"] = json!(h.get());
            }
            if let Some(s) = subdomain {
                pod_spec["subdomain"] = json!(s.get());
            }
            Object::from(typed::<Deployment>(json!({
                "metadata": meta(ns, name),
                "spec": {
                    "replicas": replicas,
                    "selector": { "matchLabels": { "app": app.get() } },
                    "template": { "metadata": { "labels": { "app": app.get() } }, "spec": pod_spec },
                }
            }))?)
        }
        Obj::Pod {
            ns,
            name,
            app,
            ips,
            hostname,
            subdomain,
            ready,
        } => {
            let mut spec = json!({ "containers": [] });
            if let Some(h) = hostname {
                spec["hostname"] = json!(h.get());
            }
            if let Some(s) = subdomain {
                spec["subdomain"] = json!(s.get());
            }
            let ips: Vec<Value> = ips
                .iter()
                .take(2)
                .map(|ip| json!({ "ip": ip.get() }))
                .collect();
            let mut status = json!({
                "podIPs": ips,
                "conditions": [{ "type": "Ready", "status": if *ready { "True" } else { "False" } }],
            });
            if let Some(first) = ips.first() {
                status["podIP"] = first["ip"].clone();
            }
            let mut metadata = meta(ns, name);
            metadata["labels"] = json!({ "app": app.get() });
            Object::from(typed::<Pod>(
                json!({ "metadata": metadata, "spec": spec, "status": status }),
            )?)
        }
        Obj::EndpointSlice {
            ns,
            name,
            service,
            ipv6,
            endpoints,
            ports,
        } => {
            let mut metadata = meta(ns, name);
            metadata["labels"] = json!({ "kubernetes.io/service-name": service.get() });
            let endpoints: Vec<Value> = endpoints
                .iter()
                .take(16)
                .map(|e| {
                    let mut v = json!({ "addresses": [e.ip.get()], "conditions": {} });
                    if let Some(h) = &e.hostname {
                        v["hostname"] = json!(h.get());
                    }
                    for (key, value) in [
                        ("ready", e.ready),
                        ("serving", e.serving),
                        ("terminating", e.terminating),
                    ] {
                        if let Some(b) = value {
                            v["conditions"][key] = json!(b);
                        }
                    }
                    v
                })
                .collect();
            Object::from(typed::<EndpointSlice>(json!({
                "metadata": metadata,
                "addressType": if *ipv6 { "IPv6" } else { "IPv4" },
                "endpoints": endpoints,
                "ports": ports.iter().take(8).map(Port::json).collect::<Vec<_>>(),
            }))?)
        }
    })
}

fuzz_target!(|input: Vec<Obj>| {
    let objects: Vec<Object> = input.iter().take(64).filter_map(object).collect();
    let store = ClusterStore::from_objects(objects);
    let zone = podns_zone::ZoneConfig::default();
    if let Ok(derived) = podns_cluster::derive(&store, &ControllerConfig::default()) {
        let view = podns_cluster::cluster_view(&derived, &ViewConfig::default());
        podns_zone::build(&zone, &view);
    }
    let observed = podns_cluster::observed(&store);
    let view = podns_cluster::cluster_view(&observed, &ViewConfig::default());
    podns_zone::build(&zone, &view);
});
