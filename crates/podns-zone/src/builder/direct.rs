//! A headless Service's private names (`builder.rs`, "Fragments") encoded straight from its
//! view, without building its RRsets first; and its PTRs as sorted `(address, label)` lists
//! ([`Ptrs`]), which `builder.rs` diffs against the previous version's to update its shared
//! names.
//!
//! The general path makes every record an [`RData`](crate::records::RData), every owner a
//! `Name` in a map, deduplicates RRsets through hash tables, and only then encodes each name:
//! for a 1,000-endpoint Service that intermediate form was most of an update's cost. Here the
//! view is read once into flat lists (hosts by label, addresses, SRV records as `(port, host)`
//! pairs) and each name's node is written from them, once per cluster zone.
//!
//! The rules are `records.rs`'s (headless: §2.4.1, §2.4.2; CoreDNS `endpointHostname`), and the
//! bytes are what `Ctx::encode` would prepare from those records; the equivalence property
//! tests (`builder/tests.rs`) compare both. A Service this path does not cover (not headless,
//! `noendpoints`, a name over the limits, a label that could meet a `_<proto>` name, two ports
//! spelling one SRV owner) is left to the general path: [`Direct::plan`] says so.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::net::IpAddr;

use hashbrown::HashTable;
use podns_view::{PortView, ServiceKind, ServiceView};

use crate::ZoneConfig;
use crate::answer::{Preparing, write_tail_with};
use crate::names::{self, MAX_LABEL_LEN, MAX_NAME_LEN, Name};
use crate::records::RType;
use crate::snapshot::{FxHasher, NodeBatch, NodeBuf, write_link};

/// One Service read for encoding; buffers are kept across updates (the builder owns one).
#[derive(Debug, Default)]
pub(super) struct Direct {
    /// Host labels (lower case), back to back.
    labels: Vec<u8>,
    /// Per host: its label in `labels`, and its addresses in `addresses` (after grouping).
    hosts: Vec<Host>,
    /// Host index by label.
    by_label: HashTable<u32>,
    /// `(host, address)` in the order the records are made; grouped by host into `addresses`.
    pairs: Vec<(u32, IpAddr)>,
    addresses: Vec<IpAddr>,
    /// The Service name's addresses, unique, in endpoint order, split by family.
    name_v4: Vec<[u8; 4]>,
    name_v6: Vec<[u8; 16]>,
    seen_ip: MixedSet<IpAddr>,
    /// Per ready endpoint (index into the view's endpoints), its SRV targets in `targets`.
    ready: Vec<(u32, u32, u32)>,
    targets: Vec<u32>,
    /// SRV RRsets: one per named port with records, then the Service name's (last).
    srvs: Vec<Srv>,
    /// Their records, `(port, host)`, unique per RRset, back to back.
    srv_records: Vec<(u16, u32)>,
    seen_srv: MixedSet<(u16, u32)>,
    /// Reused while encoding: one answer's records and bounds, the answers of one name, its
    /// type table, the name being written, the port answer a link is checked against.
    bytes: Vec<u8>,
    bounds: Vec<u16>,
    body: Vec<u8>,
    types: Vec<(u16, usize, usize)>,
    blob: Vec<u8>,
    wire: Vec<u8>,
    /// The planned Service's PTRs (shared names, `builder.rs` diffs them against `old_ptrs`,
    /// the previous version's).
    pub(super) ptrs: Ptrs,
    pub(super) old_ptrs: Ptrs,
    /// Per host, the epoch of the answer that last listed its addresses as additional.
    listed: Vec<u32>,
    epoch: u32,
    ttl: u32,
}

#[derive(Debug, Clone, Copy)]
struct Host {
    label: (u32, u8),
    /// `addresses[start..end]`: IPv4 first then IPv6 after grouping (`v6` is where they start).
    start: u32,
    v6: u32,
    end: u32,
}

#[derive(Debug)]
struct Srv {
    /// `_<port>` and `_<proto>`; empty for the Service name's own set.
    port_label: Vec<u8>,
    proto_label: &'static str,
    weight: u16,
    records: (u32, u32),
}

// === impl Direct ===

