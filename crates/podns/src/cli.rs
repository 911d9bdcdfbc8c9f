//! Command-line parsing: one typed configuration per crate, built once at the edge.

mod get;
mod lab;
mod resolve;
mod serve;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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

/// Where the cluster comes from and how the standalone controllers and the zone behave.
/// Shared by `serve` and `get`, so both see exactly the same derived cluster.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct ClusterArgs {
    /// Manifest files or folders (recursive; YAML or JSON, multi-document, kind: List).
    #[arg(long = "manifests", short = 'f', required = true, num_args = 1.., value_name = "PATH")]
    pub(crate) manifests: Vec<PathBuf>,

    /// The cluster domain served (the spec's <zone>).
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    pub(crate) cluster_domain: String,

    /// TTL of every positive answer, in seconds (kubeadm's CoreDNS uses 30).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub(crate) ttl: u32,

    /// TTL of negative answers (NXDOMAIN, NODATA) and the SOA minimum, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub(crate) negative_ttl: u32,

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
        }
    }

    pub(crate) fn zone_config(&self, listen: Option<SocketAddr>) -> podns_zone::ZoneConfig {
        let mut nameservers = self.nameserver_ips.clone();
        if nameservers.is_empty() {
            nameservers.extend(listen.map(|a| a.ip()).filter(|ip| !ip.is_unspecified()));
        }
        podns_zone::ZoneConfig {
            cluster_domains: vec![
                self.cluster_domain
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            ],
            ttl: self.ttl,
            negative_ttl: self.negative_ttl,
            nameservers,
            ..podns_zone::ZoneConfig::default()
        }
    }
}
