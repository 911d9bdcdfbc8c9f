//! The incremental view against the full one: after every event of a random sequence,
//! `IncrementalView` holds exactly `cluster_view(&observed(store), config)`, and its deltas
//! carry a consumer from the previous view to the next, naming only what changed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Namespace, Pod, PodIP, PodStatus, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use proptest::prelude::*;

use super::*;
use crate::controller::observed;
use crate::selector::LabelSelector;
use crate::store::{SERVICE_NAME_LABEL, service_name_of};
use crate::view::cluster_view;

const NAMESPACES: [&str; 3] = ["a", "b", "c"];
const SERVICES: [&str; 3] = ["s0", "s1", "s2"];

fn meta(ns: Option<&str>, name: &str, labels: Vec<(&str, &str)>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: ns.map(str::to_owned),
        labels: (!labels.is_empty()).then(|| {
            labels
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<BTreeMap<_, _>>()
        }),
        ..ObjectMeta::default()
    }
}

fn namespace() -> impl Strategy<Value = Object> {
    (
        0..3usize,
        prop::option::of(prop::sample::select(vec!["prod", "dev"])),
    )
        .prop_map(|(n, env)| {
            let labels = env.map(|e| vec![("env", e)]).unwrap_or_default();
            Object::from(Namespace {
                metadata: meta(None, NAMESPACES[n], labels),
                ..Namespace::default()
            })
        })
}

fn tier() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec!["x", "y"]))
}

fn service() -> impl Strategy<Value = Object> {
    (0..3usize, 0..3usize, 0..4u8, tier(), 1..3u8).prop_map(|(n, s, kind, tier, port)| {
        let labels = tier.map(|t| vec![("tier", t)]).unwrap_or_default();
        let mut spec = ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: i32::from(port) * 80,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        };
        match kind {
            0 => spec.cluster_ip = Some("None".to_owned()),
            1 => spec.cluster_ip = Some(format!("10.96.0.{}", s + 1)),
            2 => {
                spec.type_ = Some("ExternalName".to_owned());
                spec.external_name = Some("ext.example.".to_owned());
            }
            // ExternalName without a name: unusable, no view.
            _ => spec.type_ = Some("ExternalName".to_owned()),
        }
        // `None` namespace: the store puts it in `default`, a fourth namespace.
        let ns = (n < 3).then_some(NAMESPACES[n]);
        Object::from(Service {
            metadata: meta(ns, SERVICES[s], labels),
            spec: Some(spec),
            status: None,
        })
    })
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    (1..6u8, any::<bool>(), prop::option::of(0..3u8)).prop_map(|(ip, ready, host)| Endpoint {
        addresses: vec![format!("10.244.0.{ip}")],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..EndpointConditions::default()
        }),
        hostname: host.map(|h| format!("h{h}")),
        ..Endpoint::default()
    })
}

fn slice() -> impl Strategy<Value = Object> {
    (
        0..3usize,
        0..4u8,
        prop::option::of(0..3usize),
        prop::collection::vec(endpoint(), 0..3),
        8080..8082i32,
    )
        .prop_map(|(n, name, owner, endpoints, port)| {
            let labels = owner
                .map(|s| vec![(SERVICE_NAME_LABEL, SERVICES[s])])
                .unwrap_or_default();
            Object::from(EndpointSlice {
                metadata: meta(Some(NAMESPACES[n]), &format!("e{name}"), labels),
                address_type: "IPv4".to_owned(),
                endpoints,
                ports: Some(vec![EndpointPort {
                    name: Some("http".to_owned()),
                    port: Some(port),
                    ..EndpointPort::default()
                }]),
            })
        })
}

fn pod() -> impl Strategy<Value = Object> {
    (
        0..3usize,
        0..3u8,
        prop::sample::select(vec!["Running", "Pending", "Succeeded"]),
        prop::option::of(1..4u8),
        tier(),
        any::<bool>(),
    )
        .prop_map(|(n, name, phase, ip, tier, deleting)| {
            let labels = tier.map(|t| vec![("tier", t)]).unwrap_or_default();
            let mut metadata = meta(Some(NAMESPACES[n]), &format!("p{name}"), labels);
            if deleting {
                metadata.deletion_timestamp = Some(Time(Default::default()));
            }
            Object::from(Pod {
                metadata,
                spec: None,
                status: Some(PodStatus {
                    phase: Some(phase.to_owned()),
                    pod_ips: ip.map(|ip| {
                        vec![PodIP {
                            ip: format!("10.244.1.{ip}"),
                        }]
                    }),
                    ..PodStatus::default()
                }),
            })
        })
}

