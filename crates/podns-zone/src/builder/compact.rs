//! A Service as the builder keeps it: only what its records are made from, packed.
//!
//! A [`ServiceView`] spends ~150 bytes and three to five allocations per endpoint (addresses,
//! hostname, node, zone, pod name, a shared ports `Arc`); the builder needs the endpoint's
//! addresses, label inputs and ports only, and needs them only to recompute the Service's
//! records when it changes. [`Compact`] keeps the DNS-relevant endpoint fields of one
//! Service in one byte string (~25 bytes per endpoint), and compares against an incoming view
//! by encoding it into a reused buffer: an unchanged Service costs no allocation.
//!
//! Encoding of one endpoint (only ready endpoints with addresses, as spec §2.4.1 publishes):
//! `count` then per address `4 + octets` or `6 + octets`; hostname and pod name each as
//! `0` (none) or `len + 1` then the bytes; ports as `0` (same as the previous endpoint's) or
//! `count + 1` then per port the name (as above), the protocol and the number (LE). Counts
//! and lengths are LEB128.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use podns_view::{
    EndpointConditions, EndpointView, PortView, Protocol, ServiceKey, ServiceKind, ServiceView,
};

use super::direct;
use crate::ZoneConfig;

/// A Service reduced to what DNS reads, endpoints packed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Compact {
    kind: ServiceKind,
    ports: Box<[PortView]>,
    endpoints: Box<[u8]>,
}

// === impl Compact ===

impl Compact {
    /// Packs `svc` into `scratch` (cleared first), for [`Compact::same_as_packed`] and
    /// [`Compact::from_packed`]: an update packs the incoming Service once for both.
    pub(super) fn pack(config: &ZoneConfig, svc: &ServiceView, scratch: &mut Vec<u8>) {
        encode_endpoints(config, svc, scratch);
    }

    /// Whether `svc`, whose endpoints [`Compact::pack`] left in `packed`, packs to this.
    pub(super) fn same_as_packed(&self, svc: &ServiceView, packed: &[u8]) -> bool {
        self.kind == svc.kind && *self.ports == *svc.ports && *self.endpoints == *packed
    }

    /// The Service `svc`, whose endpoints [`Compact::pack`] left in `packed`.
    pub(super) fn from_packed(svc: &ServiceView, packed: &[u8]) -> Self {
        Self {
            kind: svc.kind.clone(),
            ports: svc.ports.as_slice().into(),
            endpoints: packed.into(),
        }
    }

    /// Whether `svc` packs to this (so its records are the same); allocation-free once
    /// `scratch` has grown to the size of one Service.
    pub(super) fn same_as(
        &self,
        config: &ZoneConfig,
        svc: &ServiceView,
        scratch: &mut Vec<u8>,
    ) -> bool {
        if self.kind != svc.kind || *self.ports != *svc.ports {
            return false;
        }
        encode_endpoints(config, svc, scratch);
        *self.endpoints == **scratch
    }

    /// The Service view the records are computed from (ready endpoints only, without the
    /// fields DNS does not read).
    pub(super) fn view(&self, key: &ServiceKey) -> ServiceView {
        ServiceView {
            key: key.clone(),
            kind: self.kind.clone(),
            ports: self.ports.to_vec(),
            endpoints: decode_endpoints(&self.endpoints),
        }
    }

    /// The PTRs of a headless Service the direct path (`direct.rs`) covers, read without
    /// unpacking the endpoints: calls `each` with every address of an endpoint that has a
    /// label of its own (hostname, or pod name under `endpoint_pod_names`) and that label, in
    /// endpoint order (spec §2.4.3). `false` (partway) when the path does not cover this
    /// Service, by the checks of `Direct::plan` (`root_len`: its longest name's wire length).
    pub(super) fn direct_ptrs(
        &self,
        config: &ZoneConfig,
        root_len: usize,
        mut each: impl FnMut(IpAddr, &[u8]),
    ) -> bool {
        if self.kind != ServiceKind::Headless
            || config.no_endpoints
            || !direct::ports_ok(&self.ports, root_len)
        {
            return false;
        }
        let max_label = direct::max_label(root_len);
        let mut r = Reader {
            bytes: &self.endpoints,
            at: 0,
        };
        while r.at < self.endpoints.len() {
            let count = r.varint();
            let addresses = r.at;
            for _ in 0..count {
                let n = if r.byte() == 4 { 4 } else { 16 };
                r.take(n);
            }
            let hostname = r.optional_bytes();
            let pod = r.optional_bytes();
            match r.varint() {
                0 => {}
                n => {
                    for _ in 1..n {
                        r.optional_bytes();
                        r.byte();
                        r.take(2);
                    }
                }
            }
            let label = hostname.or_else(|| {
                pod.filter(|p| {
                    config.endpoint_pod_names
                        && std::str::from_utf8(p).is_ok_and(crate::names::is_dns_label)
                })
            });
            if label.is_some_and(|l| !direct::own_label_ok(l, max_label)) {
                return false;
            }
            let mut a = Reader {
                bytes: &self.endpoints,
                at: addresses,
            };
            for _ in 0..count {
                let ip = match a.byte() {
                    4 => IpAddr::V4(Ipv4Addr::from(
                        <[u8; 4]>::try_from(a.take(4)).expect("4 octets"),
                    )),
                    _ => IpAddr::V6(Ipv6Addr::from(
                        <[u8; 16]>::try_from(a.take(16)).expect("16 octets"),
                    )),
                };
                match label {
                    Some(label) => each(ip, label),
                    None if !direct::dashed_ok(ip, max_label) => return false,
                    None => {}
                }
            }
        }
        true
    }

