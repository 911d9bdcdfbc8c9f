//! Pod IPs: what a CNI plugin's IPAM would have given pods that have none.
//!
//! Pods that already have `status.podIP(s)` (explicit pods as written) keep them, and their
//! addresses are never handed out again. Every other pod that would be running (phase unset or
//! `Running`) gets one address per configured pod CIDR, primary family first, chosen by
//! [`super::ipam::Pool`] from a hash of `namespace/name`. Pods `Pending`, `Succeeded` or
//! `Failed` get none (a real pod has no IP before it runs).

use ipnet::IpNet;

use super::ControllerError;
use super::ipam::Pool;
use super::pod::PodFacts;

/// Gives every running pod without an address one per pod CIDR. `pods` is sorted by
/// namespace/name, which makes the result deterministic.
pub(crate) fn assign<P: PodFacts>(
    pods: &mut [P],
    pod_cidrs: &[IpNet],
) -> Result<(), ControllerError> {
    let mut pools: Vec<Pool> = pod_cidrs.iter().copied().map(Pool::new).collect();
    for pod in pods.iter() {
        for ip in pod.ips() {
            for pool in &mut pools {
                pool.take(ip);
            }
        }
    }
    let mut ips = Vec::with_capacity(pools.len());
    for pod in pods.iter_mut() {
        if !needs_ip(pod) {
            continue;
        }
        let (ns, name) = pod.key();
        let seed = format!("{ns}/{name}");
        ips.clear();
        for pool in &mut pools {
            let ip = pool
                .allocate(&seed)
                .ok_or_else(|| ControllerError::PodCidrExhausted {
                    pod: seed.clone(),
                    cidr: pool.net,
                })?;
            ips.push(ip);
        }
        pod.set_ips(&ips);
    }
    Ok(())
}

fn needs_ip(pod: &impl PodFacts) -> bool {
    !pod.has_written_ip() && matches!(pod.phase(), None | Some("Running"))
}
