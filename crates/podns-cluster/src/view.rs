//! Service views: the derived cluster reduced to what DNS needs.
//!
//! [`cluster_view`] is responsible for turning Services and EndpointSlices into
//! [`podns_view::ClusterView`]: the Service's kind from its spec (`type: ExternalName` →
//! ExternalName, `clusterIP: None` → Headless, else ClusterIP with `clusterIPs`), its ports, and
//! the endpoints of every slice labelled `kubernetes.io/service-name: <service>` in its
//! namespace, slices in name order. Conditions get the API's defaults (`ready` missing → true,
//! `serving` missing → `ready`, `terminating` missing → false). Unnamed ports (`""` or missing)
//! become `None`.
//!
//! It does not judge readiness for DNS (the zone does) and never fails: data DNS cannot use (an
//! address that is not an IP or not of the slice's `addressType`, a hostname that is not a DNS
//! label, an unknown protocol, an FQDN slice) is skipped with a `warn` naming the object.
//!
//! It also applies [`ViewConfig`], CoreDNS's object filters, so that standalone and cluster mode
//! filter alike: a namespace outside `namespaces` (or, with `namespace_labels`, without a
//! matching Namespace object) is absent with everything in it, and a Service whose labels do
//! not match `labels` is absent (CoreDNS: "only exposes the records for Kubernetes objects that
//! match this label selector"; it lists Services, EndpointSlices and Pods with the selector, so
//! the pods of `pods verified` are filtered by it too). Absent means NXDOMAIN, as CoreDNS's
//! `namespaceExposed` answers.
//!
//! The pods of [`ClusterView::pods`] are those CoreDNS's `pods verified` watch keeps: phase not
//! `Succeeded`, `Failed` or `Unknown` (its field selector), no `deletionTimestamp` (`toPod`),
//! with an IP. hostNetwork pods count, as in CoreDNS (their IP is the node's).
//!
//! [`IncrementalView`] gives the same views in cluster mode one change at a time: it keeps the
//! current view of each Service and, per [`ClusterEvent`](crate::ClusterEvent), recomputes only
//! the Services the change touches ([`ViewDelta`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use podns_view::{
    ClusterView, EndpointConditions, EndpointView, PodView, PortView, Protocol, ServiceKey,
    ServiceKind, ServiceView,
};

use crate::controller::{DerivedCluster, key_of};
use crate::selector::LabelSelector;
use crate::store::service_name_of;

mod incremental;

pub use incremental::{IncrementalView, ViewDelta};

/// Which objects the view exposes: CoreDNS's `kubernetes` filters. `Default` exposes
/// everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewConfig {
    /// CoreDNS `namespaces NAMESPACE...`: only these namespaces are exposed; empty exposes all.
    pub namespaces: BTreeSet<String>,
    /// CoreDNS `labels EXPRESSION`: only Services (and, for `pods verified`, Pods) whose labels
    /// match are exposed; `None` exposes all.
    pub labels: Option<LabelSelector>,
    /// CoreDNS `namespace_labels EXPRESSION`: only namespaces whose Namespace object has
    /// matching labels are exposed (a namespace without a Namespace object is not); `None`
    /// exposes all.
    pub namespace_labels: Option<LabelSelector>,
}

// === impl ViewConfig ===

impl ViewConfig {
    /// Whether the namespace `ns` is exposed (CoreDNS `namespaceExposed`), given the Namespace
    /// objects (all of them, or just the one named `ns`).
    pub(crate) fn namespace_exposed<'a>(
        &self,
        ns: &str,
        mut objects: impl Iterator<Item = &'a Namespace>,
    ) -> bool {
        if !self.namespaces.is_empty() && !self.namespaces.contains(ns) {
            return false;
        }
        match &self.namespace_labels {
            None => true,
            Some(selector) => objects.any(|n| {
                n.metadata.name.as_deref() == Some(ns)
                    && selector.matches(n.metadata.labels.as_ref())
            }),
        }
    }

    /// Whether exposing a namespace depends on its Namespace object (`namespace_labels`).
    pub(crate) fn reads_namespace_objects(&self) -> bool {
        self.namespace_labels.is_some()
    }

    pub(crate) fn labels_match(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.labels.as_ref().is_none_or(|s| s.matches(labels))
    }
}