fn object() -> impl Strategy<Value = Object> {
    prop_oneof![namespace(), service(), slice(), slice(), pod()]
}

fn event() -> impl Strategy<Value = ClusterEvent> {
    let delete = (0..4usize, 0..3usize, 0..4u8).prop_map(|(kind, n, i)| {
        let r = match kind {
            0 => ObjectRef::new(Kind::Namespace, "", NAMESPACES[n]),
            1 => ObjectRef::new(Kind::Service, NAMESPACES[n], SERVICES[usize::from(i) % 3]),
            2 => ObjectRef::new(Kind::EndpointSlice, NAMESPACES[n], format!("e{i}")),
            _ => ObjectRef::new(Kind::Pod, NAMESPACES[n], format!("p{i}")),
        };
        ClusterEvent::Delete(r)
    });
    let relist = |kind: Kind, objects: BoxedStrategy<Object>| {
        prop::collection::vec(objects, 0..6)
            .prop_map(move |objects| ClusterEvent::ResyncKind { kind, objects })
    };
    prop_oneof![
        8 => object().prop_map(ClusterEvent::Apply),
        3 => delete,
        1 => relist(Kind::Namespace, namespace().boxed()),
        1 => relist(Kind::Service, service().boxed()),
        1 => relist(Kind::EndpointSlice, slice().boxed()),
        1 => relist(Kind::Pod, pod().boxed()),
        1 => prop::collection::vec(object(), 0..12).prop_map(ClusterEvent::Resync),
    ]
}

fn config() -> impl Strategy<Value = ViewConfig> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(namespaces, labels, ns_labels)| {
        ViewConfig {
            namespaces: if namespaces {
                ["a".to_owned(), "b".to_owned()].into()
            } else {
                Default::default()
            },
            labels: labels.then(|| LabelSelector::parse("tier=x").unwrap()),
            namespace_labels: ns_labels.then(|| LabelSelector::parse("env=prod").unwrap()),
        }
    })
}

/// Applies `delta` to a consumer's copy of the services (views from `inc`), checking it
/// names only changes.
fn follow(
    services: &mut BTreeMap<ServiceKey, ServiceView>,
    inc: &IncrementalView,
    delta: &ViewDelta,
) {
    for key in &delta.removed {
        assert!(
            services.remove(key).is_some(),
            "removed {key}, which was not there"
        );
        assert_eq!(inc.service(key), None, "removed {key} still has a view");
    }
    for key in &delta.upserted {
        let view = inc.service(key).expect("an upserted Service has a view");
        let old = services.insert(key.clone(), view.clone());
        assert_ne!(old.as_ref(), Some(&view), "upserted {key} unchanged");
    }
}

