//! Command-line parsing: one typed configuration per crate, built once at the edge.

mod get;
mod lab;
mod resolve;
pub(crate) mod serve;

use std::net::IpAddr;

use clap::{ArgAction, Args as ClapArgs, Parser, Subcommand};
use ipnet::IpNet;

/// Kubernetes headless-service DNS, with or without a cluster.
#[derive(Debug, Parser)]
#[command(name = "podns", version, about, propagate_version = true)]
pub(crate) struct Args {
    /// More logging: -v for debug, -vv for trace (RUST_LOG overrides).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the cluster DNS zone over UDP and TCP, following manifest changes live.
    Serve(serve::ServeArgs),
    /// Show what podns derived from the manifests (services, endpointslices, pods, records).
    Get(get::GetArgs),
    /// Resolve a headless service's endpoints as a client does, once or with --watch.
    Resolve(resolve::ResolveArgs),
    /// Run the manifests' pods in network namespaces on this machine, with podns as their DNS.
    Lab(lab::LabArgs),
}

/// Runs the chosen subcommand.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Serve(serve) => serve::run(serve),
        Command::Get(get) => get::run(&get),
        Command::Resolve(resolve) => resolve::run(&resolve),
        Command::Lab(lab) => lab::run(lab),
    }
}

/// Manifest files or folders, for the commands that read them directly.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct ManifestArgs {
    /// Manifest files or folders (recursive; YAML or JSON, multi-document, kind: List).
    #[arg(long = "manifests", short = 'f', required = true, num_args = 1.., value_name = "PATH")]
    pub(crate) manifests: Vec<std::path::PathBuf>,
}

/// How the cluster is turned into a zone: the zone's options, the view filters, forwarding,
/// and the standalone controllers. Shared by `serve`, `get` and `lab`, so all of them see
/// exactly the same zone. Options without a default here fall back to the config file
/// (`serve --config`), then to the documented default (`docs/configuration.md`).
#[derive(Debug, Clone, Default, ClapArgs)]
pub(crate) struct ClusterArgs {
    /// A cluster domain served (the spec's <zone>); repeat for several. Default cluster.local.
    #[arg(long = "cluster-domain", value_name = "DOMAIN", action = ArgAction::Append)]
    pub(crate) cluster_domains: Option<Vec<String>>,

    /// A reverse zone served (`in-addr.arpa`, `10.in-addr.arpa`, or a CIDR such as
    /// `10.0.0.0/8`); repeat for several. Default in-addr.arpa and ip6.arpa.
    #[arg(long = "reverse-zone", value_name = "ZONE|CIDR", action = ArgAction::Append)]
    pub(crate) reverse_zones: Option<Vec<String>>,

    /// TTL of positive answers, 0–3600 s. Default 30 (kubeadm's `ttl 30`).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) ttl: Option<u32>,

    /// TTL of negative answers (NXDOMAIN, NODATA) and the SOA minimum, in seconds. Default 30.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) negative_ttl: Option<u32>,

    /// Pod records `a-b-c-d.<ns>.pod.<zone>`: disabled (default; removed from the spec in
    /// 1.1.0), insecure (any such name answers its address, kubeadm's choice) or verified
    /// (only addresses of pods in that namespace).
    #[arg(long, value_name = "disabled|insecure|verified")]
    pub(crate) pods: Option<String>,

    /// Name endpoints without a hostname by their pod's name instead of their dashed address
    /// (CoreDNS `endpoint_pod_names`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub(crate) endpoint_pod_names: Option<bool>,

    /// Serve no endpoint records: headless services and endpoint names answer NXDOMAIN
    /// (CoreDNS `noendpoints`).
    #[arg(long = "no-endpoints", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub(crate) no_endpoints: Option<bool>,

    /// Serve only these namespaces (CoreDNS `namespaces`). Default: all.
    #[arg(long, value_delimiter = ',', value_name = "NS,…")]
    pub(crate) namespaces: Option<Vec<String>>,

    /// Serve only Services whose labels match this selector, e.g. `app=web,tier in (a,b)`
    /// (CoreDNS `labels`).
    #[arg(long, value_name = "SELECTOR")]
    pub(crate) labels: Option<String>,

    /// Zones whose NXDOMAIN answers go to the upstreams instead (CoreDNS `fallthrough`);
    /// only with forwarding on. Bare: every zone; `none`: off. Default in-addr.arpa and
    /// ip6.arpa, as kubeadm's Corefile.
    #[arg(long, value_name = "ZONE", action = ArgAction::Append, num_args = 0..)]
    pub(crate) fallthrough: Option<Vec<String>>,

    /// Where names outside the served zones go: `none` (answer REFUSED), a resolv.conf path,
    /// or servers as IP[:PORT]; repeat for failover. Default /etc/resolv.conf.
    #[arg(long = "upstream", value_name = "none|PATH|IP[:PORT]", action = ArgAction::Append)]
    pub(crate) upstreams: Option<Vec<String>>,

    /// Time an upstream has to answer one attempt, in milliseconds. Default 2000.
    #[arg(long, value_name = "MS")]
    pub(crate) forward_timeout_ms: Option<u64>,

    /// Entries in the cache of forwarded answers (0 turns it off). Default 10000.
    #[arg(long, value_name = "N")]
    pub(crate) cache_entries: Option<usize>,

    /// Pod IP range for synthesised pods; give a second, IPv6 range for dual-stack.
    #[arg(long = "pod-cidr", default_value = "10.244.0.0/16", value_name = "CIDR", action = ArgAction::Append)]
    pub(crate) pod_cidrs: Vec<IpNet>,

    /// ClusterIP range for Services without one; give a second, IPv6 range for dual-stack.
    #[arg(long = "service-cidr", default_value = "10.96.0.0/12", value_name = "CIDR", action = ArgAction::Append)]
    pub(crate) service_cidrs: Vec<IpNet>,

    /// Node names that DaemonSets run on and pods are spread over.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "node-1",
        value_name = "NAMES"
    )]
    pub(crate) nodes: Vec<String>,

    /// Addresses published for the zone's nameserver name ns.dns.<zone> (default: the listen
    /// address of `serve` when it is not a wildcard).
    #[arg(long = "nameserver-ip", value_name = "IP")]
    pub(crate) nameserver_ips: Vec<IpAddr>,
}

impl ClusterArgs {
    pub(crate) fn controller_config(&self) -> podns_cluster::ControllerConfig {
        podns_cluster::ControllerConfig {
            pod_cidrs: self.pod_cidrs.clone(),
            service_cidrs: self.service_cidrs.clone(),
            nodes: self.nodes.clone(),
            // Full pods, for `get` and `lab`; `serve` asks for lean ones (`Pipeline::serving`).
            lean_pods: false,
        }
    }
}