/// The DNS view of a derived cluster, filtered by `config`.
pub fn cluster_view(derived: &DerivedCluster, config: &ViewConfig) -> ClusterView {
    let mut slices: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in &derived.endpoint_slices {
        let Some(service) = service_name_of(slice) else {
            continue;
        };
        let (namespace, _) = key_of(&slice.metadata);
        slices
            .entry((namespace, service.to_owned()))
            .or_default()
            .push(slice);
    }
    for list in slices.values_mut() {
        list.sort_by_key(|s| s.metadata.name.clone());
    }

    // Every namespace known to exist, before any filter (a Service left out by `labels` does
    // not make its namespace vanish), then only the exposed ones.
    let known: BTreeSet<String> = derived
        .namespaces
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .chain(derived.services.iter().map(|s| key_of(&s.metadata).0))
        .chain(derived.pods.iter().map(|p| key_of(&p.metadata).0))
        .collect();
    let namespaces: BTreeSet<String> = known
        .into_iter()
        .filter(|ns| config.namespace_exposed(ns, derived.namespaces.iter()))
        .collect();

    let mut services: Vec<ServiceView> = derived
        .services
        .iter()
        .filter(|svc| config.labels_match(svc.metadata.labels.as_ref()))
        .filter_map(|svc| {
            let key = key_of(&svc.metadata);
            if !namespaces.contains(&key.0) {
                return None;
            }
            let own = slices.get(&key).map(Vec::as_slice).unwrap_or_default();
            service_view(svc, own)
        })
        .collect();
    services.sort_by(|a, b| a.key.cmp(&b.key));

    let mut pods: Vec<PodView> = derived
        .pods
        .iter()
        .filter(|p| config.labels_match(p.metadata.labels.as_ref()))
        .filter_map(pod_view)
        .filter(|p| namespaces.contains(&p.namespace))
        .collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    ClusterView {
        namespaces: namespaces.into_iter().collect(),
        services,
        pods,
    }
}

/// A pod as CoreDNS's `pods verified` keeps it, or `None`: finished or unknown phase (its list
/// field selector `status.phase!=Succeeded,status.phase!=Failed,status.phase!=Unknown`), being
/// deleted (`toPod` drops pods with a `deletionTimestamp`), or without an IP. CoreDNS keeps
/// only `status.podIP`; we keep every `status.podIPs` entry, so a dual-stack pod's IPv6
/// address is verified too.
pub(crate) fn pod_view(pod: &Pod) -> Option<PodView> {
    let (namespace, name) = key_of(&pod.metadata);
    let status = pod.status.as_ref()?;
    if matches!(
        status.phase.as_deref(),
        Some("Succeeded" | "Failed" | "Unknown")
    ) || pod.metadata.deletion_timestamp.is_some()
    {
        return None;
    }
    let written: Vec<&str> = match status.pod_ips.as_deref() {
        Some(ips) if !ips.is_empty() => ips.iter().map(|ip| ip.ip.as_str()).collect(),
        _ => status.pod_ip.as_deref().into_iter().collect(),
    };
    let mut addresses: Vec<IpAddr> = Vec::new();
    for text in written.into_iter().filter(|ip| !ip.is_empty()) {
        match text.parse::<IpAddr>() {
            Ok(ip) if !addresses.contains(&ip) => addresses.push(ip),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(pod = %format_args!("{namespace}/{name}"), ip = text, "skipping a pod IP that is not an IP");
            }
        }
    }
    if addresses.is_empty() {
        return None;
    }
    Some(PodView {
        namespace,
        name,
        addresses,
    })
}

