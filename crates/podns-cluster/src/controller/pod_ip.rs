//! Pod IPs: what a CNI plugin's IPAM would have given pods that have none.
//!
//! Pods that already have `status.podIP(s)` (explicit pods as written) keep them, and their
//! addresses are never handed out again. Every other pod that would be running (phase unset or
//! `Running`) gets one address per configured pod CIDR, primary family first, chosen by
//! [`super::ipam::Pool`] from a hash of `namespace/name`. Pods `Pending`, `Succeeded` or
//! `Failed` get none (a real pod has no IP before it runs).

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Pod, PodIP};

use super::ipam::Pool;
use super::{ControllerError, display_key, key_of};

/// Gives every running pod without an address one per pod CIDR. `pods` is sorted by
/// namespace/name, which makes the result deterministic.
pub(crate) fn assign(pods: &mut [Pod], pod_cidrs: &[IpNet]) -> Result<(), ControllerError> {
    let mut pools: Vec<Pool> = pod_cidrs.iter().copied().map(Pool::new).collect();
    for pod in pods.iter() {
        for ip in pod_ips(pod) {
            for pool in &mut pools {
                pool.take(ip);
            }
        }
    }
    for pod in pods.iter_mut() {
        if !needs_ip(pod) {
            continue;
        }
        let (ns, name) = key_of(&pod.metadata);
        let seed = format!("{ns}/{name}");
        let mut ips = Vec::with_capacity(pools.len());
        for pool in &mut pools {
            let ip = pool
                .allocate(&seed)
                .ok_or_else(|| ControllerError::PodCidrExhausted {
                    pod: display_key(&pod.metadata),
                    cidr: pool.net,
                })?;
            ips.push(ip.to_string());
        }
        let status = pod.status.get_or_insert_default();
        status.pod_ip = ips.first().cloned();
        status.pod_ips = Some(ips.into_iter().map(|ip| PodIP { ip }).collect());
    }
    Ok(())
}

/// The pod's addresses: `status.podIPs`, else `status.podIP`; unparsable ones skipped.
pub(crate) fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let listed: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|p| p.ip.parse().ok())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    status
        .pod_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .into_iter()
        .collect()
}

fn needs_ip(pod: &Pod) -> bool {
    let has_ip = pod.status.as_ref().is_some_and(|s| {
        s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
            || s.pod_ips.as_ref().is_some_and(|ips| !ips.is_empty())
    });
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !has_ip && matches!(phase, None | Some("Running"))
}
