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
//! strings (≈ 650 with them, 77 MB for 100k endpoints); in a [`ParsedSlice`] it is its bytes
//! (flags, its octets, its strings with a 2-byte length each: 14 for a StatefulSet pod's
//! IPv4 endpoint besides the name), all of a slice's endpoints in one allocation. Parsing once also means a
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
    pub(crate) labels: Labels,
    /// What the view is made of besides its key and endpoints; `None` when the spec cannot be
    /// used at all (logged).
    shell: Option<Box<Shell>>,
}

/// A Service's kind and ports: its view without key and endpoints. Boxed in
/// [`ParsedService`], so a Service whose spec is unusable costs a pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shell {
    kind: ServiceKind,
    ports: Box<[PortView]>,
}

/// A Pod as `pods verified` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParsedPod {
    /// `metadata.labels`, for the `labels` filter.
    pub(crate) labels: Labels,
    /// Its view, when it has one ([`pod_view`]).
    pub(crate) view: Option<PodView>,
}

/// An object's labels in one allocation: `key len, key, value len, value` per label (lengths
/// as `u32` LE), in key order. A `BTreeMap<String, String>` spends a 540-byte node on the one
/// or two labels a Service usually has (5 MB at 10k Services); this spends their bytes and 8
/// per label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Labels(Box<[u8]>);

/// An EndpointSlice as the views of its Service need it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedSlice {
    /// The Service it belongs to: its `kubernetes.io/service-name` label.
    pub(crate) service: Option<Box<str>>,
    ports: Arc<[PortView]>,
    /// How many endpoints `packed` holds.
    count: u32,
    /// Whether the addresses are IPv4 (4 octets each) or IPv6 (16).
    v4: bool,
    /// The endpoints, back to back, each as: a flags byte ([`Flags`]), the address count
    /// (`u16` LE) and the addresses' octets, then each present string of hostname, pod name,
    /// node name and zone in that order as a length (`u16` LE) and its bytes (a pod name
    /// equal to the hostname, a StatefulSet's, is not repeated).
    packed: Box<[u8]>,
}

/// Bits of an endpoint's flags byte in [`ParsedSlice::packed`].
struct Flags;

impl Flags {
    const READY: u8 = 1;
    const SERVING: u8 = 1 << 1;
    const TERMINATING: u8 = 1 << 2;
    const HOSTNAME: u8 = 1 << 3;
    const TARGET_POD: u8 = 1 << 4;
    /// The pod name is the hostname (stored once).
    const POD_IS_HOSTNAME: u8 = 1 << 5;
    const NODE_NAME: u8 = 1 << 6;
    const ZONE: u8 = 1 << 7;
}

// === impl ParsedService ===

impl ParsedService {
    /// Parses `svc`'s spec, logging what cannot be used.
    pub(crate) fn of(svc: &Service) -> Self {
        Self {
            labels: Labels::of(svc.metadata.labels.as_ref()),
            shell: shell(svc).map(Box::new),
        }
    }

    /// Whether the Service has a view: [`Self::view`] is `Some`.
    pub(crate) fn has_view(&self) -> bool {
        self.shell.is_some()
    }

    /// The Service's view without endpoints (`key` is the Service's own); `None` when its
    /// spec cannot be used.
    pub(crate) fn view(&self, key: &ServiceKey) -> Option<ServiceView> {
        let shell = self.shell.as_deref()?;
        Some(ServiceView {
            key: key.clone(),
            kind: shell.kind.clone(),
            ports: shell.ports.to_vec(),
            endpoints: Vec::new(),
        })
    }
}

/// The Service's kind and ports.
fn shell(svc: &Service) -> Option<Shell> {
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
    Some(Shell { kind, ports })
}

// === impl ParsedPod ===

impl ParsedPod {
    /// What `pods verified` reads of `pod`.
    pub(crate) fn of(pod: &Pod) -> Self {
        Self {
            labels: Labels::of(pod.metadata.labels.as_ref()),
            view: pod_view(pod),
        }
    }
}

// === impl Labels ===

