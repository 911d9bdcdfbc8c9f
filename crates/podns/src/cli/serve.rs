//! `podns serve`: the options; the running server is in `crate::serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};

use super::ClusterArgs;
use crate::settings::parse_duration;

/// Options of `podns serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) source: SourceArgs,

    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,

    /// A YAML config file with the zone, filter and forwarding options (docs/configuration.md);
    /// watched, and re-read on SIGHUP. Flags given on the command line win over it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Address to answer DNS on, UDP and TCP (port 0 picks a free port, printed at start-up).
    #[arg(long, default_value = "127.0.0.1:5353", value_name = "ADDR:PORT")]
    pub(crate) listen: SocketAddr,

    /// Address of the HTTP endpoints /health, /ready and /metrics (`none` turns them off).
    #[arg(long, default_value = "127.0.0.1:9153", value_name = "ADDR:PORT|none")]
    pub(crate) admin_listen: String,

    /// Rotate multi-address answers per query, so clients that take the first address spread
    /// their load (`--rotate=false` answers in a fixed order).
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub(crate) rotate: bool,

    /// Largest UDP response sent to EDNS clients (512 without EDNS; 1232 is the DNS Flag Day
    /// 2020 value that avoids IP fragmentation).
    #[arg(long, default_value_t = 1232, value_parser = clap::value_parser!(u16).range(512..), value_name = "BYTES")]
    pub(crate) max_udp_payload: u16,

    /// UDP worker sockets (SO_REUSEPORT); default: one per available core.
    #[arg(long, value_name = "N")]
    pub(crate) udp_workers: Option<usize>,

    /// How long manifest changes settle before they are re-read, in milliseconds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub(crate) debounce_ms: u64,

    /// Response-rate limiting: UDP responses per second per client prefix (/24, /56); 0 (the
    /// default) turns it off. Pods are individually addressed and CoreDNS has no RRL, so a
    /// default limit would only throttle legitimate heavy clients (SECURITY.md).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) rrl_responses_per_second: u32,

    /// With rate limiting on, every Nth suppressed response is sent as a tiny TC=1 answer, so
    /// a real client retries over TCP (0: never). Default 2, as BIND and NSD.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub(crate) rrl_slip: u32,

    /// On SIGTERM, how long to keep answering with /ready at 503 before stopping, so the
    /// Service stops sending queries first (CoreDNS `health { lameduck }`).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) lameduck: Duration,
}

/// Where the cluster comes from: manifests, or a Kubernetes API server.
#[derive(Debug, Args)]
pub(crate) struct SourceArgs {
    /// Manifest files or folders (recursive; YAML or JSON, multi-document, kind: List),
    /// watched: standalone mode.
    #[arg(
        long = "manifests",
        short = 'f',
        num_args = 1..,
        value_name = "PATH",
        required_unless_present_any = ["kubernetes", "kubeconfig"],
        conflicts_with_all = ["kubernetes", "kubeconfig"]
    )]
    pub(crate) manifests: Vec<PathBuf>,

    /// Watch a Kubernetes API server: in-cluster config, else $KUBECONFIG or ~/.kube/config.
    #[arg(long)]
    pub(crate) kubernetes: bool,

    /// Watch the API server of this kubeconfig (implies --kubernetes).
    #[arg(long, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub(crate) context: Option<String>,

    /// How long start-up waits for the first complete list of every watched kind before
    /// answering with what it has (CoreDNS waits 5 s too); /ready stays 503 until then.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) startup_timeout: Duration,
}

impl SourceArgs {
    /// Whether the source is an API server.
    pub(crate) fn is_kubernetes(&self) -> bool {
        self.kubernetes || self.kubeconfig.is_some()
    }
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(crate::serve::serve(args))
}
