//! Resolves a target and prints every change of its endpoint set: `podns resolve --watch` in
//! miniature.
//!
//! Run with:
//!
//! ```text
//! # against `podns serve` on 127.0.0.1:5353 (e.g. serving examples/redis-statefulset/):
//! cargo run -p podns-client --example watch -- redis-headless:6379 --type SRV --server 127.0.0.1:5353
//! cargo run -p podns-client --example watch -- _redis._tcp.redis-headless.default.svc.cluster.local --server 127.0.0.1:5353
//! # once, without watching:
//! cargo run -p podns-client --example watch -- redis-headless:6379 --server 127.0.0.1:5353 --once
//! ```
//!
//! With `--server`, relative names use the search list of a pod in namespace `default`
//! (`default.svc.cluster.local svc.cluster.local cluster.local`, `ndots:5`); without it, the
//! system's `/etc/resolv.conf`.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use podns_client::{Discovery, LookupKind, RefreshConfig, Resolver, Target, Update};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut target, mut server, mut kind, mut once) = (None, None::<SocketAddr>, None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => server = Some(args.next().ok_or("--server needs ADDR")?.parse()?),
            "--type" => {
                kind = Some(
                    match args.next().ok_or("--type needs A|AAAA|SRV")?.as_str() {
                        "A" => LookupKind::A,
                        "AAAA" => LookupKind::Aaaa,
                        "SRV" => LookupKind::Srv,
                        "IP" => LookupKind::Ip,
                        other => return Err(format!("unknown type {other}").into()),
                    },
                )
            }
            "--once" => once = true,
            _ => target = Some(arg),
        }
    }
    let mut target = Target::parse(
        target
            .as_deref()
            .ok_or("usage: watch NAME [--type A|AAAA|SRV] [--server ADDR] [--once]")?,
    )?;
    if let Some(kind) = kind {
        target = target.with_kind(kind);
    }
    let resolver = match server {
        Some(addr) => Resolver::builder()
            .server(addr)
            .pod_search("default", "cluster.local")
            .timeout(Duration::from_secs(2))
            .build()?,
        None => Resolver::system()?,
    };

    if once {
        let answer = resolver.resolve(&target).await?;
        if !answer.exists {
            println!(
                "{}: NXDOMAIN (no such service, or no ready endpoint)",
                answer.name
            );
        }
        for endpoint in &answer.endpoints {
            println!("{endpoint}");
        }
        return Ok(());
    }

    let discovery = Discovery::spawn(resolver, target, RefreshConfig::default());
    let mut updates = discovery.updates();
    while let Some(update) = updates.next().await {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        match update {
            Update::Reset(all) => {
                println!("{now:.3} reset ({} endpoints)", all.len());
                all.iter().for_each(|e| println!("{now:.3}   {e}"));
            }
            Update::Add(new) => new.iter().for_each(|e| println!("{now:.3} + {e}")),
            Update::Remove(gone) => gone.iter().for_each(|e| println!("{now:.3} - {e}")),
            Update::DoesNotExist => println!("{now:.3} NXDOMAIN: no endpoints"),
        }
    }
    Ok(())
}
