//! Service views: the derived cluster reduced to what DNS needs.
//!
//! [`cluster_view`] is responsible for turning Services and EndpointSlices into
//! [`podns_view::ClusterView`]: the Service's kind from its spec (`type: ExternalName` →
//! ExternalName, `clusterIP: None` → Headless, else ClusterIP with `clusterIPs`), its ports, and
//! the endpoints of every slice labelled `kubernetes.io/service-name: <service>` in its
//! namespace, slices in name order. Conditions get the API's defaults (`ready` missing → true,
//! `serving` missing → `ready`, `terminating` missing → false). Unnamed ports (`""` or missing)
//! become `None`.
//!
//! It does not judge readiness for DNS (the zone does) and never fails: data DNS cannot use (an
//! address that is not an IP or not of the slice's `addressType`, a hostname that is not a DNS
//! label, an unknown protocol, an FQDN slice) is skipped with a `warn` naming the object.
//!
//! It also applies [`ViewConfig`], CoreDNS's object filters, so that standalone and cluster mode
//! filter alike: a namespace outside `namespaces` (or, with `namespace_labels`, without a
//! matching Namespace object) is absent with everything in it, and a Service whose labels do
//! not match `labels` is absent (CoreDNS: "only exposes the records for Kubernetes objects that
//! match this label selector"; it lists Services, EndpointSlices and Pods with the selector, so
//! the pods of `pods verified` are filtered by it too). Absent means NXDOMAIN, as CoreDNS's
//! `namespaceExposed` answers.
//!
//! The pods of [`ClusterView::pods`] are those CoreDNS's `pods verified` watch keeps: phase not
//! `Succeeded`, `Failed` or `Unknown` (its field selector), no `deletionTimestamp` (`toPod`),
//! with an IP. hostNetwork pods count, as in CoreDNS (their IP is the node's).
//!
//! [`standalone_view`] is what `podns serve` uses in standalone mode: the view of a lean
//! derivation, made without the derived objects (pods stay lean, slices are parsed as they
//! are made).
//!
//! [`IncrementalView`] gives the same views in cluster mode one change at a time: it keeps each
//! object parsed once (`parsed.rs`) and, per [`ClusterEvent`](crate::ClusterEvent), recomputes
//! only the Services the change touches ([`ViewDelta`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use podns_view::{ClusterView, PodView, ServiceKey, ServiceView};

use crate::controller::{
    ControllerConfig, ControllerError, DerivedCluster, Keyed, LeanPod, PodFacts, key_of, key_ref,
};
use crate::selector::LabelSelector;
use crate::store::ClusterStore;
use crate::store::service_name_of;
pub(crate) use parsed::Labels;
use parsed::{ParsedService, ParsedSlice};

mod incremental;
mod parsed;

pub use incremental::{IncrementalView, ViewDelta};

/// Which objects the view exposes: CoreDNS's `kubernetes` filters. `Default` exposes
/// everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewConfig {
    /// CoreDNS `namespaces NAMESPACE...`: only these namespaces are exposed; empty exposes all.
    pub namespaces: BTreeSet<String>,
    /// CoreDNS `labels EXPRESSION`: only Services (and, for `pods verified`, Pods) whose labels
    /// match are exposed; `None` exposes all.
    pub labels: Option<LabelSelector>,
    /// CoreDNS `namespace_labels EXPRESSION`: only namespaces whose Namespace object has
    /// matching labels are exposed (a namespace without a Namespace object is not); `None`
    /// exposes all.
    pub namespace_labels: Option<LabelSelector>,
}

// === impl ViewConfig ===

