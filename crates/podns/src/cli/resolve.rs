//! `podns resolve`: a headless service's endpoint set as a client sees it, once or live.
//!
//! This is podns-client's discovery behind a command line: the same search-list handling,
//! TTL-driven refresh and change events a Rust program gets from the library.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use futures_util::StreamExt as _;
use podns_client::{Discovery, Endpoint, LookupKind, RefreshConfig, Resolver, Target, Update};

/// Options of `podns resolve`.
#[derive(Debug, Args)]
pub(crate) struct ResolveArgs {
    /// What to resolve: `svc:port`, `svc.ns.svc.cluster.local:port`, or an SRV name
    /// `_port._proto.svc.ns.svc.cluster.local`.
    #[arg(value_name = "NAME")]
    name: String,

    /// Record type to ask for (IP = A and AAAA).
    #[arg(long = "type", short = 't', value_enum, default_value = "ip")]
    kind: Kind,

    /// Ask this DNS server (e.g. 127.0.0.1:5353) instead of the system's resolv.conf; short names
    /// then use the search list of a pod in `--namespace` (ndots 5).
    #[arg(long, value_name = "ADDR:PORT")]
    server: Option<SocketAddr>,

    /// Namespace whose pod search list applies with `--server`.
    #[arg(long, short = 'n', default_value = "default", value_name = "NS")]
    namespace: String,

    /// Cluster domain of that search list.
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    cluster_domain: String,

    /// Keep watching: print every change with a timestamp, re-resolving on TTL expiry.
    #[arg(long, short = 'w')]
    watch: bool,

    /// Per-query timeout in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    #[value(name = "ip", alias = "IP")]
    Ip,
    #[value(name = "a", alias = "A")]
    A,
    #[value(name = "aaaa", alias = "AAAA")]
    Aaaa,
    #[value(name = "srv", alias = "SRV")]
    Srv,
}

pub(crate) fn run(args: &ResolveArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(resolve(args))
}

async fn resolve(args: &ResolveArgs) -> anyhow::Result<()> {
    let kind = match args.kind {
        Kind::Ip => LookupKind::Ip,
        Kind::A => LookupKind::A,
        Kind::Aaaa => LookupKind::Aaaa,
        Kind::Srv => LookupKind::Srv,
    };
    let target = Target::parse(&args.name)
        .with_context(|| format!("{}: not a name to resolve", args.name))?
        .with_kind(kind);
    let resolver = match args.server {
        Some(server) => Resolver::builder()
            .server(server)
            .pod_search(&args.namespace, &args.cluster_domain)
            .timeout(Duration::from_millis(args.timeout_ms))
            .build()?,
        None => Resolver::system().context("reading the system resolver configuration")?,
    };

    if !args.watch {
        let answer = resolver.resolve(&target).await?;
        if !answer.exists {
            anyhow::bail!(
                "{}: NXDOMAIN (no such name, or no ready endpoint)",
                answer.name
            );
        }
        for endpoint in &answer.endpoints {
            println!("{}", line(endpoint));
        }
        return Ok(());
    }

    let discovery = Discovery::spawn(resolver, target, RefreshConfig::default());
    let mut updates = discovery.updates();
    while let Some(update) = updates.next().await {
        let now = timestamp(SystemTime::now());
        match update {
            Update::Reset(all) => {
                println!("{now} = {} endpoints", all.len());
                for endpoint in &all {
                    println!("{now}   {}", line(endpoint));
                }
            }
            Update::Add(added) => added.iter().for_each(|e| println!("{now} + {}", line(e))),
            Update::Remove(gone) => gone.iter().for_each(|e| println!("{now} - {}", line(e))),
            Update::DoesNotExist => {
                println!("{now} = NXDOMAIN (no such name, or no ready endpoint)")
            }
        }
    }
    Ok(())
}

/// `ADDRESS[:PORT] [HOSTNAME] [ordinal=N]`; port 0 (a name asked without a port) is left out.
fn line(endpoint: &Endpoint) -> String {
    let mut out = if endpoint.addr.port() == 0 {
        endpoint.addr.ip().to_string()
    } else {
        endpoint.addr.to_string()
    };
    if let Some(hostname) = &endpoint.hostname {
        out.push(' ');
        out.push_str(hostname);
    }
    if let Some(ordinal) = endpoint.ordinal {
        out.push_str(&format!(" ordinal={ordinal}"));
    }
    out
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-12-01T20:41:07.123Z`.
fn timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_156_833_123);
        assert_eq!(timestamp(t), "2026-12-01T20:27:13.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
