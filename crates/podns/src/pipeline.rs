//! The stages after a source: cluster store → controllers → service views → zone snapshot.
//!
//! `Pipeline` owns the cluster state and the configurations of the stages after it. In
//! standalone mode it holds the manifests and runs the controllers a cluster would, over the
//! whole set on every change (pod and virtual IPs depend on the whole set). In cluster mode it
//! holds what the API server has, taken as it is, in an [`IncrementalView`]: each event yields
//! only the Services it touches, and only those are rebuilt in the zone, so a publish costs
//! what changed. Either way a rejected build returns an error and the caller keeps serving the
//! previous snapshot (design decision 6).

use anyhow::Context as _;
use podns_cluster::{
    ClusterEvent, ClusterStore, ControllerConfig, DerivedCluster, IncrementalView, Object,
    ViewConfig, ViewDelta,
};
use podns_view::ServiceKey;
use podns_zone::{PodMode, ZoneBuilder, ZoneSnapshot};

use crate::settings::Settings;

/// Where the service views come from.
enum State {
    /// Manifests, and podns's own controllers over them.
    Standalone {
        store: ClusterStore,
        controller: ControllerConfig,
        view: ViewConfig,
        /// Serving (lean pods) empties the store once a derivation has read it
        /// ([`Pipeline::build`]): a rebuild then needs the manifests read again
        /// ([`Pipeline::needs_manifests`]).
        released: bool,
    },
    /// An API server's objects, kept with their views up to date per event.
    Observed {
        view: Box<IncrementalView>,
        /// What changed since the last build.
        pending: ViewDelta,
        /// The zone builder must be given the whole view (first build, new zone options).
        full: bool,
    },
}

/// The stages between a source and a zone snapshot.
pub(crate) struct Pipeline {
    state: State,
    /// Long-lived, so a publish costs what changed: Services whose views are unchanged are
    /// kept as they are and only touched shards are copied.
    zone: ZoneBuilder,
}

/// What one run of the pipeline produced.
pub(crate) struct Derived {
    /// The objects as a cluster would hold them after its controllers ran (standalone; empty
    /// in cluster mode, where the API server has them).
    pub(crate) cluster: DerivedCluster,
    /// How much the zone holds.
    pub(crate) counts: Counts,
    /// The zone, ready to publish.
    pub(crate) snapshot: ZoneSnapshot,
}

impl Pipeline {
    /// A pipeline that runs the standalone controllers over manifests, with full pods (what
    /// `podns get` prints).
    pub(crate) fn standalone(settings: &Settings) -> Self {
        Self {
            state: State::Standalone {
                store: ClusterStore::default(),
                controller: settings.controller.clone(),
                view: settings.view.clone(),
                released: false,
            },
            zone: ZoneBuilder::new(settings.zone.clone()),
        }
    }

    /// [`Self::standalone`] for serving: the derived pods keep only what DNS reads
    /// ([`ControllerConfig::lean_pods`]), for the same zone at a fraction of the memory, and
    /// the manifests are not kept once the zone is built from them: the zone is the last
    /// good state, and the files are where the next one comes from. At 10k Services that is
    /// 9.3 MB less, during the zone build (the process's peak) and after.
    pub(crate) fn serving(settings: &Settings) -> Self {
        let mut pipeline = Self::standalone(settings);
        if let State::Standalone { controller, .. } = &mut pipeline.state {
            controller.lean_pods = true;
        }
        pipeline
    }

    /// Whether the next build needs the manifests given again ([`Self::replace_store`]): the
    /// store was emptied after the last derivation. A configuration change needs this before
    /// it can rebuild.
    pub(crate) fn needs_manifests(&self) -> bool {
        matches!(self.state, State::Standalone { released: true, .. })
    }

    /// A pipeline over objects from an API server.
    pub(crate) fn observed(settings: &Settings) -> Self {
        Self {
            state: State::Observed {
                view: Box::new(IncrementalView::new(settings.view.clone())),
                pending: ViewDelta::default(),
                full: true,
            },
            zone: ZoneBuilder::new(settings.zone.clone()),
        }
    }

    /// Takes new settings (a config reload); the cluster state is kept, the next build uses
    /// them.
    pub(crate) fn reconfigure(&mut self, settings: &Settings) {
        let new_zone = self.zone.config() != &settings.zone;
        if new_zone {
            // Different zone options change most records: start from a fresh builder.
            self.zone = ZoneBuilder::new(settings.zone.clone());
        }
        match &mut self.state {
            State::Standalone {
                controller, view, ..
            } => {
                *controller = ControllerConfig {
                    lean_pods: controller.lean_pods,
                    ..settings.controller.clone()
                };
                view.clone_from(&settings.view);
            }
            State::Observed {
                view,
                pending,
                full,
            } => {
                if view.config() != &settings.view {
                    pending.merge(view.reconfigure(settings.view.clone()));
                }
                *full |= new_zone;
            }
        }
    }