impl ViewConfig {
    /// Whether the namespace `ns` is exposed (CoreDNS `namespaceExposed`), given the Namespace
    /// objects (all of them, or just the one named `ns`).
    pub(crate) fn namespace_exposed<'a>(
        &self,
        ns: &str,
        mut objects: impl Iterator<Item = &'a Namespace>,
    ) -> bool {
        if !self.namespaces.is_empty() && !self.namespaces.contains(ns) {
            return false;
        }
        match &self.namespace_labels {
            None => true,
            Some(selector) => objects.any(|n| {
                n.metadata.name.as_deref() == Some(ns)
                    && selector.matches(n.metadata.labels.as_ref())
            }),
        }
    }

    /// Whether exposing a namespace depends on its Namespace object (`namespace_labels`).
    pub(crate) fn reads_namespace_objects(&self) -> bool {
        self.namespace_labels.is_some()
    }

    pub(crate) fn labels_match(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.labels.as_ref().is_none_or(|s| s.matches(labels))
    }

    /// [`Self::labels_match`] for labels in another form: `label` gives a key's value.
    fn labels_match_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.labels.as_ref().is_none_or(|s| s.matches_with(label))
    }

    /// [`Self::labels_match`] for parsed labels.
    pub(crate) fn parsed_labels_match(&self, labels: &parsed::Labels) -> bool {
        self.labels
            .as_ref()
            .is_none_or(|s| s.matches_with(|key| labels.get(key)))
    }
}

/// The DNS view of a derived cluster, filtered by `config`.
pub fn cluster_view(derived: &DerivedCluster, config: &ViewConfig) -> ClusterView {
    let namespaces = exposed_namespaces(
        &derived.namespaces,
        derived.services.iter().map(|s| key_ref(&s.metadata).0),
        derived.pods.iter().map(|p| key_ref(&p.metadata).0),
        config,
    );
    let pods = pod_views(
        derived
            .pods
            .iter()
            .filter(|p| config.labels_match(p.metadata.labels.as_ref()))
            .filter_map(pod_view),
        &namespaces,
    );
    let mut slices = SlicesByService::new();
    for slice in &derived.endpoint_slices {
        add_slice(&mut slices, slice);
    }
    let services = service_views(&derived.services, &slices, config, &namespaces);
    ClusterView {
        namespaces: namespaces.into_iter().collect(),
        services,
        pods,
    }
}

/// What `podns serve` builds its zone from in standalone mode: [`cluster_view`] of a lean
/// [`derive`](crate::controller::derive), its Services kept parsed and their views made one
/// at a time ([`Self::services`]), so the whole view never has to exist at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StandaloneView {
    /// [`ClusterView::namespaces`].
    pub namespaces: Vec<String>,
    /// [`ClusterView::pods`] when [`standalone_view`] was asked for them, else empty.
    pub pods: Vec<PodView>,
    /// What the derivation made, before any filter.
    pub counts: DerivedCounts,
    /// The exposed Services, by key.
    services: Vec<(ServiceKey, ParsedService)>,
    slices: SlicesByService,
}

/// How many objects a derivation made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DerivedCounts {
    /// Services (those an API server would have accepted).
    pub services: usize,
    /// Pods, given and synthesised.
    pub pods: usize,
    /// EndpointSlices: given, derived and mirrored.
    pub endpoint_slices: usize,
    /// Endpoints in those slices.
    pub endpoints: usize,
}

/// `cluster_view(&derive(store, controller)?, config)` with lean pods (whatever
/// [`ControllerConfig::lean_pods`] says), without the derived objects: each EndpointSlice is
/// parsed as the controller makes it and dropped, and the pods stay in their lean form
/// (`LeanPod`), never k8s-openapi `Pod`s, until their views are made (only `with_pods`: the
/// zone reads them under `pods verified` alone). At 100k pods that is the difference between
/// holding 100k `Pod`s and slices of 650 bytes an endpoint, and holding about a hundred bytes
/// a pod and the parsed slices.
pub fn standalone_view(
    store: &ClusterStore,
    controller: &ControllerConfig,
    config: &ViewConfig,
    with_pods: bool,
) -> Result<StandaloneView, ControllerError> {
    let mut slices = SlicesByService::new();
    let mut counts = DerivedCounts::default();
    // Every accepted Service's namespace (before any filter), and the Services the label
    // filter lets through, parsed; the namespace filter needs every namespace first.
    let mut service_namespaces: BTreeSet<String> = BTreeSet::new();
    let mut services: Vec<(ServiceKey, ParsedService)> = Vec::new();
    let derived = crate::controller::derive_lean(
        store,
        controller,
        &mut |slice| {
            counts.endpoint_slices += 1;
            counts.endpoints += slice.endpoints.len();
            add_slice(&mut slices, &slice);
        },
        &mut |svc| {
            counts.services += 1;
            let (namespace, name) = key_ref(&svc.metadata);
            if !service_namespaces.contains(namespace) {
                service_namespaces.insert(namespace.to_owned());
            }
            if config.labels_match(svc.metadata.labels.as_ref()) {
                services.push((ServiceKey::new(namespace, name), ParsedService::of(&svc)));
            }
        },
    )?;
    counts.pods = derived.pods.len();
    let namespaces = exposed_namespaces(
        &derived.namespaces,
        service_namespaces.iter().map(String::as_str),
        derived.pods.iter().map(|p| p.key().0),
        config,
    );
    let pods = if with_pods {
        pod_views(
            derived
                .pods
                .iter()
                .filter(|p| config.labels_match_with(|key| p.label(key)))
                .filter_map(LeanPod::view),
            &namespaces,
        )
    } else {
        Vec::new()
    };
    drop(derived.pods);
    services.retain(|(key, _)| namespaces.contains(&key.namespace));
    services.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(StandaloneView {
        namespaces: namespaces.into_iter().collect(),
        pods,
        counts,
        services,
        slices,
    })
}

