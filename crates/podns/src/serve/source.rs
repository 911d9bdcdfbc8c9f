//! The two sources of cluster state behind one interface: watched manifests, or the
//! Kubernetes API through kube-rs watchers.
//!
//! This module owns turning source events into pipeline changes and source health into
//! `/ready` and the metrics. Kubernetes events are applied in batches: whatever arrived while
//! the previous zone was being built goes into the next build, so a burst of API events costs
//! one rebuild, not one per event.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use podns_cluster::source::kube::{KubeEvent, KubeWatch, KubeWatchConfig};
use podns_cluster::{ClusterEvent, ClusterStore, Kind, ManifestEvent, ManifestWatch, Object};
use podns_server::{Metrics, Readiness, ServiceKindLabel};
use tracing::{error, info, warn};

use crate::cli::serve::SourceArgs;
use crate::pipeline::Pipeline;
use crate::settings::Settings;

/// Events taken in one batch at most, so a flood of events still publishes now and then.
const MAX_BATCH: usize = 10_000;
/// The EndpointSlice label that marks a headless Service's slices.
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The EndpointSlice label naming the controller that manages the slice.
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on slices made from a Service's selector.
const SELECTOR_CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// CoreDNS's `service_kind` of a slice's Service, from the slice's own labels (the Service
/// itself may not be known yet): headless slices carry `service.kubernetes.io/headless`, and
/// the EndpointSlice controller only manages slices of Services with a selector.
fn service_kind(slice: &k8s_openapi::api::discovery::v1::EndpointSlice) -> ServiceKindLabel {
    let labels = slice.metadata.labels.as_ref();
    let headless = labels.is_some_and(|l| l.contains_key(HEADLESS_LABEL));
    let from_selector = labels
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .map(String::as_str)
        == Some(SELECTOR_CONTROLLER);
    match (headless, from_selector) {
        (true, true) => ServiceKindLabel::HeadlessWithSelector,
        (true, false) => ServiceKindLabel::HeadlessWithoutSelector,
        (false, _) => ServiceKindLabel::ClusterIp,
    }
}

/// A configuration change refused because the manifests it must be rebuilt from did not
/// load (the pipeline no longer holds them): worth trying again once they do.
#[derive(Debug)]
pub(super) struct ManifestsUnreadable(String);

impl std::fmt::Display for ManifestsUnreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reading the manifests for the new configuration: {}",
            self.0
        )
    }
}

impl std::error::Error for ManifestsUnreadable {}

/// Where cluster state comes from.
pub(super) enum Source {
    /// Manifest files, re-read in full on every change.
    Manifests {
        watch: ManifestWatch,
        initial: Option<ClusterStore>,
        /// The files and folders watched, read again for a configuration change.
        paths: Vec<PathBuf>,
    },
    /// An API server.
    Kube(Box<KubeSource>),
}

/// The Kubernetes side: the client, the running watch and what has been reported.
pub(super) struct KubeSource {
    client: kube::Client,
    config: KubeWatchConfig,
    watch: KubeWatch,
    /// Set once every kind has been listed and applied; stays set through later relists,
    /// watch restarts and outages.
    synced_once: bool,
    /// Kinds whose first complete list has been applied (`Synced` events seen).
    listed: Vec<Kind>,
    /// Since when the API server has been unreachable, as last reported.
    unreachable_since: Option<SystemTime>,
    /// Watch restarts already counted in the metrics, per kind.
    restarts_reported: Vec<(Kind, u64)>,
}

/// What start-up achieved.
pub(super) struct Initial {
    /// Every watched kind was listed in time (always true for manifests).
    pub(super) synced: bool,
}

/// What one step of the source did to the pipeline.
pub(super) enum SourceUpdate {
    /// The store changed; `started` are the API changes in it, for the programming latency.
    Changed { started: Vec<ChangeStart> },
    /// Nothing to rebuild.
    Unchanged,
}

/// When an endpoint change began, and for which kind of Service.
pub(super) struct ChangeStart {
    pub(super) service_kind: ServiceKindLabel,
    at: Start,
}

enum Start {
    /// The EndpointSlice controller's trigger time (what CoreDNS measures from).
    Triggered(SystemTime),
    /// When podns received the event (no trigger annotation).
    Received(Instant),
}

impl ChangeStart {
    /// Seconds from the start of the change to `now`.
    pub(super) fn elapsed(&self, now: SystemTime) -> f64 {
        match self.at {
            Start::Triggered(at) => now.duration_since(at).unwrap_or_default().as_secs_f64(),
            Start::Received(at) => at.elapsed().as_secs_f64(),
        }
    }
}

