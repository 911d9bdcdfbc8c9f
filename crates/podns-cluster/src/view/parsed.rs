//! Objects reduced, once, to what a view reads of them.
//!
//! This module is responsible for the parsing and validation half of [`super::cluster_view`]:
//! a Service's spec becomes a [`ParsedService`] (its kind, ports and labels), an EndpointSlice a
//! [`ParsedSlice`] (its endpoints in a compact form), each with a `warn` for what DNS cannot
//! use. A Service's view is then its shell plus the endpoints of its slices, in slice order
//! ([`ParsedSlice::extend_views`]).
//!
//! Why a form of its own: in cluster mode [`super::IncrementalView`] keeps every Service and
//! EndpointSlice for the life of the process. A k8s-openapi `Endpoint` is 352 bytes before its
//! strings (≈ 650 with them, 77 MB for 100k endpoints); a [`CompactEndpoint`] is 44 bytes,
//! with the slice's addresses and strings in one allocation each. Parsing once also means a
//! bad value is logged when the object arrives, not every time its Service is rebuilt.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use podns_view::{
    EndpointConditions, EndpointView, PodView, PortView, Protocol, ServiceKey, ServiceKind,
    ServiceView,
};

use crate::controller::key_of;
use crate::store::service_name_of;

use super::{is_dns_label, is_host_name, pod_view};

/// A Service as its view needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParsedService {
    /// `metadata.labels`, for the `labels` filter.
    pub(crate) labels: Option<BTreeMap<String, String>>,
    /// The view without endpoints; `None` when the spec cannot be used at all (logged).
    pub(crate) shell: Option<ServiceView>,
}

/// A Pod as `pods verified` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParsedPod {
    /// `metadata.labels`, for the `labels` filter.
    pub(crate) labels: Option<BTreeMap<String, String>>,
    /// Its view, when it has one ([`pod_view`]).
    pub(crate) view: Option<PodView>,
}

/// An EndpointSlice as the views of its Service need it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedSlice {
    /// The Service it belongs to: its `kubernetes.io/service-name` label.
    pub(crate) service: Option<Box<str>>,
    ports: Arc<[PortView]>,
    endpoints: Box<[CompactEndpoint]>,
    /// Every endpoint's addresses, back to back.
    addresses: Box<[IpAddr]>,
    /// Every endpoint's strings, back to back.
    text: Box<str>,
}

/// One endpoint of a [`ParsedSlice`]: spans into the slice's addresses and text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CompactEndpoint {
    addresses: Span,
    hostname: Span,
    target_pod: Span,
    node_name: Span,
    zone: Span,
    conditions: EndpointConditions,
}

/// A range of a slice's addresses or text; [`Span::NONE`] for an absent value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u16,
}

impl Span {
    const NONE: Self = Self {
        start: 0,
        len: u16::MAX,
    };

    fn range(self) -> Option<std::ops::Range<usize>> {
        let start = self.start as usize;
        (self != Self::NONE).then(|| start..start + usize::from(self.len))
    }
}

// === impl ParsedService ===

impl ParsedService {
    /// Parses `svc`'s spec, logging what cannot be used.
    pub(crate) fn of(svc: &Service) -> Self {
        Self {
            labels: svc.metadata.labels.clone(),
            shell: shell(svc),
        }
    }
}

/// The Service's view without endpoints: kind and ports.
fn shell(svc: &Service) -> Option<ServiceView> {
    let (namespace, name) = key_of(&svc.metadata);
    let key = ServiceKey::new(namespace, name);
    let spec = svc.spec.as_ref();
    let kind = if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        let Some(external) = spec
            .and_then(|s| s.external_name.as_deref())
            .filter(|n| !n.is_empty())
        else {
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
    } else if spec.and_then(|s| s.cluster_ip.as_deref()) == Some("None")
        || spec
            .and_then(|s| s.cluster_ips.as_ref())
            .and_then(|c| c.first())
            .is_some_and(|c| c == "None")
    {
        ServiceKind::Headless
    } else {
        let written: Vec<&str> = match spec.and_then(|s| s.cluster_ips.as_deref()) {
            Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
            _ => spec
                .and_then(|s| s.cluster_ip.as_deref())
                .into_iter()
                .collect(),
        };
        let cluster_ips = written
            .into_iter()
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
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| port_view(&key, p.name.as_deref(), p.protocol.as_deref(), Some(p.port)))
        .collect();
    Some(ServiceView {
        key,
        kind,
        ports,
        endpoints: Vec::new(),
    })
}

// === impl ParsedPod ===