impl Direct {
    /// Reads `svc` for [`Direct::encode`]; `false` when this path does not cover it (nothing
    /// is read then). `root_len` is the longest wire length of the Service's name among the
    /// cluster zones.
    pub(super) fn plan(&mut self, config: &ZoneConfig, svc: &ServiceView, root_len: usize) -> bool {
        if svc.kind != ServiceKind::Headless
            || config.no_endpoints
            || !ports_ok(&svc.ports, root_len)
        {
            return false;
        }
        self.ttl = config.ttl;
        self.labels.clear();
        self.hosts.clear();
        self.by_label.clear();
        self.pairs.clear();
        self.addresses.clear();
        self.name_v4.clear();
        self.name_v6.clear();
        self.seen_ip.clear();
        self.ready.clear();
        self.targets.clear();
        self.srvs.clear();
        self.srv_records.clear();
        self.ptrs.clear();
        let max_label = max_label(root_len);
        for (i, ep) in svc.endpoints.iter().enumerate() {
            if !ep.conditions.ready || ep.addresses.is_empty() {
                continue;
            }
            for ip in &ep.addresses {
                if self.seen_ip.insert(*ip) {
                    match ip {
                        IpAddr::V4(v4) => self.name_v4.push(v4.octets()),
                        IpAddr::V6(v6) => self.name_v6.push(v6.octets()),
                    }
                }
            }
            let start = self.targets.len() as u32;
            let own_label = ep.hostname.as_deref().or_else(|| {
                ep.target_pod
                    .as_deref()
                    .filter(|pod| config.endpoint_pod_names && names::is_dns_label(pod))
            });
            match own_label {
                Some(label) => {
                    if !own_label_ok(label.as_bytes(), max_label) {
                        return false;
                    }
                    let host = self.host(label.as_bytes());
                    for ip in &ep.addresses {
                        self.pairs.push((host, *ip));
                        // §2.4.3: a PTR per address of an endpoint with a label of its own.
                        self.ptrs.push(*ip, label.as_bytes());
                    }
                    self.targets.push(host);
                }
                None => {
                    for ip in &ep.addresses {
                        let mut buf = [0u8; 64];
                        let len = dashed(*ip, &mut buf);
                        if len > max_label {
                            return false;
                        }
                        let host = self.host(&buf[..len]);
                        self.pairs.push((host, *ip));
                        self.targets.push(host);
                    }
                }
            }
            self.ready
                .push((i as u32, start, self.targets.len() as u32));
        }
        self.group_addresses();
        self.ptrs.finish();
        // SRV: one RRset per named port, then the Service name's with every port's records.
        let mut all: Vec<(u16, u32)> = Vec::new();
        for port in &svc.ports {
            let Some(port_name) = &port.name else {
                continue;
            };
            let proto_label = port.protocol.srv_label();
            let port_label: Vec<u8> = std::iter::once(b'_')
                .chain(port_name.bytes().map(|b| b.to_ascii_lowercase()))
                .collect();
            let from = all.len();
            for &(i, start, end) in &self.ready {
                let ep = &svc.endpoints[i as usize];
                let Some(ep_port) = ep
                    .ports
                    .iter()
                    .find(|p| p.protocol == port.protocol && p.name.as_deref() == Some(port_name))
                    .map(|p| p.port)
                else {
                    continue;
                };
                for &host in &self.targets[start as usize..end as usize] {
                    all.push((ep_port, host));
                }
            }
            if all.len() == from {
                // No records, no RRset (and no owner name).
                continue;
            }
            let records = self.unique_srvs(&all[from..]);
            self.srvs.push(Srv {
                port_label,
                proto_label,
                weight: srv_weight(all.len() - from),
                records,
            });
        }
        if !all.is_empty() {
            let records = self.unique_srvs(&all);
            self.srvs.push(Srv {
                port_label: Vec::new(),
                proto_label: "",
                weight: srv_weight(all.len()),
                records,
            });
        }
        true
    }