// === impl StandaloneView ===

impl StandaloneView {
    /// The keys of the views [`Self::services`] makes, in the same order (a Service whose
    /// spec cannot be used has none: the zone must drop what it held for it).
    pub fn service_keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services
            .iter()
            .filter(|(_, parsed)| parsed.has_view())
            .map(|(key, _)| key)
    }

    /// [`ClusterView::services`], each view made when the iterator reaches it.
    pub fn services(&self) -> impl Iterator<Item = ServiceView> {
        self.services.iter().filter_map(|(key, parsed)| {
            let mut view = parsed.view(key)?;
            let by_key = (key.namespace.clone(), key.name.clone());
            for slice in self
                .slices
                .get(&by_key)
                .into_iter()
                .flat_map(ServiceSlices::iter)
            {
                slice.extend_views(&mut view.endpoints);
            }
            Some(view)
        })
    }

    /// [`Self::services`], giving up each Service's parsed slices once its view is made, so
    /// that what the views are made from shrinks as what they are given to grows.
    pub fn into_services(self) -> impl Iterator<Item = ServiceView> {
        let mut slices = self.slices;
        self.services.into_iter().filter_map(move |(key, parsed)| {
            let mut view = parsed.view(&key)?;
            let by_key = (key.namespace, key.name);
            for slice in slices
                .remove(&by_key)
                .into_iter()
                .flat_map(ServiceSlices::into_values)
            {
                slice.extend_views(&mut view.endpoints);
            }
            Some(view)
        })
    }

    /// The whole view at once.
    pub fn into_cluster_view(mut self) -> ClusterView {
        let namespaces = std::mem::take(&mut self.namespaces);
        let pods = std::mem::take(&mut self.pods);
        ClusterView {
            namespaces,
            services: self.into_services().collect(),
            pods,
        }
    }
}

/// Every namespace known to exist, before any filter (a Service left out by `labels` does not
/// make its namespace vanish), then only the exposed ones.
fn exposed_namespaces<'a>(
    objects: &'a [Namespace],
    service_namespaces: impl Iterator<Item = &'a str>,
    pod_namespaces: impl Iterator<Item = &'a str>,
    config: &ViewConfig,
) -> BTreeSet<String> {
    let mut known: BTreeSet<&str> = objects
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .chain(service_namespaces)
        .collect();
    known.extend(pod_namespaces);
    known
        .into_iter()
        .filter(|ns| config.namespace_exposed(ns, objects.iter()))
        .map(str::to_owned)
        .collect()
}

/// The pod views of exposed namespaces, by namespace and name.
fn pod_views(views: impl Iterator<Item = PodView>, namespaces: &BTreeSet<String>) -> Vec<PodView> {
    let mut views: Vec<PodView> = views
        .filter(|p| namespaces.contains(&p.namespace))
        .collect();
    views.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    views
}

/// Per Service (namespace, name), its slices in name order.
type SlicesByService = BTreeMap<(String, String), ServiceSlices>;

/// One Service's slices, sorted by name (a later slice of the same name replaces the earlier,
/// as in a map). A sorted `Vec`, not a `BTreeMap`: most Services have one slice, and a map
/// spent a 540-byte node on it (9 MB of the derivation's peak at 10k Services).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ServiceSlices(Vec<(Box<str>, ParsedSlice)>);