/// The watch set the settings need: Pods only for verified pod records, no EndpointSlices
/// under `noendpoints` (as CoreDNS, which then does not watch them either).
fn watch_config(settings: &Settings) -> KubeWatchConfig {
    KubeWatchConfig {
        pods: settings.zone.pods == podns_zone::PodMode::Verified,
        endpoint_slices: !settings.zone.no_endpoints,
        ..KubeWatchConfig::default()
    }
}

impl Source {
    /// Watches the manifests; the first set is read now.
    pub(super) fn manifests(
        args: &SourceArgs,
        settings: &Settings,
        debounce: Duration,
    ) -> anyhow::Result<(Self, Pipeline)> {
        let (initial, watch) = podns_cluster::watch(args.manifests.clone(), debounce)
            .context("watching the manifests")?;
        let objects = initial.context("loading the manifests")?;
        let source = Self::Manifests {
            watch,
            initial: Some(objects),
            paths: args.manifests.clone(),
        };
        Ok((source, Pipeline::serving(settings)))
    }

    /// Connects to the API server and starts watching.
    pub(super) async fn kubernetes(
        args: &SourceArgs,
        settings: &Settings,
    ) -> anyhow::Result<(Self, Pipeline)> {
        let client = podns_cluster::source::kube::client(
            args.kubeconfig.as_deref(),
            args.context.as_deref(),
        )
        .await
        .context("configuring the Kubernetes client")?;
        let config = watch_config(settings);
        let watch = podns_cluster::source::kube::spawn_watch(client.clone(), config.clone());
        let source = KubeSource {
            client,
            config,
            watch,
            synced_once: false,
            listed: Vec::new(),
            unreachable_since: None,
            restarts_reported: Vec::new(),
        };
        Ok((Self::Kube(Box::new(source)), Pipeline::observed(settings)))
    }

    /// Fills the pipeline before the first build: the manifests, or the API server's first
    /// complete list (waiting at most `timeout`).
    pub(super) async fn initial(
        &mut self,
        pipeline: &mut Pipeline,
        timeout: Duration,
    ) -> anyhow::Result<Initial> {
        match self {
            Self::Manifests { initial, .. } => {
                if let Some(store) = initial.take() {
                    pipeline.replace_store(store);
                }
                Ok(Initial { synced: true })
            }
            Self::Kube(kube) => {
                let deadline = tokio::time::Instant::now() + timeout;
                while !kube.all_listed() {
                    tokio::select! {
                        event = kube.watch.events.recv() => match event {
                            Some(event) => {
                                kube.handle(event, pipeline);
                            }
                            None => bail!("the Kubernetes watch stopped during start-up"),
                        },
                        () = tokio::time::sleep_until(deadline) => {
                            warn!(
                                "not every kind listed after {timeout:?}; answering with what \
                                 is known, /ready stays 503 until the lists complete"
                            );
                            return Ok(Initial { synced: false });
                        }
                    }
                }
                kube.synced_once = true;
                info!("first complete list from the API server");
                Ok(Initial { synced: true })
            }
        }
    }

    /// Waits for the next change and applies it (and whatever else is already waiting).
    /// `None` when the source has ended.
    pub(super) async fn next(&mut self, pipeline: &mut Pipeline) -> Option<SourceUpdate> {
        match self {
            Self::Manifests { watch, .. } => match watch.recv().await? {
                ManifestEvent::Loaded(store) => {
                    pipeline.replace_store(store);
                    Some(SourceUpdate::Changed {
                        started: Vec::new(),
                    })
                }
                ManifestEvent::Rejected(errors) => {
                    error!("manifests rejected, still serving the last good zone:\n{errors}");
                    Some(SourceUpdate::Unchanged)
                }
            },
            Self::Kube(kube) => {
                let first = kube.watch.events.recv().await?;
                let mut started = Vec::new();
                let mut changed = kube.handle_into(first, pipeline, &mut started);
                let mut taken = 1;
                while taken < MAX_BATCH {
                    let Ok(event) = kube.watch.events.try_recv() else {
                        break;
                    };
                    changed |= kube.handle_into(event, pipeline, &mut started);
                    taken += 1;
                }
                Some(if changed {
                    SourceUpdate::Changed { started }
                } else {
                    SourceUpdate::Unchanged
                })
            }
        }
    }