    /// The host of `label` (lower-cased here), added if new.
    fn host(&mut self, label: &[u8]) -> u32 {
        // Callers checked the label's length (at most 63).
        let mut lower = [0u8; MAX_LABEL_LEN];
        let lower = &mut lower[..label.len()];
        for (to, from) in lower.iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        let lower = &*lower;
        let hash = hash_label(lower);
        let Self {
            labels,
            hosts,
            by_label,
            ..
        } = self;
        let label_of = |h: &Host| &labels[h.label.0 as usize..][..h.label.1 as usize];
        if let Some(&h) = by_label.find(hash, |&h| label_of(&hosts[h as usize]) == lower) {
            return h;
        }
        let h = hosts.len() as u32;
        hosts.push(Host {
            label: (labels.len() as u32, lower.len() as u8),
            start: 0,
            v6: 0,
            end: 0,
        });
        labels.extend_from_slice(lower);
        let hosts = &*hosts;
        by_label.insert_unique(hash, h, |&h| {
            hash_label(
                &labels[hosts[h as usize].label.0 as usize..][..hosts[h as usize].label.1 as usize],
            )
        });
        h
    }

    /// Files `pairs` by host into `addresses`: per host its unique IPv4 then IPv6 addresses,
    /// each family in the order they came.
    fn group_addresses(&mut self) {
        let mut count = vec![0u32; self.hosts.len() + 1];
        for &(h, _) in &self.pairs {
            count[h as usize + 1] += 1;
        }
        for i in 1..count.len() {
            count[i] += count[i - 1];
        }
        let mut slots: Vec<IpAddr> = vec![IpAddr::from([0u8; 4]); self.pairs.len()];
        let mut next = count.clone();
        for &(h, ip) in &self.pairs {
            slots[next[h as usize] as usize] = ip;
            next[h as usize] += 1;
        }
        self.addresses.clear();
        let mut seen: MixedSet<IpAddr> = MixedSet::default();
        for (h, host) in self.hosts.iter_mut().enumerate() {
            let group = &slots[count[h] as usize..count[h + 1] as usize];
            host.start = self.addresses.len() as u32;
            for v6 in [false, true] {
                if v6 {
                    host.v6 = self.addresses.len() as u32;
                }
                let from = self.addresses.len();
                for &ip in group.iter().filter(|ip| ip.is_ipv6() == v6) {
                    let fresh = if group.len() <= 8 {
                        !self.addresses[from..].contains(&ip)
                    } else {
                        if self.addresses.len() == from {
                            seen.clear();
                        }
                        seen.insert(ip)
                    };
                    if fresh {
                        self.addresses.push(ip);
                    }
                }
            }
            host.end = self.addresses.len() as u32;
        }
    }

    /// Appends `records` to `srv_records` without repeats (RFC 2181 §5); their range.
    fn unique_srvs(&mut self, records: &[(u16, u32)]) -> (u32, u32) {
        let start = self.srv_records.len();
        if records.len() <= 8 {
            for &r in records {
                if !self.srv_records[start..].contains(&r) {
                    self.srv_records.push(r);
                }
            }
        } else {
            self.seen_srv.clear();
            for &r in records {
                if self.seen_srv.insert(r) {
                    self.srv_records.push(r);
                }
            }
        }
        (start as u32, self.srv_records.len() as u32)
    }

    /// Whether the planned Service has any record (so its name exists).
    pub(super) fn is_empty(&self) -> bool {
        self.name_v4.is_empty() && self.name_v6.is_empty()
    }

