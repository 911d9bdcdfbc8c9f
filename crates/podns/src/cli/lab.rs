//! `podns lab`: the manifests' pods running in network namespaces on this machine.
//!
//! `up` derives the pods, gives each a network namespace with its address and a kubelet-style
//! `resolv.conf` pointing at a podns DNS server, runs its container command, and returns once
//! every pod is ready (StatefulSets in ordinal order); `down` removes everything `up` made.
//! `status`, `restart` and `delete` work on a lab that is up, from any shell. The work is
//! podns-lab's; this file is its command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use podns_lab::{Lab, LabConfig, Probe};

use super::{ClusterArgs, ManifestArgs};

/// Options of `podns lab`.
#[derive(Debug, Args)]
pub(crate) struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,

    /// The lab's name: its namespace is `podns-<name>`, its state `<state-dir>/<name>/`.
    #[arg(long, default_value = "lab", global = true, value_name = "NAME")]
    name: String,

    /// Where labs keep their state (pids, namespaces made, logs, served manifests).
    #[arg(long, default_value = podns_lab::DEFAULT_STATE_ROOT, global = true, value_name = "DIR")]
    state_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Start every pod in its own network namespace; returns once all are ready.
    Up(Box<UpArgs>),
    /// Stop every pod and the lab's DNS server; remove every namespace and file the lab made.
    Down,
    /// Show the lab's pods: address, readiness, process.
    Status {
        /// Print the whole lab state as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restart a pod's container in place (same name, same IP), as the kubelet would.
    Restart {
        /// The pod's name.
        pod: String,
    },
    /// Delete a pod; its owner brings up a replacement (StatefulSet: same name and IP; other
    /// controllers: a new name and IP; a bare Pod: none).
    Delete {
        /// The pod's name.
        pod: String,
    },
    /// Internal: one check inside the lab namespace (exit status 0 when it holds).
    #[command(hide = true)]
    Probe {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Options of `podns lab up`.
#[derive(Debug, Args)]
struct UpArgs {
    #[command(flatten)]
    manifests: ManifestArgs,

    #[command(flatten)]
    cluster: ClusterArgs,

    /// How long each pod may take to become ready, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    ready_timeout: u64,
}

pub(crate) fn run(args: LabArgs) -> anyhow::Result<()> {
    let LabArgs {
        command,
        name,
        state_dir,
    } = args;
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        anyhow::bail!("--name {name:?}: use up to 32 lower-case letters, digits and '-'");
    }
    match command {
        LabCommand::Up(up) => {
            let config = lab_config(name, state_dir, &up)?;
            let lab = Lab::up(&config)?;
            print!("{}", status_table(&lab));
            Ok(())
        }
        LabCommand::Down => match Lab::open(&state_dir, &name) {
            Ok(lab) => Ok(lab.down()?),
            // Idempotent, so cleanup guards and scripts can always call it.
            Err(podns_lab::LabError::NotUp { .. }) => {
                eprintln!("podns: lab {name} is not up; nothing to do");
                Ok(())
            }
            Err(e) => Err(e.into()),
        },
        LabCommand::Status { json } => {
            let lab = Lab::open(&state_dir, &name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(lab.state())?);
            } else {
                print!("{}", status_table(&lab));
            }
            Ok(())
        }
        LabCommand::Restart { pod } => {
            let mut lab = Lab::open(&state_dir, &name)?;
            lab.restart(&pod)?;
            println!("pod/{pod} restarted");
            Ok(())
        }
        LabCommand::Delete { pod } => {
            let mut lab = Lab::open(&state_dir, &name)?;
            match lab.delete(&pod)? {
                Some(new) => println!("pod/{pod} deleted; pod/{new} is ready in its place"),
                None => println!("pod/{pod} deleted"),
            }
            Ok(())
        }
        LabCommand::Probe { args } => {
            let probe = Probe::from_args(&args).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(probe.run(), "probe failed");
            Ok(())
        }
    }
}

fn lab_config(name: String, state_root: PathBuf, up: &UpArgs) -> anyhow::Result<LabConfig> {
    let cluster = &up.cluster;
    // The lab network has no route off the machine: forwarding could only time out.
    let mut serve_args = vec!["--upstream=none".to_owned()];
    serve_args.extend(cluster.ttl.map(|ttl| format!("--ttl={ttl}")));
    serve_args.extend(
        cluster
            .negative_ttl
            .map(|ttl| format!("--negative-ttl={ttl}")),
    );
    for zone in cluster.cluster_domains.iter().flatten() {
        serve_args.push(format!("--cluster-domain={zone}"));
    }
    serve_args.extend(
        cluster
            .nameserver_ips
            .iter()
            .map(|ip| format!("--nameserver-ip={ip}")),
    );
    // Relative manifest paths must mean the same to the server, whose working directory is
    // the lab's state folder.
    let manifests = up
        .manifests
        .manifests
        .iter()
        .map(|p| std::path::absolute(p).with_context(|| format!("{}", p.display())))
        .collect::<anyhow::Result<_>>()?;
    Ok(LabConfig {
        name,
        state_root,
        manifests,
        controller: cluster.controller_config(),
        zone: cluster
            .cluster_domains
            .as_ref()
            .and_then(|zones| zones.first())
            .map_or("cluster.local", String::as_str)
            .trim_end_matches('.')
            .to_ascii_lowercase(),
        podns: std::env::current_exe().context("finding the podns binary")?,
        serve_args,
        ready_timeout: Duration::from_secs(up.ready_timeout),
    })
}

fn status_table(lab: &Lab) -> String {
    let state = lab.state();
    let mut out = format!(
        "lab {}: bridge {} in netns {}, DNS on {}:53\n",
        state.name, state.network.cidr, state.lab_netns, state.network.bridge_ip
    );
    let rows: Vec<[String; 5]> = state
        .pods
        .iter()
        .map(|p| {
            let process = match p.process {
                Some(id) if podns_lab::is_alive(id) => format!("pid {}", id.pid),
                Some(id) => format!("pid {} (exited)", id.pid),
                None => "none".to_owned(),
            };
            [
                format!("{}/{}", p.namespace, p.name),
                p.ip.to_string(),
                if p.ready { "1/1" } else { "0/1" }.to_owned(),
                process,
                lab.log_path(p).display().to_string(),
            ]
        })
        .collect();
    let header = ["POD", "IP", "READY", "PROCESS", "LOG"];
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(header.map(str::to_owned)).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}