    /// Replaces the cluster state with a complete object set and derives everything from it.
    pub(crate) fn resync(&mut self, objects: Vec<Object>) -> anyhow::Result<Derived> {
        self.apply(ClusterEvent::Resync(objects));
        self.build()
    }

    /// Replaces the whole state by a loaded manifest set ([`podns_cluster::load_store`]);
    /// whether anything changed. The store moves in as it is, its objects still packed.
    pub(crate) fn replace_store(&mut self, next: ClusterStore) -> bool {
        match &mut self.state {
            State::Standalone {
                store, released, ..
            } => {
                let changed = *released || *store != next;
                *store = next;
                *released = false;
                changed
            }
            State::Observed { .. } => self.apply(ClusterEvent::Resync(next.iter().collect())),
        }
    }

    /// Applies one change from a source; whether anything the zone is built from changed.
    pub(crate) fn apply(&mut self, event: ClusterEvent) -> bool {
        match &mut self.state {
            State::Standalone {
                store, released, ..
            } => {
                // Events build on the store; after a release only a whole set can follow
                // (and it changes what the zone holds, even if it is empty).
                let was_released = std::mem::take(released);
                debug_assert!(
                    !was_released || matches!(event, ClusterEvent::Resync(_)),
                    "an incremental event applied to a released store"
                );
                store.apply_event(event) || was_released
            }
            State::Observed { view, pending, .. } => {
                let delta = view.apply(event);
                let changed = !delta.is_empty();
                pending.merge(delta);
                changed
            }
        }
    }

    /// Builds the zone from the current state and takes a snapshot of it.
    pub(crate) fn build(&mut self) -> anyhow::Result<Derived> {
        let (cluster, objects) = match &mut self.state {
            State::Standalone {
                store,
                controller,
                view,
                released,
            } => {
                if *released {
                    anyhow::bail!(
                        "the manifests were released after the last build; read them again first"
                    );
                }
                if controller.lean_pods {
                    // Serving keeps only the snapshot: the derived objects are never all made
                    // (the pods stay lean, each slice is parsed as it is made) and the
                    // Services go to the zone one view at a time, so neither they nor the whole
                    // view are in memory beside the zone.
                    let with_pods = self.zone.config().pods == PodMode::Verified;
                    let derived =
                        podns_cluster::standalone_view(store, controller, view, with_pods)
                            .context("deriving pods and endpoint slices")?;
                    // Everything the zone is built from is in `derived` now. A failed
                    // derivation (above) keeps the store for a reconfigured retry.
                    *store = ClusterStore::default();
                    *released = true;
                    self.zone.set_namespaces(&derived.namespaces);
                    self.zone.set_pods(&derived.pods);
                    // `replace_all`, one view at a time: the Services the zone holds that
                    // are gone go first (both key lists are sorted; the zone's list is the
                    // one copy of them kept between builds).
                    let gone: Vec<ServiceKey> = {
                        let mut incoming = derived.service_keys().peekable();
                        self.zone
                            .service_keys()
                            .filter(|&key| {
                                while incoming.next_if(|next| *next < key).is_some() {}
                                incoming.peek() != Some(&key)
                            })
                            .cloned()
                            .collect()
                    };
                    for key in &gone {
                        self.zone.remove_service(key);
                    }
                    let counts = derived.counts;
                    let namespaces = derived.namespaces.len();
                    for service in derived.into_services() {
                        self.zone.upsert_service(&service);
                    }
                    let objects = ObjectCounts {
                        namespaces,
                        services: counts.services,
                        pods: counts.pods,
                        endpoint_slices: counts.endpoint_slices,
                        endpoints: counts.endpoints,
                    };
                    (DerivedCluster::default(), objects)
                } else {
                    let cluster = podns_cluster::derive(store, controller)
                        .context("deriving pods and endpoint slices")?;
                    let view = podns_cluster::cluster_view(&cluster, view);
                    let objects = ObjectCounts {
                        namespaces: view.namespaces.len(),
                        services: cluster.services.len(),
                        pods: cluster.pods.len(),
                        endpoint_slices: cluster.endpoint_slices.len(),
                        endpoints: cluster
                            .endpoint_slices
                            .iter()
                            .map(|s| s.endpoints.len())
                            .sum(),
                    };
                    self.zone.replace_all(&view);
                    (cluster, objects)
                }
            }
            State::Observed {
                view,
                pending,
                full,
            } => {
                let delta = std::mem::take(pending);
                // A full build starts from an empty builder (the first one, or new zone
                // options): upserting every Service one view at a time is `replace_all`
                // without a copy of the whole view in memory.
                let full = std::mem::take(full);
                if !full {
                    for key in &delta.removed {
                        self.zone.remove_service(key);
                    }
                }
                if full || delta.namespaces_changed {
                    let namespaces: Vec<String> = view.namespaces().map(str::to_owned).collect();
                    self.zone.set_namespaces(&namespaces);
                }
                if full || delta.pods_changed {
                    let pods: Vec<_> = view.pods().cloned().collect();
                    self.zone.set_pods(&pods);
                }
                if full {
                    for service in view.services() {
                        self.zone.upsert_service(&service);
                    }
                } else {
                    for service in delta.upserted.iter().filter_map(|key| view.service(key)) {
                        self.zone.upsert_service(&service);
                    }
                }
                let objects = ObjectCounts {
                    namespaces: view.namespaces().len(),
                    services: view.service_count(),
                    pods: view.pod_count(),
                    endpoint_slices: view.slice_count(),
                    endpoints: view.endpoint_count(),
                };
                (DerivedCluster::default(), objects)
            }
        };
        let snapshot = self.zone.snapshot();
        for skipped in snapshot.skipped() {
            tracing::warn!("not in DNS: {skipped}");
        }
        let counts = Counts {
            namespaces: objects.namespaces,
            services: objects.services,
            pods: objects.pods,
            endpoint_slices: objects.endpoint_slices,
            endpoints: objects.endpoints,
            names: snapshot.name_count(),
            serial: snapshot.serial(),
        };
        Ok(Derived {
            cluster,
            counts,
            snapshot,
        })
    }

