//! `podns get`: what podns derived from the manifests, printed as kubectl prints it.
//!
//! The objects shown are the ones the zone is built from — given in the manifests or made by
//! the standalone controllers (pods of workloads, EndpointSlices of selectors, mirrored
//! Endpoints) — so `get` answers "why does DNS say that?". `records` prints the zone itself in
//! zone-file form.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::{ClusterArgs, ManifestArgs};
use crate::pipeline::Pipeline;
use crate::settings::Settings;

/// Options of `podns get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// What to show.
    #[arg(value_enum)]
    resource: Resource,

    /// Only this namespace (default: `default`, as kubectl; `records` default to all).
    #[arg(short, long, value_name = "NS", conflicts_with = "all_namespaces")]
    namespace: Option<String>,

    /// Every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,

    /// Output format: a table (default), a wider table, YAML or JSON.
    #[arg(short, long, value_enum)]
    output: Option<Output>,

    #[command(flatten)]
    manifests: ManifestArgs,

    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Resource {
    /// Services, with the ClusterIPs podns assigned.
    #[value(alias = "service", alias = "svc")]
    Services,
    /// EndpointSlices: given, derived from selectors, or mirrored from Endpoints.
    #[value(alias = "endpointslice", alias = "eps")]
    Endpointslices,
    /// Pods: given or synthesised for StatefulSets, Deployments, ReplicaSets, DaemonSets.
    #[value(alias = "pod", alias = "po")]
    Pods,
    /// The DNS records of the zone, in zone-file form.
    #[value(alias = "record", alias = "rr")]
    Records,
    /// Everything the zone is built from, as an API server would hold it after its
    /// controllers ran: namespaces, services, endpointslices and pods. With `-o json|yaml`,
    /// one `kind: List` that `kubectl apply -f` or a test API server can take.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Wide,
    Yaml,
    Json,
}

/// Which namespaces a listing covers.
enum Scope {
    All,
    One(String),
}

impl Scope {
    fn covers(&self, meta: &ObjectMeta) -> bool {
        match self {
            Self::All => true,
            Self::One(ns) => meta.namespace.as_deref().unwrap_or("default") == ns,
        }
    }
}

pub(crate) fn run(args: &GetArgs) -> anyhow::Result<()> {
    let objects = podns_cluster::load(&args.manifests.manifests)?;
    let settings = Settings::resolve(&args.cluster, None, None)?;
    let zones = settings.zone.cluster_domains.clone();
    // Records need only the zone: the serving pipeline derives it from lean pods and drops
    // the manifests once read (at 10k Services × 10 endpoints the full derivation held
    // ~0.8 GB, `BENCHMARKS.md`). The other resources print the derived objects whole.
    let mut pipeline = if args.resource == Resource::Records {
        Pipeline::serving(&settings)
    } else {
        Pipeline::standalone(&settings)
    };
    let derived = pipeline.resync(objects)?;
    let scope = match (&args.namespace, args.all_namespaces, args.resource) {
        (_, true, _) | (None, false, Resource::Records) => Scope::All,
        (Some(ns), false, _) => Scope::One(ns.clone()),
        (None, false, _) => Scope::One("default".to_owned()),
    };
    let out = match args.resource {
        Resource::Services => {
            let items = select(&derived.cluster.services, &scope, |s| &s.metadata);
            render(&items, args.output, &scope, service_table)?
        }
        Resource::Endpointslices => {
            let items = select(&derived.cluster.endpoint_slices, &scope, |s| &s.metadata);
            render(&items, args.output, &scope, endpoint_slice_table)?
        }
        Resource::Pods => {
            let items = select(&derived.cluster.pods, &scope, |p| &p.metadata);
            render(&items, args.output, &scope, pod_table)?
        }
        Resource::All => all(&derived.cluster, &scope, args.output)?,
        // The snapshot keeps wire answers only; the records come from the pipeline's builder.
        Resource::Records => records(&pipeline.rrsets(), &zones, &scope, args.output)?,
    };
    print!("{out}");
    Ok(())
}