    /// Encodes every name of the planned Service under `root` (its name in one cluster zone)
    /// into `batch`.
    pub(super) fn encode(&mut self, root: &Name, batch: &mut NodeBatch) {
        if self.is_empty() {
            return;
        }
        let root = root.as_wire();
        let ttl = self.ttl;
        // The Service name: its addresses, then its SRV set (or a link to a port's equal one).
        self.body.clear();
        self.types.clear();
        let mut p = Preparing::new(&mut self.bytes, &mut self.bounds);
        if !self.name_v4.is_empty() {
            for ip in &self.name_v4 {
                p.answer(|b| write_tail_with(b, RType::A, ttl, |b| b.extend_from_slice(ip)));
            }
            p.end_answers();
            let start = self.body.len();
            p.finish(&mut self.body);
            self.types.push((RType::A.0, start, self.body.len()));
            p = Preparing::new(&mut self.bytes, &mut self.bounds);
        }
        if !self.name_v6.is_empty() {
            for ip in &self.name_v6 {
                p.answer(|b| write_tail_with(b, RType::AAAA, ttl, |b| b.extend_from_slice(ip)));
            }
            p.end_answers();
            let start = self.body.len();
            p.finish(&mut self.body);
            self.types.push((RType::AAAA.0, start, self.body.len()));
        }
        if let Some(own) = self.srvs.last().filter(|s| s.port_label.is_empty()) {
            let start = self.body.len();
            let records = &self.srv_records[own.records.0 as usize..own.records.1 as usize];
            let linked = self.srvs[..self.srvs.len() - 1].iter().find(|s| {
                s.weight == own.weight
                    && self.srv_records[s.records.0 as usize..s.records.1 as usize] == *records
            });
            match linked {
                // The port name's answer, moved, is this one (`snapshot::LINK`).
                Some(port) => {
                    let mut prefix = [0u8; 2 * (1 + MAX_LABEL_LEN)];
                    let (port_label, proto) = (&port.port_label, port.proto_label.as_bytes());
                    let len = 2 + port_label.len() + proto.len();
                    prefix[0] = port_label.len() as u8;
                    prefix[1..1 + port_label.len()].copy_from_slice(port_label);
                    prefix[1 + port_label.len()] = proto.len() as u8;
                    prefix[2 + port_label.len()..len].copy_from_slice(proto);
                    write_link(&mut self.body, &prefix[..len]);
                }
                None => self.srv_answer(root, self.srvs.len() - 1, root),
            }
            self.types.push((RType::SRV.0, start, self.body.len()));
        }
        write_node(&mut self.blob, root, &self.types, &self.body, batch);
        #[cfg(debug_assertions)]
        self.check_links(root);

        // `_<port>._<proto>.<root>`: the SRV set of each named port; `_<proto>.<root>` exist.
        let mut protos: [&str; 3] = [""; 3];
        let mut port_wire = std::mem::take(&mut self.wire);
        for k in 0..self.srvs.len() {
            let srv = &self.srvs[k];
            if srv.port_label.is_empty() {
                continue;
            }
            let proto = srv.proto_label;
            port_wire.clear();
            put_label(&mut port_wire, &srv.port_label);
            put_label(&mut port_wire, proto.as_bytes());
            port_wire.extend_from_slice(root);
            self.body.clear();
            self.types.clear();
            self.srv_answer(&port_wire, k, root);
            self.types.push((RType::SRV.0, 0, self.body.len()));
            write_node(&mut self.blob, &port_wire, &self.types, &self.body, batch);
            if let Some(free) = protos.iter_mut().find(|p| p.is_empty() || **p == proto)
                && free.is_empty()
            {
                *free = proto;
                port_wire.clear();
                put_label(&mut port_wire, proto.as_bytes());
                port_wire.extend_from_slice(root);
                write_node(&mut self.blob, &port_wire, &[], &[], batch);
            }
        }

        // `<host>.<root>`: its addresses.
        for h in 0..self.hosts.len() {
            let host = self.hosts[h];
            port_wire.clear();
            put_label(&mut port_wire, self.label(h));
            port_wire.extend_from_slice(root);
            let (v4, v6) = (
                &self.addresses[host.start as usize..host.v6 as usize],
                &self.addresses[host.v6 as usize..host.end as usize],
            );
            if v4.len() + v6.len() <= FEW {
                push_host_node(batch, self.label(h), root, v4, v6, ttl);
                #[cfg(debug_assertions)]
                {
                    // The same bytes as the general encoding below.
                    let mut one = NodeBatch::default();
                    push_host_node(&mut one, self.label(h), root, v4, v6, ttl);
                    self.host_node_generic(h);
                    let mut want = NodeBatch::default();
                    write_node(
                        &mut self.blob,
                        &port_wire,
                        &self.types,
                        &self.body,
                        &mut want,
                    );
                    assert_eq!(one, want, "a host node as the general encoding writes it");
                }
                continue;
            }
            self.host_node_generic(h);
            write_node(&mut self.blob, &port_wire, &self.types, &self.body, batch);
        }
        self.wire = port_wire;
    }