impl ParsedPod {
    /// What `pods verified` reads of `pod`.
    pub(crate) fn of(pod: &Pod) -> Self {
        Self {
            labels: pod.metadata.labels.clone(),
            view: pod_view(pod),
        }
    }
}

// === impl ParsedSlice ===

impl ParsedSlice {
    /// Parses `slice`'s endpoints, logging (with the Service and slice) what cannot be used. A
    /// slice without a Service keeps no endpoints: no view ever reads them.
    pub(crate) fn of(slice: &EndpointSlice) -> Self {
        let Some(service) = service_name_of(slice) else {
            return Self::default();
        };
        let (namespace, slice_name) = key_of(&slice.metadata);
        let key = ServiceKey::new(namespace, service);
        let mut parsed = Self {
            service: Some(service.into()),
            ..Self::default()
        };
        let want_v4 = match slice.address_type.as_str() {
            "IPv4" => true,
            "IPv6" => false,
            other => {
                tracing::warn!(service = %key, slice = slice_name, address_type = other, "skipping an EndpointSlice whose addressType is not IPv4 or IPv6");
                return parsed;
            }
        };
        parsed.ports = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p: &EndpointPort| {
                port_view(&key, p.name.as_deref(), p.protocol.as_deref(), p.port)
            })
            .collect();
        let mut endpoints = Vec::with_capacity(slice.endpoints.len());
        let mut addresses = Vec::with_capacity(slice.endpoints.len());
        let mut text = String::new();
        for ep in &slice.endpoints {
            let first = addresses.len();
            for a in &ep.addresses {
                match a.parse::<IpAddr>() {
                    // The API allows 100 addresses per endpoint; a span holds far more.
                    Ok(ip)
                        if ip.is_ipv4() == want_v4
                            && addresses.len() - first < usize::from(u16::MAX - 1) =>
                    {
                        addresses.push(ip);
                    }
                    _ => {
                        tracing::warn!(service = %key, slice = slice_name, address = %a, "skipping an address that is not an {} address", slice.address_type);
                    }
                }
            }
            if addresses.len() == first {
                continue;
            }
            let hostname = ep.hostname.as_deref().filter(|h| {
                let ok = is_dns_label(h);
                if !ok {
                    tracing::warn!(service = %key, slice = slice_name, hostname = %h, "ignoring a hostname that is not a DNS label");
                }
                ok
            });
            let target_pod = ep
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref().is_none_or(|k| k == "Pod"))
                .and_then(|r| r.name.as_deref());
            let c = ep.conditions.clone().unwrap_or_default();
            let ready = c.ready.unwrap_or(true);
            let hostname_span = push(&mut text, hostname);
            endpoints.push(CompactEndpoint {
                addresses: Span {
                    start: span_start(first),
                    len: u16::try_from(addresses.len() - first).unwrap_or(u16::MAX - 1),
                },
                hostname: hostname_span,
                // A StatefulSet pod's name is its hostname: one copy serves both.
                target_pod: if target_pod.is_some() && target_pod == hostname {
                    hostname_span
                } else {
                    push(&mut text, target_pod)
                },
                node_name: push(&mut text, ep.node_name.as_deref().filter(|n| !n.is_empty())),
                zone: push(&mut text, ep.zone.as_deref().filter(|z| !z.is_empty())),
                conditions: EndpointConditions {
                    ready,
                    serving: c.serving.unwrap_or(ready),
                    terminating: c.terminating.unwrap_or(false),
                },
            });
        }
        parsed.endpoints = endpoints.into_boxed_slice();
        parsed.addresses = addresses.into_boxed_slice();
        parsed.text = text.into_boxed_str();
        parsed
    }

    /// How many endpoints the slice gives its Service.
    pub(crate) fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Appends the slice's endpoints to a Service's view.
    pub(crate) fn extend_views(&self, out: &mut Vec<EndpointView>) {
        // Spans were made by `of` over these very buffers; `get` keeps a wrong one from
        // panicking all the same.
        let owned = |span: Span| {
            span.range()
                .and_then(|r| self.text.get(r))
                .map(str::to_owned)
        };
        out.extend(self.endpoints.iter().map(|ep| {
            let addresses = ep.addresses.range().and_then(|r| self.addresses.get(r));
            EndpointView {
                addresses: addresses.unwrap_or_default().to_vec(),
                hostname: owned(ep.hostname),
                conditions: ep.conditions,
                ports: Arc::clone(&self.ports),
                node_name: owned(ep.node_name),
                zone: owned(ep.zone),
                target_pod: owned(ep.target_pod),
            }
        }));
    }
}

