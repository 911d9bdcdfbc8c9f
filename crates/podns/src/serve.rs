//! The running `podns serve`: a source feeding the pipeline, the wire server in front of the
//! published snapshot, the admin endpoints beside it, and the life cycle around them.
//!
//! ```text
//!  manifests (notify) ─┐                                      ┌─ UDP/TCP workers ─ forwarder
//!  API server (kube) ──┴─▶ Pipeline ─▶ ZoneWriter ══ snapshot ═╡
//!  config file, SIGHUP ──▶ Settings ──┘                        └─ admin: /health /ready /metrics
//! ```
//!
//! Start-up: standalone fails loudly when the first manifest set is broken (there is no good
//! state to keep yet); cluster mode waits up to `--startup-timeout` for the first complete list
//! and then answers with what it has, `/ready` at 503 until every kind is listed. After that,
//! every change is applied and the zone rebuilt and published; a rejected build or config is
//! logged and the last good state keeps serving. SIGTERM: `/ready` turns 503, answering goes
//! on for `--lameduck`, then the listeners close and open TCP queries are drained.

mod reload;
mod source;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use podns_server::{Metrics, QueryConfig, Readiness, ServerConfig, ZoneObjects};
use tracing::{error, info, warn};

use crate::cli::serve::ServeArgs;
use crate::pipeline::{Derived, Pipeline};
use crate::settings::{FileConfig, Settings};
use source::{Source, SourceUpdate};

/// How often the source's health is copied into /ready and the metrics.
const STATUS_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Signal handlers first: a SIGTERM or SIGHUP during start-up must not kill the process.
    let shutdown = shutdown_signal();
    let mut hangup = reload::hangup()?;
    let file = args.config.as_deref().map(FileConfig::load).transpose()?;
    let mut settings = Settings::resolve(&args.cluster, file.as_ref(), Some(args.listen))?;

    let zones = served_zones(&settings);
    let zone_labels: Vec<&str> = zones.iter().map(String::as_str).collect();
    let metrics = Arc::new(Metrics::new(&zone_labels));
    let readiness = Readiness::new();
    readiness.set_not_ready("starting: the zone is not built yet");

    let (admin_stop_tx, admin_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let admin = match args.admin_listen.as_str() {
        "none" => None,
        addr => {
            let addr: SocketAddr = addr
                .parse()
                .with_context(|| format!("--admin-listen {addr:?}: not ADDR:PORT or none"))?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the admin endpoints on {addr}"))?;
            info!(
                "admin on {} (/health, /ready, /metrics)",
                listener.local_addr()?
            );
            Some(tokio::spawn(podns_server::serve_admin(
                listener,
                Arc::clone(&metrics),
                readiness.clone(),
                async {
                    let _ = admin_stop_rx.await;
                },
            )))
        }
    };

    let (mut source, mut pipeline) = if args.source.is_kubernetes() {
        Source::kubernetes(&args.source, &settings).await?
    } else {
        Source::manifests(
            &args.source,
            &settings,
            Duration::from_millis(args.debounce_ms),
        )?
    };
    let first = source
        .initial(&mut pipeline, args.source.startup_timeout)
        .await?;
    let started = Instant::now();
    let derived = pipeline.build()?;
    record_zone(&metrics, &derived, started.elapsed());
    info!("zone built: {}", derived.counts);
    // Only the snapshot is kept: the derived objects and views are dropped here.
    let (zone_writer, zone_reader) = podns_zone::pair(derived.into_snapshot());
    metrics.set_zone(zone_reader.clone());
    if first.synced {
        readiness.set_ready();
    } else {
        readiness.set_not_ready("waiting for the first complete list from the API server");
    }

    let forward = podns_server::ForwardSlot::default();
    forward.store(forwarder(&settings, args.listen)?);
    let sampled = forward.clone();
    metrics.register_forward_stats(move || forward_sample(&sampled));

    let mut config = ServerConfig {
        listen: args.listen,
        query: QueryConfig {
            rotate: args.rotate,
            max_udp_payload: args.max_udp_payload,
        },
        ..ServerConfig::default()
    };
    if let Some(workers) = args.udp_workers {
        config.udp_workers = workers.max(1);
    }
    config.rate_limit.responses_per_second = args.rrl_responses_per_second;
    config.rate_limit.slip = args.rrl_slip;
    let bound = podns_server::bind(&config)
        .with_context(|| format!("binding {} (udp, tcp)", args.listen))?;
    info!("listening on {} (udp, tcp)", bound.local_addr());

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let services = podns_server::Services {
        zone: zone_reader,
        metrics: Some(Arc::clone(&metrics)),
        forward: forward.clone(),
    };
    let server = tokio::spawn(podns_server::serve_with(bound, config, services, async {
        let _ = stop_rx.await;
    }));

    let mut config_watch = reload::ConfigWatch::new(args.config.clone());
    // A configuration refused because the manifests it must be rebuilt from were broken is
    // tried again once they load.
    let mut config_retry = false;
    let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = hangup.recv() => {
                info!("SIGHUP: re-reading the configuration");
                config_watch.force();
            }
            () = config_watch.changed() => {
                config_retry = false;
                match reconfigure(&args, &mut settings, &mut pipeline, &mut source, &forward).await {
                    Ok(()) => publish(&mut pipeline, &zone_writer, &metrics, &[]),
                    Err(err) => {
                        error!("configuration rejected, keeping the last good one: {err:#}");
                        config_retry = err.downcast_ref::<source::ManifestsUnreadable>().is_some();
                    }
                }
            }
            update = source.next(&mut pipeline) => match update {
                Some(SourceUpdate::Changed { started }) => {
                    publish(&mut pipeline, &zone_writer, &metrics, &started);
                    if std::mem::take(&mut config_retry) {
                        config_watch.force();
                    }
                }
                Some(SourceUpdate::Unchanged) => {}
                None => {
                    warn!("the source stopped; serving the current zone until shutdown");
                    shutdown.as_mut().await;
                    break;
                }
            },
            _ = status_tick.tick() => {
                source.report(&metrics, &readiness);
            }
        }
    }

    info!("shutting down");
    readiness.set_not_ready("shutting down");
    if !args.lameduck.is_zero() {
        info!(
            "lame duck: answering for {:?} more while clients move away",
            args.lameduck
        );
        tokio::time::sleep(args.lameduck).await;
    }
    let _ = stop_tx.send(());
    server.await.context("server task")?.context("server")?;
    let _ = admin_stop_tx.send(());
    if let Some(admin) = admin {
        admin
            .await
            .context("admin task")?
            .context("admin endpoints")?;
    }
    info!("stopped");
    Ok(())
}