impl ServiceSlices {
    fn insert(&mut self, name: String, slice: ParsedSlice) {
        match self.0.binary_search_by(|(n, _)| (**n).cmp(name.as_str())) {
            Ok(at) => self.0[at].1 = slice,
            Err(at) => {
                // Exactly: a growing `Vec` starts at four entries, and at one slice per
                // Service the three spare ones were 2.1 MB of the derivation's peak at 10k.
                self.0.reserve_exact(1);
                self.0.insert(at, (name.into(), slice));
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &ParsedSlice> {
        self.0.iter().map(|(_, slice)| slice)
    }

    fn into_values(self) -> impl Iterator<Item = ParsedSlice> {
        self.0.into_iter().map(|(_, slice)| slice)
    }
}

/// Files `slice` under its Service (its `kubernetes.io/service-name` label), if it has one.
fn add_slice(slices: &mut SlicesByService, slice: &EndpointSlice) {
    let Some(service) = service_name_of(slice) else {
        return;
    };
    let (namespace, name) = key_of(&slice.metadata);
    slices
        .entry((namespace, service.to_owned()))
        .or_default()
        .insert(name, ParsedSlice::of(slice));
}

fn service_views(
    services: &[Service],
    slices: &SlicesByService,
    config: &ViewConfig,
    namespaces: &BTreeSet<String>,
) -> Vec<ServiceView> {
    let mut views: Vec<ServiceView> = services
        .iter()
        .filter(|svc| config.labels_match(svc.metadata.labels.as_ref()))
        .filter_map(|svc| {
            let key = key_of(&svc.metadata);
            if !namespaces.contains(&key.0) {
                return None;
            }
            let mut view =
                ParsedService::of(svc).view(&ServiceKey::new(key.0.as_str(), key.1.as_str()))?;
            for slice in slices.get(&key).into_iter().flat_map(ServiceSlices::iter) {
                slice.extend_views(&mut view.endpoints);
            }
            Some(view)
        })
        .collect();
    views.sort_by(|a, b| a.key.cmp(&b.key));
    views
}

/// A pod as CoreDNS's `pods verified` keeps it, or `None`: finished or unknown phase (its list
/// field selector `status.phase!=Succeeded,status.phase!=Failed,status.phase!=Unknown`), being
/// deleted (`toPod` drops pods with a `deletionTimestamp`), or without an IP. CoreDNS keeps
/// only `status.podIP`; we keep every `status.podIPs` entry, so a dual-stack pod's IPv6
/// address is verified too.
pub(crate) fn pod_view(pod: &Pod) -> Option<PodView> {
    let (namespace, name) = key_of(&pod.metadata);
    let status = pod.status.as_ref()?;
    if matches!(
        status.phase.as_deref(),
        Some("Succeeded" | "Failed" | "Unknown")
    ) || pod.metadata.deletion_timestamp.is_some()
    {
        return None;
    }
    let written: Vec<&str> = match status.pod_ips.as_deref() {
        Some(ips) if !ips.is_empty() => ips.iter().map(|ip| ip.ip.as_str()).collect(),
        _ => status.pod_ip.as_deref().into_iter().collect(),
    };
    let mut addresses: Vec<IpAddr> = Vec::new();
    for text in written.into_iter().filter(|ip| !ip.is_empty()) {
        match text.parse::<IpAddr>() {
            Ok(ip) if !addresses.contains(&ip) => addresses.push(ip),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(pod = %format_args!("{namespace}/{name}"), ip = text, "skipping a pod IP that is not an IP");
            }
        }
    }
    if addresses.is_empty() {
        return None;
    }
    Some(PodView {
        namespace,
        name,
        addresses,
    })
}

/// A host name as Kubernetes validates `externalName` (a DNS-1123 subdomain, ignoring case as
/// DNS does): at most 253 octets of dot-separated [`is_dns_label`]s.
pub(crate) fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.')
            .all(|label| is_dns_label(&label.to_ascii_lowercase()))
}

/// An RFC 1123 label as Kubernetes validates hostnames: 1–63 of `[a-z0-9-]`, alphanumeric at
/// both ends.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests;
