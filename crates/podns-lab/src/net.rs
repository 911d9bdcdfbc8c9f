//! Lab networking: network namespaces, the bridge, veth pairs and `/etc/netns` files.
//!
//! This module is responsible for every change the lab makes to the machine's network, all
//! through `ip`. The layout keeps the root namespace out of it:
//!
//! ```text
//!  netns podns-<lab>                            netns <pod>            (one per pod)
//!  ┌───────────────────────────────────┐      ┌──────────────────────┐
//!  │ bridge podns-br  <bridge ip>/<len> │─veth─│ eth0  <pod ip>/<len> │  resolv.conf, hosts
//!  │ podns serve on <bridge ip>:53     │      │ lo                   │  from /etc/netns/<pod>/
//!  └───────────────────────────────────┘      └──────────────────────┘
//! ```
//!
//! The bridge has no uplink, and no namespace gets a default route or NAT: the pod CIDR is
//! on-link and nothing else is reachable, so lab traffic stays among the lab's namespaces.
//! Deleting a namespace deletes the links in it (and so both ends of its veth pairs).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{LabError, Result};

/// The bridge's name inside the lab namespace (the root namespace never sees it).
pub(crate) const BRIDGE: &str = "podns-br";

/// The bridge's MAC address, set so that it stays put: a bridge without one takes the lowest
/// MAC of its ports, so a pod added later could change it and leave every other pod's ARP
/// entry for the DNS server stale for seconds. Locally administered ("podns" in ASCII); each
/// lab's bridge is its own L2 segment, so labs can share it.
const BRIDGE_MAC: &str = "02:70:6f:64:6e:73";

/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Where `ip netns exec` finds per-namespace `/etc` files.
const ETC_NETNS_DIR: &str = "/etc/netns";

/// Whether a named network namespace exists.
pub(crate) fn netns_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// `/etc/netns/<name>`.
pub(crate) fn etc_dir(name: &str) -> PathBuf {
    Path::new(ETC_NETNS_DIR).join(name)
}

/// Makes the lab namespace with its bridge at `bridge_ip/prefix_len`.
pub(crate) fn add_lab_netns(netns: &str, bridge_ip: Ipv4Addr, prefix_len: u8) -> Result<()> {
    ip(&["netns", "add", netns])?;
    ip(&["-n", netns, "link", "set", "lo", "up"])?;
    ip(&[
        "-n", netns, "link", "add", BRIDGE, "address", BRIDGE_MAC, "type", "bridge",
    ])?;
    ip(&[
        "-n",
        netns,
        "addr",
        "add",
        &format!("{bridge_ip}/{prefix_len}"),
        "dev",
        BRIDGE,
    ])?;
    ip(&["-n", netns, "link", "set", BRIDGE, "up"])
}

/// Makes a pod's namespace: `eth0` at `ip/prefix_len`, its veth peer `veth` on the lab bridge.
pub(crate) fn add_pod_netns(
    lab_netns: &str,
    pod: &str,
    veth: &str,
    ip_addr: Ipv4Addr,
    prefix_len: u8,
) -> Result<()> {
    ip(&["netns", "add", pod])?;
    ip(&["-n", pod, "link", "set", "lo", "up"])?;
    ip(&[
        "-n", lab_netns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod,
    ])?;
    ip(&["-n", lab_netns, "link", "set", veth, "master", BRIDGE, "up"])?;
    ip(&[
        "-n",
        pod,
        "addr",
        "add",
        &format!("{ip_addr}/{prefix_len}"),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", pod, "link", "set", "eth0", "up"])
}

/// Deletes a named namespace and every link in it; absent is fine.
pub(crate) fn del_netns(name: &str) -> Result<()> {
    if netns_exists(name) {
        ip(&["netns", "del", name])?;
    }
    Ok(())
}

/// Writes `/etc/netns/<pod>/resolv.conf` and `hosts` as the kubelet writes a pod's.
///
/// `search` is the Kubernetes list for the pod's namespace, with `ndots:5`, so short names such
/// as `redis-0.redis-headless` go through the search path before being tried as they are.
pub(crate) fn write_etc(
    pod: &str,
    namespace: &str,
    zone: &str,
    nameserver: Ipv4Addr,
    ip_addr: Ipv4Addr,
    hostname: &str,
    fqdn: Option<&str>,
) -> Result<()> {
    let dir = etc_dir(pod);
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    let resolv = format!(
        "# Written by podns lab for pod {namespace}/{pod}, as the kubelet would.\n\
         nameserver {nameserver}\n\
         search {namespace}.svc.{zone} svc.{zone} {zone}\n\
         options ndots:5\n"
    );
    let names = match fqdn {
        Some(fqdn) => format!("{fqdn} {hostname}"),
        None => hostname.to_owned(),
    };
    let hosts = format!(
        "# Kubernetes-managed hosts file, written by podns lab.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         {ip_addr}\t{names}\n"
    );
    for (file, text) in [("resolv.conf", resolv), ("hosts", hosts)] {
        let path = dir.join(file);
        std::fs::write(&path, text)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    }
    Ok(())
}

/// Whether `/etc/netns` exists.
pub(crate) fn etc_root_exists() -> bool {
    Path::new(ETC_NETNS_DIR).exists()
}

/// Removes `/etc/netns` if it is empty: anything someone else put there stays.
pub(crate) fn remove_etc_root() {
    let _ = std::fs::remove_dir(ETC_NETNS_DIR);
}

/// Removes `/etc/netns/<pod>/`; absent is fine.
pub(crate) fn remove_etc(pod: &str) -> Result<()> {
    let dir = etc_dir(pod);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(LabError::io(format!("removing {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

/// Runs `ip ARGS…`, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| LabError::io("running ip", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            command: format!("ip {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}
