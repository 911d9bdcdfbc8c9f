//! Service VIPs and IP families: what the API server's allocator and defaulting would do.
//!
//! For each Service (sorted by namespace/name):
//! - `type: ExternalName`: left as written (no VIP, no families).
//! - `type` defaults to `ClusterIP`; each port's `protocol` to `TCP` and `targetPort` to `port`.
//! - IP families: `spec.ipFamilies` as written, else the families of explicit `clusterIPs`, else
//!   the primary family (the first service CIDR's). `ipFamilyPolicy` defaults to `SingleStack`,
//!   except for headless Services without a selector in a dual-stack cluster, which get
//!   `RequireDualStack` with both families, as the API server does. `PreferDualStack` and
//!   `RequireDualStack` add the other family when two service CIDRs are configured;
//!   `RequireDualStack` without them is an error.
//! - Headless (`clusterIP: None`): `clusterIPs: [None]`.
//! - Otherwise each family's VIP is the one written (`clusterIPs`, or `clusterIP`), or one
//!   allocated from that family's service CIDR ([`super::ipam::Pool`], seeded with
//!   `namespace/name`). Offsets 1 (`kubernetes.default`) and 10 (the conventional kube-dns VIP) of
//!   every service CIDR are never allocated, only taken when written. Explicit VIPs are kept as
//!   written, even outside the configured CIDRs (manifests copied from another cluster).
//!
//! A Service the API server would refuse (an unknown family or policy, `RequireDualStack` in a
//! single-stack cluster, a family no CIDR is configured for, a VIP another Service already has,
//! a VIP that is not an IP) is left out with a `warn`, and its error is returned, so one bad
//! Service does not cost the others. An exhausted service CIDR fails the whole derivation.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ipam::{Pool, family, ip_family};
use super::{ControllerError, display_key, key_of};

/// Offsets into each service CIDR that are never allocated: `.1` and `.10`.
const RESERVED_OFFSETS: [u128; 2] = [1, 10];

/// The API server's VIP allocation over every Service, in two passes over them in the same
/// (sorted) order, so that neither holds all the decoded Services at once (at 10k Services
/// they were 18 MB of a standalone derivation's peak):
///
/// 1. [`Assigner::new`] reads each Service's explicit VIPs, which are kept and never handed
///    out again, and refuses the Services whose VIPs are invalid or another's;
/// 2. [`Assigner::fill`] then fills each Service's defaults, families and VIPs.
///
/// A refused Service's error is pushed to `rejected` (it is left out, as a real API server
/// never stores it). An exhausted service CIDR is an error for the whole cluster: the
/// configuration is too small.
pub(crate) struct Assigner {
    alloc: Allocator,
    /// Services pass 1 refused (their errors are already out).
    refused: HashSet<(String, String)>,
}

impl Assigner {
    /// Pass 1 over `services` (sorted).
    pub(crate) fn new(
        services: impl Iterator<Item = Service>,
        cidrs: &[IpNet],
        rejected: &mut Vec<ControllerError>,
    ) -> Self {
        let mut alloc = Allocator {
            pools: cidrs.iter().copied().map(Pool::new).collect(),
            primary: family(&cidrs[0]),
            secondary: cidrs.get(1).map(family),
            cidr_list: cidrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        let mut refused = HashSet::new();
        let mut owners: HashMap<IpAddr, String> = HashMap::new();
        'services: for svc in services {
            let ips = match explicit_ips(&svc) {
                Ok(ips) => ips,
                Err(e) => {
                    reject(rejected, e);
                    refused.insert(key_of(&svc.metadata));
                    continue;
                }
            };
            for ip in &ips {
                if let Some(other) = owners.get(ip) {
                    let e = ControllerError::ClusterIpInUse {
                        service: display_key(&svc.metadata),
                        ip: *ip,
                        other: other.clone(),
                    };
                    reject(rejected, e);
                    refused.insert(key_of(&svc.metadata));
                    continue 'services;
                }
            }
            for ip in &ips {
                owners.insert(*ip, display_key(&svc.metadata));
                for pool in &mut alloc.pools {
                    pool.take(*ip);
                }
            }
        }
        for pool in &mut alloc.pools {
            for offset in RESERVED_OFFSETS {
                let ip = pool.at(offset);
                pool.take(ip);
            }
        }
        Self { alloc, refused }
    }