/// `get all`: every derived object in the scope; tables one kind after another, as kubectl.
fn all(
    cluster: &podns_cluster::DerivedCluster,
    scope: &Scope,
    output: Option<Output>,
) -> anyhow::Result<String> {
    let namespaces: Vec<_> = cluster
        .namespaces
        .iter()
        .filter(|ns| match scope {
            Scope::All => true,
            Scope::One(one) => ns.metadata.name.as_deref() == Some(one),
        })
        .collect();
    let services = select(&cluster.services, scope, |s| &s.metadata);
    let slices = select(&cluster.endpoint_slices, scope, |s| &s.metadata);
    let pods = select(&cluster.pods, scope, |p| &p.metadata);
    if matches!(output, Some(Output::Json | Output::Yaml)) {
        let mut items = Vec::new();
        items.extend(namespaces.iter().map(serde_json::to_value));
        items.extend(services.iter().map(serde_json::to_value));
        items.extend(slices.iter().map(serde_json::to_value));
        items.extend(pods.iter().map(serde_json::to_value));
        let items = items.into_iter().collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&serde_json::Value> = items.iter().collect();
        return render(&refs, output, scope, |_, _| Table::new(Vec::new()));
    }
    let mut out = String::new();
    for part in [
        render(&services, output, scope, service_table)?,
        render(&slices, output, scope, endpoint_slice_table)?,
        render(&pods, output, scope, pod_table)?,
    ] {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&part);
    }
    Ok(out)
}

fn select<'a, T>(items: &'a [T], scope: &Scope, meta: impl Fn(&T) -> &ObjectMeta) -> Vec<&'a T> {
    items
        .iter()
        .filter(|item| scope.covers(meta(item)))
        .collect()
}

/// A list in the chosen format; tables come from `table`, YAML/JSON as a `kind: List`.
fn render<T: Serialize>(
    items: &[&T],
    output: Option<Output>,
    scope: &Scope,
    table: fn(&[&T], bool) -> Table,
) -> anyhow::Result<String> {
    match output {
        Some(Output::Json) => Ok(serde_json::to_string_pretty(&List::new(items))? + "\n"),
        Some(Output::Yaml) => Ok(serde_saphyr::to_string(&List::new(items))?),
        wide => {
            if items.is_empty() {
                return Ok(match scope {
                    Scope::All => "No resources found\n".to_owned(),
                    Scope::One(ns) => format!("No resources found in {ns} namespace.\n"),
                });
            }
            let mut table = table(items, wide == Some(Output::Wide));
            if matches!(scope, Scope::All) {
                table.prepend_namespace(items.len());
            }
            Ok(table.to_string())
        }
    }
}

/// `kind: List`, as `kubectl get -o yaml|json` prints several objects.
#[derive(Serialize)]
struct List<'a, T> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    items: &'a [&'a T],
}

impl<'a, T> List<'a, T> {
    fn new(items: &'a [&'a T]) -> Self {
        Self {
            api_version: "v1",
            kind: "List",
            items,
        }
    }
}

// === tables ===

/// Left-aligned columns separated by three spaces, as kubectl prints them.
struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    namespaces: Vec<String>,
}

impl Table {
    fn new(header: Vec<&'static str>) -> Self {
        Self {
            header,
            rows: Vec::new(),
            namespaces: Vec::new(),
        }
    }

    fn row(&mut self, namespace: Option<&str>, cells: Vec<String>) {
        self.namespaces
            .push(namespace.unwrap_or("default").to_owned());
        self.rows.push(cells);
    }

    fn prepend_namespace(&mut self, _len: usize) {
        self.header.insert(0, "NAMESPACE");
        for (row, ns) in self.rows.iter_mut().zip(&self.namespaces) {
            row.insert(0, ns.clone());
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}   ");
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

fn service_table(services: &[&Service], wide: bool) -> Table {
    let mut header = vec!["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"];
    if wide {
        header.push("SELECTOR");
    }
    let mut table = Table::new(header);
    for svc in services {
        let spec = svc.spec.clone().unwrap_or_default();
        let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".to_owned());
        let cluster_ip = match (&spec.cluster_ip, kind.as_str()) {
            (_, "ExternalName") => "<none>".to_owned(),
            (Some(ip), _) if !ip.is_empty() => ip.clone(),
            _ => "<none>".to_owned(),
        };
        let external = match kind.as_str() {
            "ExternalName" => spec
                .external_name
                .clone()
                .unwrap_or_else(|| "<none>".into()),
            _ => spec
                .external_ips
                .as_ref()
                .filter(|ips| !ips.is_empty())
                .map_or_else(|| "<none>".to_owned(), |ips| ips.join(",")),
        };
        let ports = spec
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let proto = p.protocol.as_deref().unwrap_or("TCP");
                match p.node_port {
                    Some(node) => format!("{}:{node}/{proto}", p.port),
                    None => format!("{}/{proto}", p.port),
                }
            })
            .collect::<Vec<_>>();
        let mut cells = vec![
            name(&svc.metadata),
            kind,
            cluster_ip,
            external,
            if ports.is_empty() {
                "<none>".to_owned()
            } else {
                ports.join(",")
            },
        ];
        if wide {
            let selector = spec
                .selector
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>();
            cells.push(if selector.is_empty() {
                "<none>".to_owned()
            } else {
                selector.join(",")
            });
        }
        table.row(svc.metadata.namespace.as_deref(), cells);
    }
    table
}