/// The view's slice index and counts agree with a scan of the store's slices.
fn check_index(inc: &IncrementalView, store: &ClusterStore) {
    for ns in NAMESPACES {
        for svc in SERVICES {
            let indexed: Vec<&str> = inc
                .services
                .get(&ServiceKey::new(ns, svc))
                .into_iter()
                .flat_map(|entry| &entry.slices)
                .map(|name| &**name)
                .collect();
            let scanned: Vec<String> = store
                .endpoint_slices()
                .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
                .filter(|s| service_name_of(s) == Some(svc))
                .map(|s| s.metadata.name.unwrap())
                .collect();
            assert_eq!(indexed, scanned, "slices of {ns}/{svc}");
        }
    }
    assert!(
        inc.services.values().all(|entry| !entry.is_empty()),
        "an entry with nothing in it is kept"
    );
    assert_eq!(
        inc.services
            .values()
            .filter(|e| e.service.is_some())
            .count(),
        store.services().count()
    );
    assert_eq!(
        inc.service_count(),
        inc.services
            .values()
            .filter(|e| e.exposed.is_some())
            .count()
    );
    assert_eq!(inc.slice_count(), store.endpoint_slices().count());
    assert_eq!(inc.pod_count(), store.pods().count());
    let usable: usize = store
        .endpoint_slices()
        .filter(|s| service_name_of(s).is_some())
        .map(|s| {
            s.endpoints
                .iter()
                .filter(|e| !e.addresses.is_empty())
                .count()
        })
        .sum();
    assert_eq!(inc.endpoint_count(), usable);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn deltas_follow_the_full_view(
        config in config(),
        events in prop::collection::vec(event(), 1..40),
        next_config in config(),
    ) {
        let mut inc = IncrementalView::new(config.clone());
        // The same events applied to a plain store: what the full view is made from.
        let mut store = ClusterStore::new();
        let mut services = BTreeMap::new();
        let mut previous = ClusterView::default();
        let mut merged = ViewDelta::default();
        for event in events {
            store.apply_event(event.clone());
            let delta = inc.apply(event);
            let full = cluster_view(&observed(&store), &config);
            prop_assert_eq!(&inc.view(), &full);
            follow(&mut services, &inc, &delta);
            prop_assert_eq!(services.values().cloned().collect::<Vec<_>>(), full.services.clone());
            prop_assert_eq!(delta.namespaces_changed, previous.namespaces != full.namespaces);
            prop_assert_eq!(delta.pods_changed, previous.pods != full.pods);
            check_index(&inc, &store);
            merged.merge(delta);
            previous = full;
        }

        // The merged deltas take an empty consumer to the same place.
        let mut from_empty = BTreeMap::new();
        for key in &merged.removed {
            from_empty.remove(key);
        }
        for key in &merged.upserted {
            from_empty.insert(key.clone(), inc.service(key).expect("exposed"));
        }
        prop_assert_eq!(&from_empty.into_values().collect::<Vec<_>>(), &previous.services);

        // A store handed over whole gives the same views.
        let rebuilt = IncrementalView::from_store(&store, config);
        prop_assert_eq!(&rebuilt.view(), &previous);

        // New filters: the delta takes the consumer to the new full view.
        let delta = inc.reconfigure(next_config.clone());
        let full = cluster_view(&observed(&store), &next_config);
        prop_assert_eq!(&inc.view(), &full);
        follow(&mut services, &inc, &delta);
        prop_assert_eq!(&services.into_values().collect::<Vec<_>>(), &full.services);
        prop_assert_eq!(delta.namespaces_changed, previous.namespaces != full.namespaces);
        prop_assert_eq!(delta.pods_changed, previous.pods != full.pods);
    }
}

fn slice_of(name: &str, service: &str, ip: u8) -> Object {
    Object::from(EndpointSlice {
        metadata: meta(Some("a"), name, vec![(SERVICE_NAME_LABEL, service)]),
        address_type: "IPv4".to_owned(),
        endpoints: vec![Endpoint {
            addresses: vec![format!("10.244.0.{ip}")],
            ..Endpoint::default()
        }],
        ports: None,
    })
}