/// Appends `value` to `text`; its span (or [`Span::NONE`]). Values longer than a span holds
/// (no valid Kubernetes name is) are dropped.
fn push(text: &mut String, value: Option<&str>) -> Span {
    let Some(value) = value else {
        return Span::NONE;
    };
    let Ok(len) = u16::try_from(value.len()) else {
        return Span::NONE;
    };
    if len == u16::MAX {
        return Span::NONE;
    }
    let start = span_start(text.len());
    text.push_str(value);
    Span { start, len }
}

/// A span's start; a slice holds at most 1,000 endpoints of bounded size, far below `u32`.
fn span_start(offset: usize) -> u32 {
    u32::try_from(offset).unwrap_or(u32::MAX)
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::{self as discovery, Endpoint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::store::SERVICE_NAME_LABEL;

    fn endpoint(addresses: &[&str], hostname: Option<&str>, pod: Option<&str>) -> Endpoint {
        Endpoint {
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            hostname: hostname.map(str::to_owned),
            target_ref: pod.map(|name| ObjectReference {
                kind: Some("Pod".to_owned()),
                name: Some(name.to_owned()),
                ..ObjectReference::default()
            }),
            ..Endpoint::default()
        }
    }

    fn slice(address_type: &str, endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some("shop".to_owned()),
                name: Some("api-x1".to_owned()),
                labels: Some([(SERVICE_NAME_LABEL.to_owned(), "api".to_owned())].into()),
                ..ObjectMeta::default()
            },
            address_type: address_type.to_owned(),
            endpoints,
            ports: Some(vec![EndpointPort {
                name: Some("http".to_owned()),
                port: Some(8080),
                ..EndpointPort::default()
            }]),
        }
    }

    fn views(slice: &EndpointSlice) -> Vec<EndpointView> {
        let mut out = Vec::new();
        ParsedSlice::of(slice).extend_views(&mut out);
        out
    }

    #[test]
    fn endpoints_come_back_as_they_were_written() {
        let mut full = endpoint(&["10.0.0.1", "10.0.0.2"], Some("web-0"), Some("web-0"));
        full.node_name = Some("node-a".to_owned());
        full.zone = Some("eu-1".to_owned());
        full.conditions = Some(discovery::EndpointConditions {
            ready: Some(false),
            serving: Some(true),
            terminating: Some(true),
        });
        let other_pod = endpoint(&["10.0.0.3"], Some("db"), Some("db-7f9c4-abcde"));
        let bare = endpoint(&["10.0.0.4"], None, None);
        let out = views(&slice("IPv4", vec![full, other_pod, bare]));
        let ports: Arc<[PortView]> = [PortView {
            name: Some("http".to_owned()),
            protocol: Protocol::Tcp,
            port: 8080,
        }]
        .into();
        let view = |addresses: &[&str], hostname: Option<&str>, pod: Option<&str>| EndpointView {
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            hostname: hostname.map(str::to_owned),
            conditions: EndpointConditions::READY,
            ports: Arc::clone(&ports),
            node_name: None,
            zone: None,
            target_pod: pod.map(str::to_owned),
        };
        let mut first = view(&["10.0.0.1", "10.0.0.2"], Some("web-0"), Some("web-0"));
        first.node_name = Some("node-a".to_owned());
        first.zone = Some("eu-1".to_owned());
        first.conditions = EndpointConditions {
            ready: false,
            serving: true,
            terminating: true,
        };
        assert_eq!(
            out,
            [
                first,
                view(&["10.0.0.3"], Some("db"), Some("db-7f9c4-abcde")),
                view(&["10.0.0.4"], None, None),
            ]
        );
        assert!(
            Arc::ptr_eq(&out[0].ports, &out[2].ports),
            "one port list per slice"
        );
    }

    #[test]
    fn what_dns_cannot_use_is_left_out() {
        let out = views(&slice(
            "IPv4",
            vec![
                endpoint(&["10.0.0.999", "fd00::1", "10.0.0.5"], Some("Web_1"), None),
                endpoint(&["not-an-ip"], Some("gone"), None),
            ],
        ));
        assert_eq!(
            out.len(),
            1,
            "an endpoint without a usable address is skipped"
        );
        assert_eq!(out[0].addresses, ["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(out[0].hostname, None, "not a DNS label");

        assert!(views(&slice("FQDN", vec![endpoint(&["a.example"], None, None)])).is_empty());
        let mut unowned = slice("IPv4", vec![endpoint(&["10.0.0.1"], None, None)]);
        unowned.metadata.labels = None;
        assert_eq!(ParsedSlice::of(&unowned), ParsedSlice::default());
    }

    #[test]
    fn a_compact_endpoint_is_small() {
        assert!(
            size_of::<CompactEndpoint>() <= 44,
            "{}",
            size_of::<CompactEndpoint>()
        );
    }
}
