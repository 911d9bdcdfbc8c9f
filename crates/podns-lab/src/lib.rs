//! Network-namespace "pods": the manifests' pods running on this machine, found through podns.
//!
//! podns-lab is responsible for turning what podns derives from manifests into something that
//! runs: one network namespace per pod with the pod's address, the pod's hostname and a
//! kubelet-style `resolv.conf` pointing at a podns DNS server, and the pod's container command
//! running inside it. StatefulSet pods start in ordinal order, each once the previous is ready,
//! and stop in reverse. It reaches the DNS server only over the network (it runs `podns serve`
//! as a process), and leaves DNS itself to the other crates.
//!
//! ```text
//! manifests ─▶ podns_cluster::derive ─▶ plan (LabPod: ip, owner, hostname, command, port)
//!                                          │
//!                                          ▼
//!   net (ip netns, bridge, veth, /etc/netns) ◀── Lab::up / restart / delete / down ──▶ process
//!                                          │                                   (pods, podns serve)
//!                                          ▼
//!                     state.json: everything made, so `down` removes exactly that
//! ```
//!
//! Start from [`Lab::up`] with a [`LabConfig`]; [`Lab::open`] finds a lab that is up (from
//! another process) for [`Lab::restart`], [`Lab::delete`] and [`Lab::down`]. Invariants:
//! - the root network namespace is never changed: the bridge and the DNS server live in the
//!   lab namespace `podns-<name>`, and no namespace has a route off the machine or NAT;
//! - nothing that exists before `up` is touched (`up` refuses when a namespace or
//!   `/etc/netns/<pod>` it would make exists), and everything made is recorded before it is
//!   made;
//! - DNS follows the lab: a pod is published when it is ready and unpublished before it stops.

mod error;
mod lab;
mod net;
pub mod plan;
pub mod probe;
mod process;

pub use error::{LabError, Result};
pub use lab::{DEFAULT_STATE_ROOT, Lab, LabConfig, LabState, which};
pub use plan::{LabPod, Network, Owner};
pub use probe::Probe;
pub use process::{ProcessId, is_alive};