    /// Host `h`'s answers into `body` and `types`, through [`Preparing`].
    fn host_node_generic(&mut self, h: usize) {
        let ttl = self.ttl;
        let host = self.hosts[h];
        let (v4, v6) = (
            &self.addresses[host.start as usize..host.v6 as usize],
            &self.addresses[host.v6 as usize..host.end as usize],
        );
        self.body.clear();
        self.types.clear();
        for (set, rtype) in [(v4, RType::A), (v6, RType::AAAA)] {
            if set.is_empty() {
                continue;
            }
            let mut p = Preparing::new(&mut self.bytes, &mut self.bounds);
            for ip in set {
                p.answer(|b| write_tail_with(b, rtype, ttl, |b| put_ip(b, ip)));
            }
            p.end_answers();
            let start = self.body.len();
            p.finish(&mut self.body);
            self.types.push((rtype.0, start, self.body.len()));
        }
    }

    fn label(&self, h: usize) -> &[u8] {
        let (at, len) = self.hosts[h].label;
        &self.labels[at as usize..][..len as usize]
    }

    /// Appends to `body` the SRV answer of `srvs[k]` for the question `qname`: its records,
    /// then each target's addresses once (RFC 2782 "Usage rules").
    fn srv_answer(&mut self, qname: &[u8], k: usize, root: &[u8]) {
        let ttl = self.ttl;
        let srv = &self.srvs[k];
        let records = &self.srv_records[srv.records.0 as usize..srv.records.1 as usize];
        let weight = srv.weight;
        let labels = &self.labels;
        let hosts = &self.hosts;
        let label = |h: u32| {
            let (at, len) = hosts[h as usize].label;
            &labels[at as usize..][..len as usize]
        };
        let mut p = Preparing::new(&mut self.bytes, &mut self.bounds);
        for &(port, host) in records {
            p.answer(|b| {
                write_tail_with(b, RType::SRV, ttl, |b| {
                    b.extend_from_slice(&0u16.to_be_bytes());
                    b.extend_from_slice(&weight.to_be_bytes());
                    b.extend_from_slice(&port.to_be_bytes());
                    // RFC 2782: the target is not compressed.
                    put_label(b, label(host));
                    b.extend_from_slice(root);
                })
            });
        }
        p.end_answers();
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.listed.iter_mut().for_each(|e| *e = u32::MAX);
            self.epoch = 1;
        }
        if self.listed.len() < hosts.len() {
            self.listed.resize(hosts.len(), 0);
        }
        // An owner `<host>.<root>` is compressed to its label and a pointer to `<root>` in the
        // question (a host label never starts with `_`, so no longer suffix matches).
        let pointer = 0xC000 | (12 + qname.len() - root.len()) as u16;
        let mut owner = [0u8; 66];
        for &(_, host) in records {
            if p.is_full() {
                break;
            }
            if std::mem::replace(&mut self.listed[host as usize], self.epoch) == self.epoch {
                continue;
            }
            let h = hosts[host as usize];
            let l = label(host);
            owner[0] = l.len() as u8;
            owner[1..1 + l.len()].copy_from_slice(l);
            owner[1 + l.len()..3 + l.len()].copy_from_slice(&pointer.to_be_bytes());
            let owner = &owner[..3 + l.len()];
            #[cfg(debug_assertions)]
            {
                let mut full = Vec::new();
                put_label(&mut full, l);
                full.extend_from_slice(root);
                let mut want = Vec::new();
                crate::answer::write_name(&mut want, &full, Some(qname));
                assert_eq!(
                    owner,
                    &want[..],
                    "the owner compresses as `write_name` would"
                );
            }
            for ip in &self.addresses[h.start as usize..h.end as usize] {
                let rtype = if ip.is_ipv4() { RType::A } else { RType::AAAA };
                p.additional_compressed(owner, |b| {
                    write_tail_with(b, rtype, ttl, |b| put_ip(b, ip))
                });
            }
        }
        p.finish(&mut self.body);
    }

    /// Debug builds: the Service name's SRV answer is a link exactly when `Ctx::encode` would
    /// make it one (the port answer, shifted, gives the bytes of its own).
    #[cfg(debug_assertions)]
    fn check_links(&mut self, root: &[u8]) {
        use crate::answer::PreparedAnswer;
        let Some(own) = self.srvs.last().filter(|s| s.port_label.is_empty()) else {
            return;
        };
        let records = &self.srv_records[own.records.0 as usize..own.records.1 as usize];
        let Some(k) = self.srvs[..self.srvs.len() - 1].iter().position(|s| {
            s.weight == own.weight
                && self.srv_records[s.records.0 as usize..s.records.1 as usize] == *records
        }) else {
            return;
        };
        let (body, types) = (
            std::mem::take(&mut self.body),
            std::mem::take(&mut self.types),
        );
        self.body.clear();
        self.srv_answer(root, self.srvs.len() - 1, root);
        let bare = std::mem::take(&mut self.body);
        let mut port = Vec::new();
        put_label(&mut port, &self.srvs[k].port_label);
        put_label(&mut port, self.srvs[k].proto_label.as_bytes());
        let up = port.len();
        port.extend_from_slice(root);
        self.srv_answer(&port, k, root);
        let mut shifted = Vec::new();
        PreparedAnswer::from_bytes(&self.body)
            .shifted(-(up as i16))
            .write_prepared(&mut shifted);
        assert_eq!(
            shifted, bare,
            "a link answers as the Service name's own SRV set"
        );
        self.body = body;
        self.types = types;
    }
}