fn endpoint_slice_table(slices: &[&EndpointSlice], wide: bool) -> Table {
    let mut header = vec!["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS"];
    if wide {
        header.push("HOSTNAMES");
    }
    let mut table = Table::new(header);
    for slice in slices {
        let ports = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.port.map(|n| n.to_string()))
            .collect::<Vec<_>>();
        let addresses: Vec<&str> = slice
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.iter().map(String::as_str))
            .collect();
        let endpoints = match addresses.len() {
            0 => "<unset>".to_owned(),
            1..=3 => addresses.join(","),
            n => format!("{} + {} more...", addresses[..3].join(","), n - 3),
        };
        let mut cells = vec![
            name(&slice.metadata),
            slice.address_type.clone(),
            if ports.is_empty() {
                "<unset>".to_owned()
            } else {
                ports.join(",")
            },
            endpoints,
        ];
        if wide {
            let hostnames = slice
                .endpoints
                .iter()
                .filter_map(|e| e.hostname.clone())
                .collect::<Vec<_>>();
            cells.push(if hostnames.is_empty() {
                "<none>".to_owned()
            } else {
                hostnames.join(",")
            });
        }
        table.row(slice.metadata.namespace.as_deref(), cells);
    }
    table
}

fn pod_table(pods: &[&Pod], wide: bool) -> Table {
    let mut header = vec!["NAME", "READY", "STATUS", "RESTARTS"];
    if wide {
        header.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
    }
    let mut table = Table::new(header);
    for pod in pods {
        let containers = pod.spec.as_ref().map_or(0, |s| s.containers.len());
        let status = pod.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let phase = if pod.metadata.deletion_timestamp.is_some() {
            "Terminating".to_owned()
        } else {
            status.phase.clone().unwrap_or_else(|| "Pending".to_owned())
        };
        let mut cells = vec![
            name(&pod.metadata),
            format!("{}/{containers}", if ready { containers } else { 0 }),
            phase,
            "0".to_owned(),
        ];
        if wide {
            cells.push(status.pod_ip.clone().unwrap_or_else(|| "<none>".to_owned()));
            cells.push(
                pod.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_else(|| "<none>".to_owned()),
            );
            cells.push("<none>".to_owned());
            cells.push("<none>".to_owned());
        }
        table.row(pod.metadata.namespace.as_deref(), cells);
    }
    table
}

fn name(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

// === records ===

/// The zone in zone-file form; `-n NS` keeps the records naming that namespace's services.
fn records(
    rrsets: &[podns_zone::RRset],
    zones: &[String],
    scope: &Scope,
    output: Option<Output>,
) -> anyhow::Result<String> {
    let needles: Option<Vec<String>> = match scope {
        Scope::All => None,
        Scope::One(ns) => Some(
            zones
                .iter()
                .map(|zone| format!(".{}.svc.{zone}.", ns.to_ascii_lowercase()))
                .collect(),
        ),
    };
    let lines: Vec<String> = rrsets
        .iter()
        .flat_map(|rrset| {
            rrset
                .to_string()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|line| {
            needles
                .as_ref()
                .is_none_or(|needles| needles.iter().any(|n| line.contains(n.as_str())))
        })
        .collect();
    let structured =
        || -> Vec<Record<'_>> { lines.iter().filter_map(|l| Record::parse(l)).collect() };
    Ok(match output {
        Some(Output::Json) => serde_json::to_string_pretty(&structured())? + "\n",
        Some(Output::Yaml) => serde_saphyr::to_string(&structured())?,
        _ => lines.iter().map(|l| format!("{l}\n")).collect(),
    })
}

/// One zone-file line, split into its fields for YAML and JSON output.
#[derive(Serialize)]
struct Record<'a> {
    name: &'a str,
    ttl: u32,
    class: &'a str,
    #[serde(rename = "type")]
    rtype: &'a str,
    data: &'a str,
}

impl<'a> Record<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let mut fields = line.splitn(5, ' ');
        Some(Self {
            name: fields.next()?,
            ttl: fields.next()?.parse().ok()?,
            class: fields.next()?,
            rtype: fields.next()?,
            data: fields.next().unwrap_or(""),
        })
    }
}