    /// Pass 2: fills `svc` as the API server would hold it, taking the Services in pass 1's
    /// order. Whether it is accepted; a refusal's error goes to `rejected`.
    pub(crate) fn fill(
        &mut self,
        svc: &mut Service,
        rejected: &mut Vec<ControllerError>,
    ) -> Result<bool, ControllerError> {
        if self.refused.contains(&key_of(&svc.metadata)) {
            return Ok(false);
        }
        // Pass 1 read these VIPs without an error.
        let explicit = explicit_ips(svc)?;
        match self.alloc.fill(svc, &explicit) {
            Ok(()) => Ok(true),
            Err(e @ ControllerError::ServiceCidrExhausted { .. }) => Err(e),
            Err(e) => {
                reject(rejected, e);
                Ok(false)
            }
        }
    }
}

fn reject(rejected: &mut Vec<ControllerError>, error: ControllerError) {
    tracing::warn!(%error, "leaving out a Service the API server would refuse");
    rejected.push(error);
}

/// The service CIDRs and what is taken in them.
struct Allocator {
    /// One pool per configured service CIDR.
    pools: Vec<Pool>,
    /// The first CIDR's family.
    primary: &'static str,
    /// The second CIDR's family, in a dual-stack cluster.
    secondary: Option<&'static str>,
    /// The CIDRs, for messages.
    cidr_list: String,
}

impl Allocator {
    /// Defaults, families and VIPs of one Service, as the API server would fill them.
    fn fill(&mut self, svc: &mut Service, explicit: &[IpAddr]) -> Result<(), ControllerError> {
        let service = display_key(&svc.metadata);
        let (ns, name) = key_of(&svc.metadata);
        let invalid = |field, message: String| ControllerError::InvalidService {
            service: service.clone(),
            field,
            message,
        };
        let spec = svc.spec.get_or_insert_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            return Ok(());
        }
        spec.type_.get_or_insert_with(|| "ClusterIP".to_owned());
        for port in spec.ports.iter_mut().flatten() {
            port.protocol.get_or_insert_with(|| "TCP".to_owned());
            port.target_port.get_or_insert(IntOrString::Int(port.port));
        }
        let headless = is_headless(spec);
        let has_selector = spec.selector.as_ref().is_some_and(|s| !s.is_empty());