/// The zone names the metrics count queries by (with trailing dots).
fn served_zones(settings: &Settings) -> Vec<String> {
    settings
        .zone
        .cluster_domains
        .iter()
        .chain(&settings.zone.reverse_zones)
        .map(|z| format!("{}.", z.trim_end_matches('.')))
        .collect()
}

/// The forwarder the settings ask for (`None`: names outside the zones are REFUSED).
fn forwarder(
    settings: &Settings,
    listen: SocketAddr,
) -> anyhow::Result<Option<Arc<podns_forward::Forwarder>>> {
    let config = match settings.forward.forward_config(Some(listen)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            info!("forwarding off: names outside the served zones are answered REFUSED");
            return Ok(None);
        }
        // The default (/etc/resolv.conf) may simply have no usable nameserver here.
        Err(err) if settings.forward.upstreams == crate::settings::default_upstreams() => {
            warn!("forwarding off: {err:#}");
            return Ok(None);
        }
        Err(err) => return Err(err.context("forwarding")),
    };
    info!(upstreams = ?config.upstreams, "forwarding names outside the served zones");
    let forwarder = podns_forward::Forwarder::new(config).context("forwarding")?;
    Ok(Some(Arc::new(forwarder)))
}

/// The current forwarder's counters, for a scrape. A reload that replaces the forwarder
/// starts its counters from zero, which Prometheus reads as a counter reset.
fn forward_sample(slot: &podns_server::ForwardSlot) -> podns_server::ForwardSample {
    let Some(forwarder) = slot.load_full() else {
        return podns_server::ForwardSample::default();
    };
    let stats = forwarder.stats();
    podns_server::ForwardSample {
        requests: stats.requests,
        cache_hits: stats.cache_hits,
        cache_misses: stats.cache_misses,
        cache_entries: stats.cache_entries as u64,
        upstreams: stats
            .upstreams
            .iter()
            .map(|u| podns_server::UpstreamSample {
                address: u.addr.to_string(),
                requests: u.requests,
                failures: u.failures,
                healthy: u.healthy,
            })
            .collect(),
    }
}

/// Re-reads the config file and applies it; on error nothing changes.
async fn reconfigure(
    args: &ServeArgs,
    settings: &mut Settings,
    pipeline: &mut Pipeline,
    source: &mut Source,
    forward: &podns_server::ForwardSlot,
) -> anyhow::Result<()> {
    let file = args.config.as_deref().map(FileConfig::load).transpose()?;
    let new = Settings::resolve(&args.cluster, file.as_ref(), Some(args.listen))?;
    let new_forwarder = forwarder(&new, args.listen)?;
    source.reconfigure(&new, pipeline).await?;
    pipeline.reconfigure(&new);
    if new.forward != settings.forward {
        forward.store(new_forwarder);
    }
    *settings = new;
    info!("configuration applied");
    Ok(())
}

/// Builds and publishes the zone from the pipeline's current state; a failed build keeps the
/// last good zone. `started` are the moments the changes in it began (API events).
fn publish(
    pipeline: &mut Pipeline,
    zone_writer: &podns_zone::ZoneWriter,
    metrics: &Metrics,
    started: &[source::ChangeStart],
) {
    let build_started = Instant::now();
    match pipeline.build() {
        Ok(derived) => {
            let counts = derived.counts;
            record_zone(metrics, &derived, build_started.elapsed());
            let Derived {
                cluster, snapshot, ..
            } = derived;
            let previous = zone_writer.publish(snapshot);
            let now = SystemTime::now();
            for change in started {
                metrics.observe_programming_latency(change.service_kind, change.elapsed(now));
            }
            metrics.set_last_update(now);
            // Freeing the old zone (and the derived objects) is off the event loop, so the
            // next change is not kept waiting behind it.
            tokio::task::spawn_blocking(move || drop((previous, cluster)));
            info!(serial = counts.serial, "zone published: {counts}");
        }
        Err(err) => error!("change rejected, still serving the last good zone: {err:#}"),
    }
}

fn record_zone(metrics: &Metrics, derived: &Derived, build: Duration) {
    let counts = derived.counts;
    metrics.set_zone_objects(ZoneObjects {
        services: counts.services as u64,
        endpoints: counts.endpoints as u64,
        pods: counts.pods as u64,
        names: counts.names as u64,
        serial: counts.serial,
    });
    metrics.observe_zone_build(build.as_secs_f64());
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM that arrives during start-up must begin a graceful
/// stop, not kill the process with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                (term, int) => {
                    let err = term.err().or(int.err()).map(|e| e.to_string());
                    warn!("cannot listen for SIGTERM/SIGINT: {err:?}; stopping on Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