fn headless(name: &str) -> Object {
    Object::from(Service {
        metadata: meta(Some("a"), name, vec![]),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

#[test]
fn a_slice_change_touches_its_service_only() {
    let mut inc = IncrementalView::new(ViewConfig::default());
    let first = inc.apply(ClusterEvent::Resync(vec![
        headless("web"),
        headless("db"),
        slice_of("web-1", "web", 1),
        slice_of("db-1", "db", 2),
    ]));
    assert_eq!(first.upserted.len(), 2);
    assert!(first.namespaces_changed);

    let delta = inc.apply(ClusterEvent::Apply(slice_of("web-1", "web", 3)));
    assert_eq!(
        delta
            .upserted
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["a/web"]
    );
    assert!(delta.removed.is_empty() && !delta.namespaces_changed && !delta.pods_changed);

    // Relabelled to the other Service: both change.
    let delta = inc.apply(ClusterEvent::Apply(slice_of("web-1", "db", 3)));
    assert_eq!(
        delta
            .upserted
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["a/db", "a/web"]
    );
    assert_eq!(
        inc.service(&ServiceKey::new("a", "db"))
            .unwrap()
            .endpoints
            .len(),
        2
    );
    assert!(
        inc.service(&ServiceKey::new("a", "web"))
            .unwrap()
            .endpoints
            .is_empty()
    );

    // The same object again: nothing.
    assert!(
        inc.apply(ClusterEvent::Apply(slice_of("web-1", "db", 3)))
            .is_empty()
    );

    let delta = inc.apply(ClusterEvent::Delete(ObjectRef::new(
        Kind::Service,
        "a",
        "web",
    )));
    assert_eq!(delta.removed, [ServiceKey::new("a", "web")]);
    assert!(!delta.namespaces_changed, "db keeps the namespace known");
}

#[test]
fn a_streamed_relist_changes_nothing_until_it_is_done() {
    let mut inc = IncrementalView::new(ViewConfig::default());
    inc.apply(ClusterEvent::Resync(vec![
        headless("web"),
        headless("db"),
        slice_of("web-1", "web", 1),
    ]));
    let web = ServiceKey::new("a", "web");
    let endpoints = |inc: &IncrementalView| {
        inc.service(&web).map(|v| {
            v.endpoints
                .iter()
                .map(|e| e.addresses[0])
                .collect::<Vec<_>>()
        })
    };
    let before = endpoints(&inc);

    // An unfinished relist, then a new one: the first one's items are dropped.
    assert!(
        inc.apply(ClusterEvent::RelistStart(Kind::EndpointSlice))
            .is_empty()
    );
    assert!(
        inc.apply(ClusterEvent::RelistItems(vec![slice_of("web-9", "web", 9)]))
            .is_empty()
    );
    assert!(
        inc.apply(ClusterEvent::RelistStart(Kind::EndpointSlice))
            .is_empty()
    );
    assert!(
        inc.apply(ClusterEvent::RelistItems(vec![slice_of("web-1", "web", 2)]))
            .is_empty()
    );
    assert!(
        inc.apply(ClusterEvent::RelistItems(vec![slice_of("db-1", "db", 3)]))
            .is_empty()
    );
    assert_eq!(endpoints(&inc), before, "nothing applied before RelistDone");

    let delta = inc.apply(ClusterEvent::RelistDone(Kind::EndpointSlice));
    assert_eq!(delta.upserted, [ServiceKey::new("a", "db"), web.clone()]);
    assert_eq!(endpoints(&inc), Some(vec!["10.244.0.2".parse().unwrap()]));
    assert_eq!(
        inc.slice_count(),
        2,
        "web-9 of the abandoned relist is not there"
    );

    // A whole list supersedes a streamed one in progress: its items never land.
    inc.apply(ClusterEvent::RelistStart(Kind::EndpointSlice));
    inc.apply(ClusterEvent::RelistItems(vec![slice_of("late", "web", 7)]));
    inc.apply(ClusterEvent::ResyncKind {
        kind: Kind::EndpointSlice,
        objects: vec![slice_of("web-1", "web", 2), slice_of("db-1", "db", 3)],
    });
    assert!(
        inc.apply(ClusterEvent::RelistDone(Kind::EndpointSlice))
            .removed
            .is_empty()
    );
    assert_eq!(
        inc.slice_count(),
        0,
        "a RelistDone without its items is an empty relist"
    );
    inc.apply(ClusterEvent::ResyncKind {
        kind: Kind::EndpointSlice,
        objects: vec![slice_of("web-1", "web", 2), slice_of("db-1", "db", 3)],
    });
    assert_eq!(inc.slice_count(), 2);

    // A relist of Services that leaves one out removes it; slices are untouched.
    inc.apply(ClusterEvent::RelistStart(Kind::Service));
    inc.apply(ClusterEvent::RelistItems(vec![headless("web")]));
    let delta = inc.apply(ClusterEvent::RelistDone(Kind::Service));
    assert_eq!(delta.removed, [ServiceKey::new("a", "db")]);
    assert!(delta.upserted.is_empty());
    assert_eq!(inc.slice_count(), 2);
}