/// One PTR: the address, and its target label as `(start, length)` in [`Ptrs::labels`].
pub(super) type Ptr = (IpAddr, u32, u8);

/// A Service's PTRs as `(address, target label)`: sorted by address (so that the ancestors
/// of their owners come in runs), each address's labels in the order the records are made,
/// without repeats. The target is the label's name under the Service in the primary zone.
#[derive(Debug, Default)]
pub(super) struct Ptrs {
    labels: Vec<u8>,
    pairs: Vec<Ptr>,
    /// Per address (after [`Ptrs::finish`]): its PTR owner's wire name, back to back.
    owners: Vec<u8>,
    owner_at: Vec<u32>,
    /// Per address: whether a served reverse zone holds its owner ([`Ptrs::mark_covered`]).
    covered: Vec<bool>,
}

impl Ptrs {
    pub(super) fn clear(&mut self) {
        self.labels.clear();
        self.pairs.clear();
        self.owners.clear();
        self.owner_at.clear();
        self.covered.clear();
    }

    /// Records, per address, whether `covers` its owner (a PTR exists only then).
    pub(super) fn mark_covered(&mut self, covers: impl Fn(&[u8]) -> bool) {
        self.covered.clear();
        for k in 0..self.owner_at.len().saturating_sub(1) {
            let owner = &self.owners[self.owner_at[k] as usize..self.owner_at[k + 1] as usize];
            self.covered.push(covers(owner));
        }
    }

    /// Adds a PTR (the label is lower-cased, as names are).
    pub(super) fn push(&mut self, ip: IpAddr, label: &[u8]) {
        let at = self.labels.len() as u32;
        self.labels.extend(label.iter().map(u8::to_ascii_lowercase));
        self.pairs.push((ip, at, label.len() as u8));
    }

    /// Sorts by address (stable: each address keeps its labels' order) and drops repeats.
    pub(super) fn finish(&mut self) {
        // Endpoints often come in address order already.
        if !self.pairs.is_sorted_by_key(|p| p.0) {
            self.pairs.sort_by_key(|p| p.0);
        }
        let labels = &self.labels;
        let label = |p: &Ptr| &labels[p.1 as usize..][..p.2 as usize];
        let mut out = 0;
        let mut group = 0;
        for i in 0..self.pairs.len() {
            let p = self.pairs[i];
            if out > 0 && self.pairs[out - 1].0 != p.0 {
                group = out;
            }
            if self.pairs[group..out].iter().any(|q| label(q) == label(&p)) {
                continue;
            }
            self.pairs[out] = p;
            out += 1;
        }
        self.pairs.truncate(out);
        let mut wire = [0u8; names::REVERSE_LEN];
        self.owner_at.push(0);
        for g in self.pairs.chunk_by(|a, b| a.0 == b.0) {
            let len = names::reverse_into(g[0].0, &mut wire);
            self.owners.extend_from_slice(&wire[..len]);
            self.owner_at.push(self.owners.len() as u32);
        }
    }