impl Labels {
    pub(crate) fn of(labels: Option<&BTreeMap<String, String>>) -> Self {
        let mut packed = Vec::new();
        for (key, value) in labels.into_iter().flatten() {
            for text in [key, value] {
                packed.extend_from_slice(&len_u32(text.len()).to_le_bytes());
                packed.extend_from_slice(text.as_bytes());
            }
        }
        Self(packed.into_boxed_slice())
    }

    /// The labels as the map they were packed from.
    pub(crate) fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        let mut rest = &*self.0;
        while let Some((k, after)) = take_str(rest)
            && let Some((v, after)) = take_str(after)
        {
            map.insert(k.to_owned(), v.to_owned());
            rest = after;
        }
        map
    }

    /// The value of label `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        let mut rest = &*self.0;
        while !rest.is_empty() {
            let (k, after) = take_str(rest)?;
            let (v, after) = take_str(after)?;
            if k == key {
                return Some(v);
            }
            rest = after;
        }
        None
    }
}

/// A length as stored; no label (≤ 63 + 253 octets) comes near `u32::MAX`.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// One `u32`-length-prefixed string of `bytes`, and what follows it.
fn take_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    let (text, rest) = (rest.get(..len)?, rest.get(len..)?);
    Some((std::str::from_utf8(text).ok()?, rest))
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
        parsed.v4 = want_v4;
        let mut packed = Vec::new();
        let mut addresses: Vec<IpAddr> = Vec::new();
        for ep in &slice.endpoints {
            addresses.clear();
            for a in &ep.addresses {
                match a.parse::<IpAddr>() {
                    // The API allows 100 addresses per endpoint; the count holds far more.
                    Ok(ip)
                        if ip.is_ipv4() == want_v4 && addresses.len() < usize::from(u16::MAX) =>
                    {
                        addresses.push(ip);
                    }
                    _ => {
                        tracing::warn!(service = %key, slice = slice_name, address = %a, "skipping an address that is not an {} address", slice.address_type);
                    }
                }
            }
            if addresses.is_empty() {
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
            // Strings no valid Kubernetes name comes near are dropped, not cut.
            let fits = |s: &&str| s.len() <= usize::from(u16::MAX);
            let hostname = hostname.filter(fits);
            let target_pod = target_pod.filter(fits);
            let node_name = ep
                .node_name
                .as_deref()
                .filter(|n| !n.is_empty())
                .filter(fits);
            let zone = ep.zone.as_deref().filter(|z| !z.is_empty()).filter(fits);
            let c = ep.conditions.clone().unwrap_or_default();
            let ready = c.ready.unwrap_or(true);
            let pod_is_hostname = target_pod.is_some() && target_pod == hostname;
            let flags = [
                (ready, Flags::READY),
                (c.serving.unwrap_or(ready), Flags::SERVING),
                (c.terminating.unwrap_or(false), Flags::TERMINATING),
                (hostname.is_some(), Flags::HOSTNAME),
                (target_pod.is_some(), Flags::TARGET_POD),
                (pod_is_hostname, Flags::POD_IS_HOSTNAME),
                (node_name.is_some(), Flags::NODE_NAME),
                (zone.is_some(), Flags::ZONE),
            ]
            .into_iter()
            .filter(|(set, _)| *set)
            .fold(0, |flags, (_, bit)| flags | bit);
            packed.push(flags);
            packed.extend_from_slice(&len_u16(addresses.len()).to_le_bytes());
            for ip in &addresses {
                match ip {
                    IpAddr::V4(v4) => packed.extend_from_slice(&v4.octets()),
                    IpAddr::V6(v6) => packed.extend_from_slice(&v6.octets()),
                }
            }
            let pod = if pod_is_hostname { None } else { target_pod };
            for text in [hostname, pod, node_name, zone].into_iter().flatten() {
                packed.extend_from_slice(&len_u16(text.len()).to_le_bytes());
                packed.extend_from_slice(text.as_bytes());
            }
            parsed.count += 1;
        }
        parsed.packed = packed.into_boxed_slice();
        parsed
    }

    /// How many endpoints the slice gives its Service.
    pub(crate) fn endpoint_count(&self) -> usize {
        self.count as usize
    }

    /// Appends the slice's endpoints to a Service's view.
    pub(crate) fn extend_views(&self, out: &mut Vec<EndpointView>) {
        out.reserve(self.endpoint_count());
        let mut rest = &*self.packed;
        // `packed` was written by `of`; a truncated one (never made) ends the list early
        // instead of panicking.
        while let Some((endpoint, after)) = self.take_endpoint(rest) {
            out.push(endpoint);
            rest = after;
        }
    }

    /// The endpoint at the start of `bytes`, and what follows it.
    fn take_endpoint<'a>(&self, bytes: &'a [u8]) -> Option<(EndpointView, &'a [u8])> {
        let (&flags, rest) = bytes.split_first()?;
        let (count, mut rest) = take_u16(rest)?;
        let width = if self.v4 { 4 } else { 16 };
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let (octets, after) = (rest.get(..width)?, rest.get(width..)?);
            addresses.push(match <[u8; 4]>::try_from(octets) {
                Ok(v4) => IpAddr::from(v4),
                Err(_) => IpAddr::from(<[u8; 16]>::try_from(octets).ok()?),
            });
            rest = after;
        }
        let mut text = |bit: u8| -> Option<Option<String>> {
            if flags & bit == 0 {
                return Some(None);
            }
            let (len, after) = take_u16(rest)?;
            let value = std::str::from_utf8(after.get(..len)?).ok()?;
            rest = after.get(len..)?;
            Some(Some(value.to_owned()))
        };
        let hostname = text(Flags::HOSTNAME)?;
        let target_pod = if flags & Flags::POD_IS_HOSTNAME != 0 {
            hostname.clone()
        } else {
            text(Flags::TARGET_POD)?
        };
        let node_name = text(Flags::NODE_NAME)?;
        let zone = text(Flags::ZONE)?;
        let endpoint = EndpointView {
            addresses,
            hostname,
            conditions: EndpointConditions {
                ready: flags & Flags::READY != 0,
                serving: flags & Flags::SERVING != 0,
                terminating: flags & Flags::TERMINATING != 0,
            },
            ports: Arc::clone(&self.ports),
            node_name,
            zone,
            target_pod,
        };
        Some((endpoint, rest))
    }
}