/// One Service's view; `None` (with a warning) when its spec cannot be used at all.
pub(crate) fn service_view(svc: &Service, slices: &[&EndpointSlice]) -> Option<ServiceView> {
    let (namespace, name) = key_of(&svc.metadata);
    let key = ServiceKey::new(namespace, name);
    let spec = svc.spec.clone().unwrap_or_default();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let Some(external) = spec.external_name.as_deref().filter(|n| !n.is_empty()) else {
            tracing::warn!(service = %key, "skipping an ExternalName Service without spec.externalName");
            return None;
        };
        let external = external.strip_suffix('.').unwrap_or(external);
        if !is_host_name(external) {
            // The API server validates externalName as a DNS-1123 subdomain; a CNAME to
            // anything else (`exa mple.com`, `a..b`, `bad_host.x`) leads resolvers nowhere.
            tracing::warn!(service = %key, external_name = external, "skipping an ExternalName Service whose spec.externalName is not a host name");
            return None;
        }
        ServiceKind::ExternalName {
            external_name: external.to_owned(),
        }
    } else if spec.cluster_ip.as_deref() == Some("None")
        || spec
            .cluster_ips
            .as_ref()
            .and_then(|c| c.first())
            .is_some_and(|c| c == "None")
    {
        ServiceKind::Headless
    } else {
        let written: Vec<String> = match spec.cluster_ips {
            Some(ips) if !ips.is_empty() => ips,
            _ => spec.cluster_ip.into_iter().collect(),
        };
        let cluster_ips = written
            .iter()
            .filter(|ip| !ip.is_empty())
            .filter_map(|ip| match ip.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    tracing::warn!(service = %key, %ip, "skipping a clusterIP that is not an IP");
                    None
                }
            })
            .collect();
        ServiceKind::ClusterIp { cluster_ips }
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| port_view(&key, p.name.as_deref(), p.protocol.as_deref(), Some(p.port)))
        .collect();
    let mut endpoints = Vec::new();
    for slice in slices {
        slice_endpoints(&key, slice, &mut endpoints);
    }
    Some(ServiceView {
        key,
        kind,
        ports,
        endpoints,
    })
}

fn slice_endpoints(key: &ServiceKey, slice: &EndpointSlice, out: &mut Vec<EndpointView>) {
    let slice_name = slice.metadata.name.as_deref().unwrap_or("");
    let want_v4 = match slice.address_type.as_str() {
        "IPv4" => true,
        "IPv6" => false,
        other => {
            tracing::warn!(service = %key, slice = slice_name, address_type = other, "skipping an EndpointSlice whose addressType is not IPv4 or IPv6");
            return;
        }
    };
    let ports: Arc<[PortView]> = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p: &EndpointPort| {
            port_view(key, p.name.as_deref(), p.protocol.as_deref(), p.port)
        })
        .collect();
    for ep in &slice.endpoints {
        let addresses: Vec<IpAddr> = ep
            .addresses
            .iter()
            .filter_map(|a| match a.parse::<IpAddr>() {
                Ok(ip) if ip.is_ipv4() == want_v4 => Some(ip),
                _ => {
                    tracing::warn!(service = %key, slice = slice_name, address = %a, "skipping an address that is not an {} address", slice.address_type);
                    None
                }
            })
            .collect();
        if addresses.is_empty() {
            continue;
        }
        let hostname = ep.hostname.clone().filter(|h| {
            let ok = is_dns_label(h);
            if !ok {
                tracing::warn!(service = %key, slice = slice_name, hostname = %h, "ignoring a hostname that is not a DNS label");
            }
            ok
        });
        let c = ep.conditions.clone().unwrap_or_default();
        let ready = c.ready.unwrap_or(true);
        let conditions = EndpointConditions {
            ready,
            serving: c.serving.unwrap_or(ready),
            terminating: c.terminating.unwrap_or(false),
        };
        out.push(EndpointView {
            addresses,
            hostname,
            conditions,
            ports: Arc::clone(&ports),
            node_name: ep.node_name.clone().filter(|n| !n.is_empty()),
            zone: ep.zone.clone().filter(|z| !z.is_empty()),
            target_pod: ep
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref().is_none_or(|k| k == "Pod"))
                .and_then(|r| r.name.clone()),
        });
    }
}

fn port_view(
    key: &ServiceKey,
    name: Option<&str>,
    protocol: Option<&str>,
    port: Option<i32>,
) -> Option<PortView> {
    let protocol = match protocol.unwrap_or("TCP") {
        "TCP" => Protocol::Tcp,
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        other => {
            tracing::warn!(service = %key, protocol = other, "skipping a port with an unknown protocol");
            return None;
        }
    };
    let Some(port) = port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0) else {
        tracing::warn!(service = %key, ?port, "skipping a port without a valid number");
        return None;
    };
    Some(PortView {
        name: name.filter(|n| !n.is_empty()).map(str::to_owned),
        protocol,
        port,
    })
}

/// A host name as Kubernetes validates `externalName` (a DNS-1123 subdomain, ignoring case as
/// DNS does): at most 253 octets of dot-separated [`is_dns_label`]s.
pub(crate) fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.')
            .all(|label| is_dns_label(&label.to_ascii_lowercase()))
}

/// An RFC 1123 label as Kubernetes validates hostnames: 1–63 of `[a-z0-9-]`, alphanumeric at
/// both ends.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests;
