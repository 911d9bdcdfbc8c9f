//! What the controllers read and write of a pod, whatever form it is kept in.
//!
//! The pod IP allocator and the EndpointSlice controller are written once, against
//! [`PodFacts`]: full k8s-openapi [`Pod`]s implement it (`podns get`, `lab`), and so do the
//! compact [`super::lean::LeanPod`]s of a lean derivation (`serve`). Each method names the
//! `Pod` field it stands for, so a form that keeps less answers exactly as that `Pod` would.

use std::borrow::Cow;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ContainerPort, Pod, PodIP, PodSpec};

use super::{Keyed, key_ref};

/// A pod as the controllers see it. The key is `(namespace, name)`, the namespace defaulted as
/// [`super::key_of`] does.
pub(crate) trait PodFacts: Keyed {
    /// `metadata.labels[key]`.
    fn label(&self, key: &str) -> Option<&str>;
    /// `status.phase`.
    fn phase(&self) -> Option<&str>;
    /// `status.podIPs`, else `status.podIP`, unparsable ones skipped.
    fn ips(&self) -> Vec<IpAddr>;
    /// Whether `status.podIP` or `status.podIPs` is written at all (parsable or not).
    fn has_written_ip(&self) -> bool;
    /// Sets `status.podIP` to the first of `ips` and `status.podIPs` to all of them.
    fn set_ips(&mut self, ips: &[IpAddr]);
    /// Whether the `Ready` condition is `True`.
    fn is_ready(&self) -> bool;
    /// Whether `metadata.deletionTimestamp` is set.
    fn is_terminating(&self) -> bool;
    /// `metadata.uid`, once [`Self::ensure_uid`] ran.
    fn uid(&self) -> Option<Cow<'_, str>>;
    /// Gives the pod its [`super::stable_uid`] unless it has one.
    fn ensure_uid(&mut self);
    /// `spec.hostname`.
    fn hostname(&self) -> Option<&str>;
    /// `spec.subdomain`.
    fn subdomain(&self) -> Option<&str>;
    /// `spec.nodeName`.
    fn node_name(&self) -> Option<&str>;
    /// `podutil.FindPort` for a named `targetPort`: the first container port of that name and
    /// protocol, in containers, then restartable init containers (sidecars, `restartPolicy:
    /// Always`).
    fn find_port(&self, name: &str, protocol: &str) -> Option<i32>;
}

// === impl Pod ===

impl Keyed for Pod {
    fn key(&self) -> (&str, &str) {
        key_ref(&self.metadata)
    }
}

impl PodFacts for Pod {
    fn label(&self, key: &str) -> Option<&str> {
        self.metadata.labels.as_ref()?.get(key).map(String::as_str)
    }

    fn phase(&self) -> Option<&str> {
        self.status.as_ref()?.phase.as_deref()
    }

    fn ips(&self) -> Vec<IpAddr> {
        let Some(status) = self.status.as_ref() else {
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

    fn has_written_ip(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
                || s.pod_ips.as_ref().is_some_and(|ips| !ips.is_empty())
        })
    }

    fn set_ips(&mut self, ips: &[IpAddr]) {
        let status = self.status.get_or_insert_default();
        status.pod_ip = ips.first().map(ToString::to_string);
        status.pod_ips = Some(ips.iter().map(|ip| PodIP { ip: ip.to_string() }).collect());
    }

    fn is_ready(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True")
    }

    fn is_terminating(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }

    fn uid(&self) -> Option<Cow<'_, str>> {
        self.metadata.uid.as_deref().map(Cow::Borrowed)
    }

    fn ensure_uid(&mut self) {
        super::ensure_uid("Pod", &mut self.metadata);
    }

    fn hostname(&self) -> Option<&str> {
        self.spec.as_ref()?.hostname.as_deref()
    }

    fn subdomain(&self) -> Option<&str> {
        self.spec.as_ref()?.subdomain.as_deref()
    }

    fn node_name(&self) -> Option<&str> {
        self.spec.as_ref()?.node_name.as_deref()
    }

    fn find_port(&self, name: &str, protocol: &str) -> Option<i32> {
        search_order(self.spec.as_ref()?)
            .find(|p| {
                p.name.as_deref() == Some(name)
                    && p.protocol.as_deref().unwrap_or("TCP") == protocol
            })
            .map(|p| p.container_port)
    }
}

/// The container ports in the order `podutil.FindPort` looks: those of the containers, then
/// those of restartable init containers (sidecars, `restartPolicy: Always`).
pub(crate) fn search_order(spec: &PodSpec) -> impl Iterator<Item = &ContainerPort> {
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
}