/// A count or string length as stored (checked by the caller to fit).
fn len_u16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// A `u16` LE at the start of `bytes`, and what follows it.
fn take_u16(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (value, rest) = bytes.split_first_chunk::<2>()?;
    Some((usize::from(u16::from_le_bytes(*value)), rest))
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
    fn a_stateful_set_endpoint_packs_into_its_bytes() {
        // flags, count, 4 octets, and "web-0" once for hostname and pod name.
        let parsed = ParsedSlice::of(&slice(
            "IPv4",
            vec![endpoint(&["10.0.0.1"], Some("web-0"), Some("web-0"))],
        ));
        assert_eq!(parsed.packed.len(), 1 + 2 + 4 + 2 + 5);
        let mut v6 = endpoint(&["fd00::1"], None, Some("db-7f9c4-abcde"));
        v6.zone = Some("eu-1".to_owned());
        let parsed = ParsedSlice::of(&slice("IPv6", vec![v6]));
        assert_eq!(parsed.packed.len(), 1 + 2 + 16 + 2 + 14 + 2 + 4);
        let mut out = Vec::new();
        parsed.extend_views(&mut out);
        assert_eq!(out[0].zone.as_deref(), Some("eu-1"));
        assert_eq!(out[0].addresses, ["fd00::1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn labels_are_found_by_key() {
        let map: BTreeMap<String, String> = [("app", "web"), ("tier", ""), ("a/b.c", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let labels = Labels::of(Some(&map));
        for (k, v) in &map {
            assert_eq!(labels.get(k), Some(v.as_str()));
        }
        assert_eq!(labels.get("ap"), None);
        assert_eq!(labels.get("web"), None, "a value is not a key");
        assert_eq!(Labels::of(None), Labels::of(Some(&BTreeMap::new())));
        assert_eq!(Labels::of(None).get("app"), None);
    }
}