    /// Copies the source's health into the metrics and `/ready`.
    pub(super) fn report(&mut self, metrics: &Metrics, readiness: &Readiness) {
        let Self::Kube(kube) = self else { return };
        if kube.all_listed() {
            kube.synced_once = true;
        }
        let status = &kube.watch.status;
        let connected = status.connected();
        metrics.set_api_connected(connected);
        metrics.set_synced(kube.synced_once);
        for kind in status.kinds() {
            let now = status.restarts(kind);
            let reported = match kube.restarts_reported.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, reported)) => reported,
                None => {
                    kube.restarts_reported.push((kind, 0));
                    &mut kube.restarts_reported.last_mut().expect("just pushed").1
                }
            };
            for _ in *reported..now {
                metrics.watch_restart(kind.as_str());
            }
            *reported = now;
        }
        if !kube.synced_once {
            readiness.set_not_ready("waiting for the first complete list from the API server");
            return;
        }
        readiness.set_ready();
        if connected {
            if kube.unreachable_since.take().is_some() {
                info!("the API server is reachable again");
            }
            readiness.clear_degraded();
        } else {
            let since = *kube.unreachable_since.get_or_insert_with(SystemTime::now);
            let secs = SystemTime::now()
                .duration_since(since)
                .unwrap_or_default()
                .as_secs();
            readiness.set_degraded(format!(
                "serving the last known state; the API server has been unreachable for {secs} s"
            ));
        }
    }

    /// Applies new settings to the source: restarts the watch when its set of kinds changes.
    pub(super) async fn reconfigure(
        &mut self,
        settings: &Settings,
        pipeline: &mut Pipeline,
    ) -> anyhow::Result<()> {
        let kube = match self {
            Self::Manifests { paths, .. } => {
                if pipeline.needs_manifests() {
                    // The pipeline keeps the zone, not the manifests; a rebuild with the new
                    // settings starts from the files. Broken files refuse the configuration
                    // (the zone and the settings stay as they are) until they are fixed.
                    let paths = paths.clone();
                    let store =
                        tokio::task::spawn_blocking(move || podns_cluster::load_store(&paths))
                            .await
                            .context("reading the manifests")?
                            .map_err(|errors| ManifestsUnreadable(errors.to_string()))?;
                    pipeline.replace_store(store);
                }
                return Ok(());
            }
            Self::Kube(kube) => kube,
        };
        let config = watch_config(settings);
        if config == kube.config {
            return Ok(());
        }
        info!(
            pods = config.pods,
            endpoint_slices = config.endpoint_slices,
            "restarting the Kubernetes watch"
        );
        // Kinds no longer watched must not linger in the store.
        if kube.config.pods && !config.pods {
            pipeline.apply(ClusterEvent::ResyncKind {
                kind: Kind::Pod,
                objects: Vec::new(),
            });
        }
        if kube.config.endpoint_slices && !config.endpoint_slices {
            pipeline.apply(ClusterEvent::ResyncKind {
                kind: Kind::EndpointSlice,
                objects: Vec::new(),
            });
        }
        kube.watch = podns_cluster::source::kube::spawn_watch(kube.client.clone(), config.clone());
        kube.config = config;
        kube.listed.clear();
        Ok(())
    }
}

impl KubeSource {
    /// Whether every watched kind's first list has been applied. (`KubeStatus::synced` turns
    /// true when a list is sent, before it is applied here.)
    fn all_listed(&self) -> bool {
        self.config
            .kinds()
            .iter()
            .all(|kind| self.listed.contains(kind))
    }

    fn handle(&mut self, event: KubeEvent, pipeline: &mut Pipeline) -> bool {
        let mut ignored = Vec::new();
        self.handle_into(event, pipeline, &mut ignored)
    }

    /// Applies one event; whether the store changed. Endpoint changes are noted in `started`.
    fn handle_into(
        &mut self,
        event: KubeEvent,
        pipeline: &mut Pipeline,
        started: &mut Vec<ChangeStart>,
    ) -> bool {
        match event {
            KubeEvent::Change {
                event,
                received,
                triggered,
            } => {
                if let ClusterEvent::Apply(Object::EndpointSlice(slice)) = &event {
                    started.push(ChangeStart {
                        service_kind: service_kind(slice),
                        at: triggered.map_or(Start::Received(received), Start::Triggered),
                    });
                }
                pipeline.apply(event)
            }
            KubeEvent::Synced(kind) => {
                info!(kind = kind.as_str(), "listed");
                if !self.listed.contains(&kind) {
                    self.listed.push(kind);
                }
                false
            }
            KubeEvent::Error { kind, message } => {
                warn!(kind = kind.as_str(), "watch failed, retrying: {message}");
                false
            }
        }
    }
}
