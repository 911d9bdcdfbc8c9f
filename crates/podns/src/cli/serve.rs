//! `podns serve`: the cluster zone over UDP and TCP, following the manifests live.
//!
//! Start-up fails loudly when the first manifest set is broken (there is no good state to keep
//! yet). After that, every change on disk is re-derived in full; a rejected set is logged with
//! every error and the last good snapshot keeps serving.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgAction, Args};
use podns_cluster::ManifestEvent;
use podns_server::{QueryConfig, ServerConfig};
use tracing::{error, info, warn};

use super::ClusterArgs;
use crate::pipeline::Pipeline;

/// Options of `podns serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    cluster: ClusterArgs,

    /// Address to answer DNS on, UDP and TCP (port 0 picks a free port, printed at start-up).
    #[arg(long, default_value = "127.0.0.1:5353", value_name = "ADDR:PORT")]
    listen: SocketAddr,

    /// Rotate multi-address answers per query, so clients that take the first address spread
    /// their load (`--rotate=false` answers in a fixed order).
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    rotate: bool,

    /// Largest UDP response sent to EDNS clients (512 without EDNS; 1232 is the DNS Flag Day
    /// 2020 value that avoids IP fragmentation).
    #[arg(long, default_value_t = 1232, value_parser = clap::value_parser!(u16).range(512..), value_name = "BYTES")]
    max_udp_payload: u16,

    /// UDP worker sockets (SO_REUSEPORT); default: one per available core.
    #[arg(long, value_name = "N")]
    udp_workers: Option<usize>,

    /// How long manifest changes settle before they are re-read, in milliseconds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    debounce_ms: u64,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cluster = &args.cluster;
    let mut pipeline = Pipeline::new(
        cluster.controller_config(),
        cluster.zone_config(Some(args.listen)),
    )?;

    let (initial, mut manifests) = podns_cluster::watch(
        cluster.manifests.clone(),
        Duration::from_millis(args.debounce_ms),
    )
    .context("watching the manifests")?;
    let objects = initial.context("loading the manifests")?;
    let derived = pipeline.resync(objects)?;
    info!("zone built: {}", derived.summary());
    // Only the snapshot is kept: the derived objects and views are dropped here, not held for
    // the life of the server.
    let (zone_writer, zone_reader) = podns_zone::pair(derived.into_snapshot());

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
    let bound = podns_server::bind(&config)
        .with_context(|| format!("binding {} (udp, tcp)", args.listen))?;
    info!("listening on {} (udp, tcp)", bound.local_addr());

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(podns_server::serve(bound, config, zone_reader, async {
        let _ = stop_rx.await;
    }));

    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = manifests.recv() => match event {
                Some(ManifestEvent::Loaded(objects)) => match pipeline.resync(objects) {
                    Ok(derived) => {
                        let summary = derived.summary();
                        let snapshot = derived.into_snapshot();
                        let serial = snapshot.serial();
                        zone_writer.publish(snapshot);
                        info!(serial, "zone published: {summary}");
                    }
                    Err(err) => error!("manifests rejected, still serving the last good zone: {err:#}"),
                },
                Some(ManifestEvent::Rejected(errors)) => {
                    error!("manifests rejected, still serving the last good zone:\n{errors}");
                }
                None => {
                    warn!("manifest watcher stopped; serving the current zone until shutdown");
                    shutdown.as_mut().await;
                    break;
                }
            },
        }
    }
    info!("shutting down");
    let _ = stop_tx.send(());
    server.await.context("server task")?.context("server")?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    warn!("cannot listen for SIGTERM: {err}");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
