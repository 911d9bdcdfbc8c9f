//! The stages after a source: cluster store → controllers → service views → zone snapshot.
//!
//! `Pipeline` owns the cluster store and the configurations of the stages after it. In
//! standalone mode the store holds the manifests and podns runs the controllers a cluster
//! would; in cluster mode it holds what the API server has, taken as it is. Either way a
//! rejected build returns an error and the caller keeps serving the previous snapshot
//! (design decision 6).

use anyhow::Context as _;
use podns_cluster::{
    ClusterEvent, ClusterStore, ControllerConfig, DerivedCluster, Object, ViewConfig,
};
use podns_view::ClusterView;
use podns_zone::{ZoneBuilder, ZoneSnapshot};

use crate::settings::Settings;

/// Who makes the pods and endpoint slices the zone is built from.
enum Controllers {
    /// podns, from the manifests' workloads and selectors.
    Standalone(ControllerConfig),
    /// The cluster's own controllers: objects are served as the API server has them.
    Observed,
}

/// The stages between a source and a zone snapshot.
pub(crate) struct Pipeline {
    store: ClusterStore,
    controllers: Controllers,
    view: ViewConfig,
    /// Long-lived, so a publish costs what changed: Services whose views are unchanged are
    /// kept as they are (one comparison each) and only touched shards are copied.
    zone: ZoneBuilder,
}

/// What one run of the pipeline produced.
pub(crate) struct Derived {
    /// The Kubernetes objects, as a cluster would hold them after its controllers ran.
    pub(crate) cluster: DerivedCluster,
    /// The service views the zone was built from.
    pub(crate) view: ClusterView,
    /// The zone, ready to publish.
    pub(crate) snapshot: ZoneSnapshot,
}

impl Pipeline {
    /// A pipeline that runs the standalone controllers over manifests.
    pub(crate) fn standalone(settings: &Settings) -> Self {
        Self {
            store: ClusterStore::default(),
            controllers: Controllers::Standalone(settings.controller.clone()),
            view: settings.view.clone(),
            zone: ZoneBuilder::new(settings.zone.clone()),
        }
    }

    /// A pipeline over objects from an API server.
    pub(crate) fn observed(settings: &Settings) -> Self {
        Self {
            store: ClusterStore::default(),
            controllers: Controllers::Observed,
            view: settings.view.clone(),
            zone: ZoneBuilder::new(settings.zone.clone()),
        }
    }

    /// Takes new settings (a config reload); the store is kept, the next build uses them.
    pub(crate) fn reconfigure(&mut self, settings: &Settings) {
        if let Controllers::Standalone(controller) = &mut self.controllers {
            controller.clone_from(&settings.controller);
        }
        self.view.clone_from(&settings.view);
        if self.zone.config() != &settings.zone {
            // Different zone options change most records: start from a fresh builder.
            self.zone = ZoneBuilder::new(settings.zone.clone());
        }
    }

    /// Replaces the cluster state with a complete object set and derives everything from it.
    pub(crate) fn resync(&mut self, objects: Vec<Object>) -> anyhow::Result<Derived> {
        self.store.resync(objects);
        self.build()
    }

    /// Applies one change from a source; whether the store changed.
    pub(crate) fn apply(&mut self, event: ClusterEvent) -> bool {
        self.store.apply_event(event)
    }

    /// Derives everything from the current store.
    pub(crate) fn build(&mut self) -> anyhow::Result<Derived> {
        let cluster = match &self.controllers {
            Controllers::Standalone(controller) => podns_cluster::derive(&self.store, controller)
                .context("deriving pods and endpoint slices")?,
            Controllers::Observed => podns_cluster::observed(&self.store),
        };
        let view = podns_cluster::cluster_view(&cluster, &self.view);
        self.zone.replace_all(&view);
        let snapshot = self.zone.snapshot();
        for skipped in snapshot.skipped() {
            tracing::warn!("not in DNS: {skipped}");
        }
        Ok(Derived {
            cluster,
            view,
            snapshot,
        })
    }
}

impl Pipeline {
    /// The zone's records as RRsets (for `podns get records`).
    pub(crate) fn rrsets(&self) -> Vec<podns_zone::RRset> {
        self.zone.rrsets()
    }
}

impl Derived {
    /// The snapshot alone, dropping the objects and views it was built from.
    pub(crate) fn into_snapshot(self) -> ZoneSnapshot {
        self.snapshot
    }

    /// Object counts, for the logs and the zone gauges.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            namespaces: self.view.namespaces.len(),
            services: self.view.services.len(),
            pods: self.cluster.pods.len(),
            endpoint_slices: self.cluster.endpoint_slices.len(),
            endpoints: self.view.services.iter().map(|s| s.endpoints.len()).sum(),
            names: self.snapshot.name_count(),
            serial: self.snapshot.serial(),
        }
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