    /// The PTRs of each address: `(address, owner name, labels, covered)`, by address.
    pub(super) fn groups(&self) -> impl Iterator<Item = (IpAddr, &[u8], &[Ptr], bool)> {
        self.pairs
            .chunk_by(|a, b| a.0 == b.0)
            .enumerate()
            .map(|(k, g)| {
                let owner = &self.owners[self.owner_at[k] as usize..self.owner_at[k + 1] as usize];
                (
                    g[0].0,
                    owner,
                    g,
                    self.covered.get(k).copied().unwrap_or(false),
                )
            })
    }

    pub(super) fn label(&self, p: &Ptr) -> &[u8] {
        &self.labels[p.1 as usize..][..p.2 as usize]
    }
}

/// The longest label `<label>.<root>` can have and still be a name, for a `root` of
/// `root_len` bytes.
pub(super) fn max_label(root_len: usize) -> usize {
    MAX_LABEL_LEN.min(MAX_NAME_LEN.saturating_sub(root_len + 1))
}

/// Whether an endpoint's own label (hostname, pod name) is one this path encodes: a label
/// starting with `_` could be a `_<proto>` name of the Service, where records would merge.
pub(super) fn own_label_ok(label: &[u8], max_label: usize) -> bool {
    !label.is_empty() && label.len() <= max_label && label[0] != b'_'
}

/// Whether the dashed label of `ip` (an endpoint without a label of its own) fits.
pub(super) fn dashed_ok(ip: IpAddr, max_label: usize) -> bool {
    dashed(ip, &mut [0u8; 64]) <= max_label
}

/// Whether every named port's SRV owner `_<port>._<proto>.<root>` is a name, each its own
/// (two ports whose names differ only in case would merge their RRsets).
pub(super) fn ports_ok(ports: &[PortView], root_len: usize) -> bool {
    let named = || {
        ports
            .iter()
            .filter_map(|p| Some((p.name.as_deref()?, p.protocol)))
    };
    named().enumerate().all(|(i, (name, protocol))| {
        let owner_len = root_len + 3 + name.len() + protocol.srv_label().len();
        // `_<port>` is a label.
        name.len() < MAX_LABEL_LEN
            && owner_len <= MAX_NAME_LEN
            && !named()
                .take(i)
                .any(|(other, p)| p == protocol && other.eq_ignore_ascii_case(name))
    })
}

/// Addresses of a host up to which [`push_host_node`] writes its node directly (no record
/// can then be cut for size).
const FEW: usize = 64;