    /// Heap bytes held.
    pub(super) fn heap_size(&self) -> usize {
        let kind = match &self.kind {
            ServiceKind::ClusterIp { cluster_ips } => cluster_ips.capacity() * size_of::<IpAddr>(),
            ServiceKind::Headless => 0,
            ServiceKind::ExternalName { external_name } => external_name.capacity(),
        };
        let ports: usize = self
            .ports
            .iter()
            .map(|p| size_of::<PortView>() + p.name.as_ref().map_or(0, String::capacity))
            .sum();
        kind + ports + self.endpoints.len()
    }
}

/// Writes the packed endpoints of `svc` into `out` (cleared first).
fn encode_endpoints(config: &ZoneConfig, svc: &ServiceView, out: &mut Vec<u8>) {
    out.clear();
    // Only headless Services read endpoints, and `noendpoints` reads none.
    if svc.kind != ServiceKind::Headless || config.no_endpoints {
        return;
    }
    let mut previous: Option<&Arc<[PortView]>> = None;
    for ep in svc
        .endpoints
        .iter()
        .filter(|ep| ep.conditions.ready && !ep.addresses.is_empty())
    {
        varint(out, ep.addresses.len());
        for ip in &ep.addresses {
            match ip {
                IpAddr::V4(v4) => {
                    out.push(4);
                    out.extend_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    out.push(6);
                    out.extend_from_slice(&v6.octets());
                }
            }
        }
        optional(out, ep.hostname.as_deref());
        // The pod name is read only as the label of an endpoint without a hostname.
        let pod = ep
            .target_pod
            .as_deref()
            .filter(|_| config.endpoint_pod_names && ep.hostname.is_none());
        optional(out, pod);
        if previous.is_some_and(|p| Arc::ptr_eq(p, &ep.ports) || **p == *ep.ports) {
            out.push(0);
        } else {
            varint(out, ep.ports.len() + 1);
            for port in ep.ports.iter() {
                optional(out, port.name.as_deref());
                out.push(match port.protocol {
                    Protocol::Tcp => 0,
                    Protocol::Udp => 1,
                    Protocol::Sctp => 2,
                });
                out.extend_from_slice(&port.port.to_le_bytes());
            }
        }
        previous = Some(&ep.ports);
    }
}

fn varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn optional(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            varint(out, s.len() + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Reads what [`encode_endpoints`] wrote.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes[self.at];
        self.at += 1;
        b
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        s
    }

    fn varint(&mut self) -> usize {
        let mut n = 0usize;
        let mut shift = 0;
        loop {
            let b = self.byte();
            n |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return n;
            }
            shift += 7;
        }
    }

    fn optional_bytes(&mut self) -> Option<&'a [u8]> {
        match self.varint() {
            0 => None,
            n => {
                let s = &self.bytes[self.at..self.at + n - 1];
                self.at += n - 1;
                Some(s)
            }
        }
    }

    fn optional(&mut self) -> Option<String> {
        match self.varint() {
            0 => None,
            n => Some(String::from_utf8(self.take(n - 1).to_vec()).expect("written from a str")),
        }
    }
}

fn decode_endpoints(bytes: &[u8]) -> Vec<EndpointView> {
    let mut r = Reader { bytes, at: 0 };
    let mut out = Vec::new();
    let mut ports: Arc<[PortView]> = Arc::new([]);
    while r.at < bytes.len() {
        let count = r.varint();
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            addresses.push(match r.byte() {
                4 => {
                    let o: [u8; 4] = r.take(4).try_into().expect("4 octets");
                    IpAddr::V4(Ipv4Addr::from(o))
                }
                _ => {
                    let o: [u8; 16] = r.take(16).try_into().expect("16 octets");
                    IpAddr::V6(Ipv6Addr::from(o))
                }
            });
        }
        let hostname = r.optional();
        let target_pod = r.optional();
        match r.varint() {
            0 => {}
            n => {
                let mut list = Vec::with_capacity(n - 1);
                for _ in 1..n {
                    let name = r.optional();
                    let protocol = match r.byte() {
                        0 => Protocol::Tcp,
                        1 => Protocol::Udp,
                        _ => Protocol::Sctp,
                    };
                    let port = u16::from_le_bytes(r.take(2).try_into().expect("2 octets"));
                    list.push(PortView {
                        name,
                        protocol,
                        port,
                    });
                }
                ports = list.into();
            }
        }
        out.push(EndpointView {
            addresses,
            hostname,
            conditions: EndpointConditions::READY,
            ports: ports.clone(),
            node_name: None,
            zone: None,
            target_pod,
        });
    }
    out
}