        let mut families: Vec<&'static str> = match spec.ip_families.as_deref() {
            Some(list) if !list.is_empty() => list
                .iter()
                .map(|f| match f.as_str() {
                    "IPv4" => Ok("IPv4"),
                    "IPv6" => Ok("IPv6"),
                    other => Err(invalid(
                        "spec.ipFamilies",
                        format!("unknown IP family {other:?} (IPv4 or IPv6)"),
                    )),
                })
                .collect::<Result<_, _>>()?,
            _ if !explicit.is_empty() => explicit.iter().map(ip_family).collect(),
            _ => vec![self.primary],
        };
        let dual = self.secondary.is_some();
        let policy = match spec.ip_family_policy.as_deref() {
            Some(p @ ("SingleStack" | "PreferDualStack" | "RequireDualStack")) => p.to_owned(),
            Some(other) => {
                return Err(invalid(
                    "spec.ipFamilyPolicy",
                    format!(
                        "unknown policy {other:?} (SingleStack, PreferDualStack or RequireDualStack)"
                    ),
                ));
            }
            None if headless && !has_selector && dual => "RequireDualStack".to_owned(),
            None if families.len() > 1 => "PreferDualStack".to_owned(),
            None => "SingleStack".to_owned(),
        };
        if policy != "SingleStack" && families.len() == 1 && dual {
            let other = if families[0] == self.primary {
                self.secondary.unwrap_or(self.primary)
            } else {
                self.primary
            };
            families.push(other);
        }
        if policy == "RequireDualStack" && families.len() < 2 {
            return Err(invalid(
                "spec.ipFamilyPolicy",
                "RequireDualStack needs two service CIDRs (one per IP family)".to_owned(),
            ));
        }
        if policy == "SingleStack" && families.len() > 1 {
            return Err(invalid(
                "spec.ipFamilyPolicy",
                "SingleStack allows one IP family".to_owned(),
            ));
        }
        if families.len() > 2 || (families.len() == 2 && families[0] == families[1]) {
            return Err(invalid(
                "spec.ipFamilies",
                "at most two IP families, and they must differ".to_owned(),
            ));
        }
        for (i, fam) in families.iter().enumerate() {
            // A family may be asked for only if it is configured, or its VIP is written.
            let configured = *fam == self.primary || Some(*fam) == self.secondary;
            let written = explicit.get(i).is_some_and(|ip| ip_family(ip) == *fam);
            if !configured && !written {
                return Err(ControllerError::FamilyNotConfigured {
                    service,
                    field: "spec.ipFamilies",
                    family: fam,
                    cidrs: self.cidr_list.clone(),
                });
            }
        }

        spec.ip_families = Some(families.iter().map(|f| (*f).to_owned()).collect());
        spec.ip_family_policy = Some(policy);
        if headless {
            spec.cluster_ip = Some("None".to_owned());
            spec.cluster_ips = Some(vec!["None".to_owned()]);
            return Ok(());
        }

        let seed = format!("{ns}/{name}");
        let mut ips = Vec::with_capacity(families.len());
        for (i, fam) in families.iter().enumerate() {
            if let Some(ip) = explicit.get(i) {
                if ip_family(ip) != *fam {
                    return Err(invalid(
                        "spec.clusterIPs",
                        format!("{ip} is not of family {fam} (spec.ipFamilies[{i}])"),
                    ));
                }
                ips.push(*ip);
                continue;
            }
            let Some(pool) = self.pools.iter_mut().find(|p| family(&p.net) == *fam) else {
                return Err(ControllerError::FamilyNotConfigured {
                    service,
                    field: "spec.ipFamilies",
                    family: fam,
                    cidrs: self.cidr_list.clone(),
                });
            };
            let ip = pool
                .allocate(&seed)
                .ok_or_else(|| ControllerError::ServiceCidrExhausted {
                    service: service.clone(),
                    cidr: pool.net,
                })?;
            ips.push(ip);
        }
        spec.cluster_ip = ips.first().map(ToString::to_string);
        spec.cluster_ips = Some(ips.iter().map(ToString::to_string).collect());
        Ok(())
    }
}

/// `clusterIP: None` (or `clusterIPs: [None]`).
pub(crate) fn is_headless(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> bool {
    spec.cluster_ip.as_deref() == Some("None")
        || spec
            .cluster_ips
            .as_ref()
            .and_then(|ips| ips.first())
            .is_some_and(|ip| ip == "None")
}

/// The VIPs a Service writes: `clusterIPs`, else `clusterIP`; none for headless, ExternalName
/// or unset.
fn explicit_ips(svc: &Service) -> Result<Vec<IpAddr>, ControllerError> {
    let Some(spec) = svc.spec.as_ref() else {
        return Ok(Vec::new());
    };
    if spec.type_.as_deref() == Some("ExternalName") || is_headless(spec) {
        return Ok(Vec::new());
    }
    let (field, written): (&'static str, Vec<&str>) = match spec.cluster_ips.as_deref() {
        Some(list) if !list.is_empty() => {
            ("spec.clusterIPs", list.iter().map(String::as_str).collect())
        }
        _ => (
            "spec.clusterIP",
            spec.cluster_ip.as_deref().into_iter().collect(),
        ),
    };
    let written: Vec<&str> = written.into_iter().filter(|s| !s.is_empty()).collect();
    if let (Some(single), Some(first)) = (spec.cluster_ip.as_deref(), written.first())
        && !single.is_empty()
        && single != *first
    {
        return Err(ControllerError::InvalidService {
            service: display_key(&svc.metadata),
            field: "spec.clusterIP",
            message: format!("{single} differs from spec.clusterIPs[0] {first}"),
        });
    }
    if written.len() > 2 {
        return Err(ControllerError::InvalidService {
            service: display_key(&svc.metadata),
            field,
            message: "at most two VIPs (one per IP family)".to_owned(),
        });
    }
    written
        .iter()
        .map(|s| {
            s.parse::<IpAddr>()
                .map_err(|_| ControllerError::InvalidService {
                    service: display_key(&svc.metadata),
                    field,
                    message: format!("{s:?} is not an IP address or None"),
                })
        })
        .collect()
}
