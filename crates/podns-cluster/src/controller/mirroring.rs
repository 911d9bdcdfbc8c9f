//! The EndpointSliceMirroring controller: legacy Endpoints → EndpointSlices.
//!
//! Rules (from `pkg/controller/endpointslicemirroring/`): an Endpoints object is mirrored when a
//! Service of the same namespace and name exists, has no selector, and the Endpoints is not
//! labelled `endpointslice.kubernetes.io/skip-mirror: "true"`. Per subset and address family:
//! one slice whose ports are the subset's (`name` `""` when unnamed, `protocol` `TCP` by
//! default), `addresses` → `ready: true`, `notReadyAddresses` → `ready: false`, `hostname`,
//! `nodeName` and `targetRef` kept; addresses that are not IPs are skipped. At most
//! [`MAX_ENDPOINTS_PER_SUBSET`] addresses are mirrored per subset, as the controller truncates.
//! Slices are named `<endpoints>-<5 chars>`, carry the Endpoints' labels plus
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
//! endpointslicemirroring-controller.k8s.io`, and are owned by the Endpoints.
//!
//! Endpoints of a Service *with* a selector are ignored: the Endpoints controller owns those.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::Resource;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};

use super::endpoint_slice::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, slice_metadata};
use super::ipam::ip_family;
use super::{display_key, key_of, owner_ref};

/// The mirroring controller's default `--mirroring-max-endpoints-per-subset`.
pub(crate) const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// `endpointslice.kubernetes.io/skip-mirror`: `"true"` opts an Endpoints out of mirroring.
const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// The mirroring controller's `managed-by` value.
const MANAGED_BY_MIRRORING: &str = "endpointslicemirroring-controller.k8s.io";

/// Mirrored slices of every Endpoints whose Service has no selector (`selectorless`: their
/// keys).
pub(crate) fn mirror<'a>(
    selectorless: &HashSet<(String, String)>,
    endpoints: impl Iterator<Item = &'a Endpoints>,
    taken: &mut HashSet<(String, String)>,
) -> Vec<EndpointSlice> {
    let mut slices = Vec::new();
    for ep in endpoints {
        let key = key_of(&ep.metadata);
        if !selectorless.contains(&key) {
            continue;
        }
        let skip = ep
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_SKIP_MIRROR))
            .is_some_and(|v| v == "true");
        if skip {
            continue;
        }
        for (subset_no, subset) in ep.subsets.iter().flatten().enumerate() {
            let ports: Vec<EndpointPort> = subset
                .ports
                .iter()
                .flatten()
                .map(|p| EndpointPort {
                    name: Some(p.name.clone().unwrap_or_default()),
                    port: Some(p.port),
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".to_owned())),
                    app_protocol: p.app_protocol.clone(),
                })
                .collect();
            let addresses = subset.addresses.iter().flatten().map(|a| (a, true)).chain(
                subset
                    .not_ready_addresses
                    .iter()
                    .flatten()
                    .map(|a| (a, false)),
            );
            let mut by_family: BTreeMap<&'static str, Vec<Endpoint>> = BTreeMap::new();
            let mut count = 0;
            for (address, ready) in addresses {
                let Ok(ip) = address.ip.parse::<IpAddr>() else {
                    tracing::warn!(endpoints = %display_key(&ep.metadata), ip = %address.ip, "skipping an address that is not an IP");
                    continue;
                };
                if count == MAX_ENDPOINTS_PER_SUBSET {
                    tracing::warn!(endpoints = %display_key(&ep.metadata), "more than {MAX_ENDPOINTS_PER_SUBSET} addresses in a subset; the rest are not mirrored");
                    break;
                }
                count += 1;
                by_family
                    .entry(ip_family(&ip))
                    .or_default()
                    .push(address_to_endpoint(address, ip, ready));
            }
            for (family, endpoints) in by_family {
                let seed = format!("{}/{}/{subset_no}/{family}", key.0, key.1);
                slices.push(new_slice(
                    ep,
                    family,
                    &seed,
                    endpoints,
                    ports.clone(),
                    taken,
                ));
            }
        }
    }
    slices
}

fn address_to_endpoint(address: &EndpointAddress, ip: IpAddr, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..EndpointConditions::default()
        }),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        node_name: address.node_name.clone().filter(|n| !n.is_empty()),
        target_ref: address.target_ref.clone(),
        ..Endpoint::default()
    }
}

fn new_slice(
    ep: &Endpoints,
    family: &str,
    seed: &str,
    endpoints: Vec<Endpoint>,
    ports: Vec<EndpointPort>,
    taken: &mut HashSet<(String, String)>,
) -> EndpointSlice {
    let (namespace, name) = key_of(&ep.metadata);
    let mut labels: BTreeMap<String, String> = ep
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != LABEL_MANAGED_BY && k != LABEL_SERVICE_NAME)
        .collect();
    labels.insert(LABEL_SERVICE_NAME.to_owned(), name.clone());
    labels.insert(LABEL_MANAGED_BY.to_owned(), MANAGED_BY_MIRRORING.to_owned());
    let owner = owner_ref(Endpoints::API_VERSION, Endpoints::KIND, &ep.metadata);
    EndpointSlice {
        metadata: slice_metadata(namespace, &name, labels, owner, seed, taken),
        address_type: family.to_owned(),
        endpoints,
        ports: Some(ports),
    }
}

/// Whether `svc` is one whose Endpoints are mirrored: it has no selector.
pub(crate) fn is_selectorless(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_none_or(BTreeMap::is_empty)
}