/// The node of `<label>.<root>` with its A and AAAA answers (at most [`FEW`] records), written
/// straight into the batch: one host per endpoint makes this the most written node, and the
/// general encoding copies it three times on the way.
fn push_host_node(
    batch: &mut NodeBatch,
    label: &[u8],
    root: &[u8],
    v4: &[IpAddr],
    v6: &[IpAddr],
    ttl: u32,
) {
    // A prepared answer: the record alone (`answer::SINGLE`), or two counts, a bound per
    // record and one more, and the records.
    let answer_len = |n: usize, rdata: usize| match n {
        1 => 12 + rdata,
        _ => 4 + 2 * (n + 1) + n * (12 + rdata),
    };
    let sets = [(v4, RType::A, 4), (v6, RType::AAAA, 16)];
    let types = sets.iter().filter(|(set, _, _)| !set.is_empty()).count();
    let wire_len = 1 + label.len() + root.len();
    let head = 1 + wire_len + 1 + types;
    let len = head
        + sets
            .iter()
            .filter(|(set, _, _)| !set.is_empty())
            .map(|(set, _, rdata)| answer_len(set.len(), *rdata))
            .sum::<usize>();
    batch.push_with(len, |b| {
        b.push(wire_len as u8);
        b.push(label.len() as u8);
        b.extend_from_slice(label);
        b.extend_from_slice(root);
        // No flags, and the number of types (`snapshot::Node`).
        b.push(types as u8);
        for (_, rtype, _) in sets.iter().filter(|(set, _, _)| !set.is_empty()) {
            b.push(rtype.0 as u8);
        }
        for (set, rtype, rdata) in sets.iter().filter(|(set, _, _)| !set.is_empty()) {
            let n = set.len() as u16;
            let record = 12 + *rdata as u16;
            if n > 1 {
                b.extend_from_slice(&n.to_be_bytes());
                b.extend_from_slice(&n.to_be_bytes());
                for k in 0..=n {
                    b.extend_from_slice(&(k * record).to_be_bytes());
                }
            }
            for ip in *set {
                let mut r = [0u8; 28];
                r[..2].copy_from_slice(&[0xC0, 12]);
                r[2..4].copy_from_slice(&rtype.0.to_be_bytes());
                r[4..6].copy_from_slice(&1u16.to_be_bytes());
                r[6..10].copy_from_slice(&ttl.to_be_bytes());
                r[10..12].copy_from_slice(&(*rdata as u16).to_be_bytes());
                match ip {
                    IpAddr::V4(v4) => r[12..16].copy_from_slice(&v4.octets()),
                    IpAddr::V6(v6) => r[12..28].copy_from_slice(&v6.octets()),
                }
                b.extend_from_slice(&r[..record as usize]);
            }
        }
    });
}

/// Encodes a node (no flags; `types` already in answer-to-ANY order: A, AAAA, SRV) into the
/// batch.
fn write_node(
    blob: &mut Vec<u8>,
    wire: &[u8],
    types: &[(u16, usize, usize)],
    body: &[u8],
    batch: &mut NodeBatch,
) {
    NodeBuf::write(wire, 0, types, 0, body, blob);
    batch.push(blob);
}

fn put_label(out: &mut Vec<u8>, label: &[u8]) {
    out.push(label.len() as u8);
    out.extend_from_slice(label);
}

fn put_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

/// The SRV weight of an RRset made from `n` records, repeats included (`records.rs`).
fn srv_weight(n: usize) -> u16 {
    (100 / n).max(1) as u16
}

/// [`names::dashed_label`] into `buf`, without allocating; its length.
fn dashed(ip: IpAddr, buf: &mut [u8; 64]) -> usize {
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{ip}").expect("an address fits in 64 bytes");
    let len = cursor.position() as usize;
    for b in &mut buf[..len] {
        if *b == b'.' || *b == b':' {
            *b = b'-';
        }
    }
    debug_assert_eq!(&buf[..len], names::dashed_label(ip).as_bytes());
    len
}

fn hash_label(label: &[u8]) -> u64 {
    let mut hasher = Mixed::default();
    label.hash(&mut hasher);
    hasher.finish()
}

/// FxHash with its state mixed down at the end. Plain FxHash leaves the low bits (which pick
/// the bucket) to the low bytes of the last word: labels `big-0` … `big-999`, or addresses of
/// one /16, all landed in one probe sequence, and a 1,000-host Service took quadratic probing.
#[derive(Clone, Copy, Debug, Default)]
struct Mixed(FxHasher);

impl Hasher for Mixed {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    fn write_u8(&mut self, n: u8) {
        self.0.write_usize(n.into());
    }

    fn write_u16(&mut self, n: u16) {
        self.0.write_usize(n.into());
    }

    fn write_u32(&mut self, n: u32) {
        self.0.write_usize(n as usize);
    }

    fn write_usize(&mut self, n: usize) {
        self.0.write_usize(n);
    }

    fn finish(&self) -> u64 {
        let h = self.0.finish();
        (h ^ (h >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (h >> 29)
    }
}

type MixedSet<K> = hashbrown::HashSet<K, std::hash::BuildHasherDefault<Mixed>>;