    /// The zone's records as RRsets (for `podns get records`).
    pub(crate) fn rrsets(&self) -> Vec<podns_zone::RRset> {
        self.zone.rrsets()
    }
}

/// The objects a build was made from (standalone: namespaces as the view names them).
struct ObjectCounts {
    namespaces: usize,
    services: usize,
    pods: usize,
    endpoint_slices: usize,
    endpoints: usize,
}

impl Derived {
    /// The snapshot alone, dropping the objects it was built from.
    pub(crate) fn into_snapshot(self) -> ZoneSnapshot {
        self.snapshot
    }
}

/// How much a zone holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counts {
    pub(crate) namespaces: usize,
    pub(crate) services: usize,
    pub(crate) pods: usize,
    pub(crate) endpoint_slices: usize,
    pub(crate) endpoints: usize,
    pub(crate) names: usize,
    pub(crate) serial: u32,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} namespaces, {} services, {} pods, {} endpoint slices, {} endpoints",
            self.namespaces, self.services, self.pods, self.endpoint_slices, self.endpoints
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cli::ClusterArgs;

    fn examples(names: &[&str]) -> Vec<Object> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let dirs: Vec<PathBuf> = names.iter().map(|n| root.join(n)).collect();
        podns_cluster::load(&dirs).unwrap()
    }

    /// Serving (lean pods, Services handed to the zone one view at a time, with removals
    /// tracked by the pipeline) publishes the zone a full standalone build does, through
    /// manifest changes that add, change and remove Services, with and without pod records.
    #[test]
    fn serving_builds_the_zone_a_full_derivation_does() {
        let sets = [
            vec!["web-statefulset", "nginx-headless-service", "not-ready"],
            vec!["web-statefulset", "dual-stack"],
            vec![
                "redis-statefulset",
                "cassandra",
                "manual-endpoints",
                "external-name",
            ],
            vec![],
            vec!["web-statefulset", "nginx-deployment"],
        ];
        for pods in [PodMode::Disabled, PodMode::Verified] {
            let mut settings = Settings::resolve(&ClusterArgs::default(), None, None).unwrap();
            settings.zone.pods = pods;
            settings.controller.nodes = vec!["node-1".to_owned(), "node-2".to_owned()];
            // dual-stack needs a pod and a service CIDR of each family.
            settings.controller.pod_cidrs = vec![
                "10.244.0.0/16".parse().unwrap(),
                "fd00:10:244::/56".parse().unwrap(),
            ];
            settings.controller.service_cidrs = vec![
                "10.96.0.0/12".parse().unwrap(),
                "fd00:10:96::/112".parse().unwrap(),
            ];
            let mut full = Pipeline::standalone(&settings);
            let mut lean = Pipeline::serving(&settings);
            let mut steps: Vec<(String, Vec<Object>)> = sets
                .iter()
                .map(|set| (format!("{set:?}"), examples(set)))
                .collect();
            // A Service that stops making a view (an ExternalName without its name) while
            // its manifest stays: the zone drops it, as a full build does.
            steps.insert(3, {
                let set = &sets[2];
                let mut objects = examples(set);
                for object in &mut objects {
                    if let Object::Service(svc) = object
                        && svc.metadata.name.as_deref() == Some("external-db")
                    {
                        let svc = std::sync::Arc::make_mut(svc);
                        svc.spec.as_mut().unwrap().external_name = None;
                    }
                }
                (
                    format!("{set:?}, external-db without externalName"),
                    objects,
                )
            });
            for (step, objects) in steps {
                let what = format!("{step}, pods {pods:?}");
                let want = full.resync(objects.clone()).unwrap();
                let got = lean.resync(objects).unwrap();
                assert_eq!(got.counts.to_string(), want.counts.to_string(), "{what}");
                assert_eq!(got.counts.names, want.counts.names, "{what}");
                assert_eq!(lean.rrsets(), full.rrsets(), "{what}");
            }
        }
    }
}
