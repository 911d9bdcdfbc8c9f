//! The standalone pipeline: manifests → cluster store → controllers → service views → zone.
//!
//! `Pipeline` owns the cluster store and the configurations of the stages after it. Each
//! complete manifest set goes through every stage; if any stage rejects it, nothing is
//! returned and the caller keeps serving the previous snapshot (design decision 6).

use anyhow::Context as _;
use podns_cluster::{ClusterStore, ControllerConfig, DerivedCluster, Object};
use podns_view::ClusterView;
use podns_zone::{ZoneConfig, ZoneSnapshot};

/// The stages between a manifest set and a zone snapshot.
pub(crate) struct Pipeline {
    /// The objects of the last manifest set applied.
    store: ClusterStore,
    controller: ControllerConfig,
    zone: ZoneConfig,
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
    pub(crate) fn new(controller: ControllerConfig, zone: ZoneConfig) -> anyhow::Result<Self> {
        zone.validate().context("zone configuration")?;
        Ok(Self {
            store: ClusterStore::default(),
            controller,
            zone,
        })
    }

    /// Replaces the cluster state with a complete object set and derives everything from it.
    pub(crate) fn resync(&mut self, objects: Vec<Object>) -> anyhow::Result<Derived> {
        self.store.resync(objects);
        let cluster = podns_cluster::derive(&self.store, &self.controller)
            .context("deriving pods and endpoint slices")?;
        let view = podns_cluster::cluster_view(&cluster, &podns_cluster::ViewConfig::default());
        let snapshot = podns_zone::build(&self.zone, &view);
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

impl Derived {
    /// The snapshot alone, dropping the objects and views it was built from.
    pub(crate) fn into_snapshot(self) -> ZoneSnapshot {
        self.snapshot
    }

    /// A one-line summary for the logs.
    pub(crate) fn summary(&self) -> String {
        let endpoints: usize = self.view.services.iter().map(|s| s.endpoints.len()).sum();
        format!(
            "{} namespaces, {} services, {} pods, {} endpoint slices, {} endpoints",
            self.view.namespaces.len(),
            self.view.services.len(),
            self.cluster.pods.len(),
            self.cluster.endpoint_slices.len(),
            endpoints
        )
    }
}
