//! DNS programming latency in cluster mode: how long after the API server accepts a change
//! does `podns serve --kubeconfig` answer with it?
//!
//! For each size (`SERVICESxENDPOINTS`, optionally `:EVENTS`) the bench:
//! 1. fills an in-process [`FakeApiServer`] (real list/watch HTTP on loopback) with Services
//!    spread over namespaces in `scripts/bench.d/gen.py`'s mix (i % 4: 0, 1 headless with
//!    hostnames as a StatefulSet's, 2 headless without hostnames, 3 ClusterIP) and their
//!    EndpointSlices (at most 100 endpoints each, the controller's labels, IPs from 10.128.0.0/9);
//! 2. spawns the release `podns serve --kubeconfig …` and times launch → "listening on",
//!    → first correct answer, → `/ready` 200;
//! 3. runs K events one after the other, each changing one endpoint of a different headless
//!    Service (adding an IP and removing one, alternately): the clock starts just before
//!    `apply`, then the Service's name is asked over UDP every millisecond until the A set
//!    equals the new one (30 s at most). Then one brand-new Service + slice (until its name
//!    resolves) and one Service delete (until NXDOMAIN);
//! 4. reads podns's own `podns_kubernetes_dns_programming_duration_seconds` and
//!    `podns_zone_build_duration_seconds` from `/metrics` (the deltas over the events) and the
//!    peak RSS (`VmHWM`), and prints a markdown table.
//!
//! Events are sequential on purpose, and each waits until podns has recorded the previous one
//! in its histogram: each is a full source → zone → answer round trip on an idle podns, so the
//! numbers are the latency of one change on a quiet cluster, not throughput under a burst
//! (podns batches bursts into one build). Every change slice carries the
//! `endpoints.kubernetes.io/last-change-trigger-time` annotation set to the apply time, so podns's
//! histogram measures from the same moment as this bench (minus the wire and the poll).
//!
//! ```text
//! cargo bench -p podns --bench programming                      # 100x1,1000x10,10000x10:15
//! cargo bench -p podns --bench programming -- 2000x5:30,10000x10:10
//! PODNS_PROG_SIZES=100x1 PODNS_PROG_EVENTS=20 cargo bench -p podns --bench programming
//! ```
//! `PODNS_PROG_EVENTS` (default 50) is K for sizes without `:K`; `PODNS_PROG_TIME_CAP_S`
//! (default 180) stops a size's change events early once that much time has passed;
//! `PODNS_PROG_WRAPPER` (e.g. `heaptrack -o /tmp/podns`) runs podns under that command, for a
//! heap profile of the real thing (its timings and RSS are then the profiler's).
//! Everything is on 127.0.0.1; the child is killed at the end and on panic.

use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use podns_testkit::FakeApiServer;
use serde_json::{Value, json};

/// Sizes when neither an argument nor `PODNS_PROG_SIZES` gives them. The largest size gets
/// fewer events, to keep the run about a minute.
const DEFAULT_SIZES: &str = "100x1,1000x10,10000x10:15";
/// Sizes under `cargo test --all-targets` (no `--bench` argument): a smoke run that proves the
/// bench still works, not a measurement, and costs the test suite a second.
const SMOKE_SIZES: &str = "100x1:5";
/// K for sizes without `:K`.
const DEFAULT_EVENTS: usize = 50;
/// Per size, no new change event starts after this long (the new/delete events still run).
const DEFAULT_TIME_CAP: Duration = Duration::from_secs(180);
/// Between two polls of the changed name: fine enough for a ~ms resolution, cheap for podns.
const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// A change not visible after this long counts as lost (reported, not waited for).
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Launch → listening at the largest size on a busy 2-core machine (list + first build).
const START_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one UDP query waits for its answer before it is sent again.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// The most endpoints in one EndpointSlice (the controller's default `--max-endpoints-per-slice`).
const MAX_PER_SLICE: usize = 100;
const ZONE: &str = "cluster.local";

/// Service names and their named port, as `gen.py` picks them (index modulo the list).
const APPS: [(&str, &str, u16); 20] = [
    ("redis", "redis", 6379),
    ("postgres", "postgres", 5432),
    ("mysql", "mysql", 3306),
    ("kafka", "kafka", 9092),
    ("zookeeper", "client", 2181),
    ("cassandra", "cql", 9042),
    ("etcd", "client", 2379),
    ("consul", "http", 8500),
    ("elastic", "http", 9200),
    ("mongo", "mongo", 27017),
    ("rabbitmq", "amqp", 5672),
    ("nats", "client", 4222),
    ("web", "http", 80),
    ("api", "http", 8080),
    ("auth", "grpc", 9090),
    ("cart", "http", 8080),
    ("search", "http", 8080),
    ("billing", "grpc", 9090),
    ("gateway", "https", 443),
    ("metrics", "metrics", 9100),
];

fn main() {
    let sizes = sizes();
    let cap = env_number("PODNS_PROG_TIME_CAP_S").map_or(DEFAULT_TIME_CAP, Duration::from_secs);
    // One worker for the fake API server: podns and the poller need the other core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut results = Vec::new();
    for size in &sizes {
        eprintln!(
            "== {} services × {} endpoints, {} events",
            size.services, size.endpoints, size.events
        );
        results.push(run_size(&runtime, size, cap));
    }
    print_report(&results);
    // The machine is shared: the load says how much the neighbours took from these numbers.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("\nload average at the end (1, 5, 15 min): {}", load.trim());
    }
}

// === configuration ===

/// One cluster size to measure.
#[derive(Clone, Copy, Debug)]
struct Size {
    services: usize,
    endpoints: usize,
    events: usize,
}

/// The sizes: the first non-flag argument (cargo bench passes `--bench`), else
/// `PODNS_PROG_SIZES`, else [`DEFAULT_SIZES`].
fn sizes() -> Vec<Size> {
    let benching = std::env::args().any(|a| a == "--bench");
    let spec = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("PODNS_PROG_SIZES").ok())
        .unwrap_or_else(|| if benching { DEFAULT_SIZES } else { SMOKE_SIZES }.to_owned());
    let events = env_number("PODNS_PROG_EVENTS").map_or(DEFAULT_EVENTS, |n| n as usize);
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_size(s.trim(), events))
        .collect()
}

/// `SxE` or `SxE:K`.
fn parse_size(text: &str, default_events: usize) -> Size {
    let parsed = (|| {
        let (dims, events) = match text.split_once(':') {
            Some((dims, k)) => (dims, k.parse().ok()?),
            None => (text, default_events),
        };
        let (s, e) = dims.split_once('x')?;
        Some(Size {
            services: s.parse().ok()?,
            endpoints: e.parse().ok()?,
            events,
        })
    })();
    match parsed {
        // Four services at least, so that every kind of the mix is there.
        Some(size) if size.services >= 4 && size.endpoints > 0 => size,
        _ => panic!("size {text:?}: expected SERVICESxENDPOINTS[:EVENTS], e.g. 1000x10:20"),
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?}: not a number")),
    )
}

// === the cluster model ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SvcKind {
    /// Headless over a StatefulSet: endpoints have hostnames.
    StatefulSet,
    /// Headless over a Deployment: no hostnames.
    Deployment,
    ClusterIp,
}

#[derive(Clone, Debug)]
struct Endpoint {
    ip: Ipv4Addr,
    pod: String,
    hostname: Option<String>,
}

/// One Service and its slices as the fake API server holds them.
#[derive(Clone, Debug)]
struct Svc {
    ns: String,
    name: String,
    kind: SvcKind,
    port_name: &'static str,
    port: u16,
    cluster_ip: Ipv4Addr,
    slices: Vec<Vec<Endpoint>>,
}

impl Svc {
    fn fqdn(&self) -> String {
        format!("{}.{}.svc.{ZONE}.", self.name, self.ns)
    }

    fn headless(&self) -> bool {
        self.kind != SvcKind::ClusterIp
    }

    /// What an A query for the Service name must answer.
    fn expected(&self) -> BTreeSet<Ipv4Addr> {
        if self.headless() {
            self.slices.iter().flatten().map(|ep| ep.ip).collect()
        } else {
            BTreeSet::from([self.cluster_ip])
        }
    }

    fn service_json(&self) -> Value {
        let cluster_ip = if self.headless() {
            "None".to_owned()
        } else {
            self.cluster_ip.to_string()
        };
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": self.name, "namespace": self.ns},
            "spec": {
                "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                "selector": {"app": self.name},
                "ports": [{"name": self.port_name, "port": self.port,
                           "targetPort": self.port, "protocol": "TCP"}]
            }
        })
    }

    /// Slice `index`; `triggered` is the trigger-time annotation (the moment of the change).
    fn slice_json(&self, index: usize, triggered: Option<SystemTime>) -> Value {
        let mut labels = json!({
            "kubernetes.io/service-name": self.name,
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        });
        if self.headless() {
            labels["service.kubernetes.io/headless"] = json!("");
        }
        let mut metadata = json!({
            "name": format!("{}-s{index}", self.name),
            "namespace": self.ns,
            "labels": labels,
        });
        if let Some(at) = triggered {
            let at = k8s_openapi::jiff::Timestamp::try_from(at).expect("a time after 1970");
            metadata["annotations"] =
                json!({"endpoints.kubernetes.io/last-change-trigger-time": at.to_string()});
        }
        let endpoints: Vec<Value> = self.slices[index]
            .iter()
            .map(|ep| {
                let mut e = json!({
                    "addresses": [ep.ip.to_string()],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "targetRef": {"kind": "Pod", "namespace": self.ns, "name": ep.pod},
                });
                if let Some(host) = &ep.hostname {
                    e["hostname"] = json!(host);
                }
                e
            })
            .collect();
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": metadata,
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": self.port_name, "port": self.port, "protocol": "TCP"}]
        })
    }
}

/// The `i`-th address of 10.128.0.0/9 (the pod CIDR of the other benchmarks).
fn pod_ip(i: usize) -> Ipv4Addr {
    let offset = u32::try_from(i).expect("fits the /9");
    assert!(offset < 1 << 23, "more endpoints than a /9 holds");
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + offset)
}

/// Endpoint IPs added by the events: the upper half of the /9, never used by the fill.
fn event_ip(i: usize) -> Ipv4Addr {
    pod_ip((1 << 22) + i)
}

/// `gen.py`'s namespaces: `default` and `team-1…`, about 25 services each, 20 at most.
fn namespaces(services: usize) -> Vec<String> {
    let k = (services / 25).clamp(1, 20);
    std::iter::once("default".to_owned())
        .chain((1..k).map(|j| format!("team-{j}")))
        .collect()
}

fn make_cluster(size: &Size) -> (Vec<String>, Vec<Svc>) {
    let nss = namespaces(size.services);
    let mut next_ip = 1;
    let services = (0..size.services)
        .map(|i| {
            let (app, port_name, port) = APPS[i % APPS.len()];
            let kind = [
                SvcKind::StatefulSet,
                SvcKind::StatefulSet,
                SvcKind::Deployment,
                SvcKind::ClusterIp,
            ][i % 4];
            let base = format!("{app}-{i}");
            let name = if kind == SvcKind::ClusterIp {
                base.clone()
            } else {
                format!("{base}-headless")
            };
            let endpoints: Vec<Endpoint> = (0..size.endpoints)
                .map(|r| {
                    let ip = pod_ip(next_ip);
                    next_ip += 1;
                    let (pod, hostname) = match kind {
                        SvcKind::StatefulSet => {
                            (format!("{base}-{r}"), Some(format!("{base}-{r}")))
                        }
                        _ => (format!("{base}-{:x}", ip.to_bits()), None),
                    };
                    Endpoint { ip, pod, hostname }
                })
                .collect();
            let offset = u32::try_from(i + 10).expect("few services");
            Svc {
                ns: nss[i % nss.len()].clone(),
                name,
                kind,
                port_name,
                port,
                // 10.96.0.0/12, the kubeadm service CIDR.
                cluster_ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + offset),
                slices: endpoints
                    .chunks(MAX_PER_SLICE)
                    .map(<[Endpoint]>::to_vec)
                    .collect(),
            }
        })
        .collect();
    (nss, services)
}

// === the podns process ===

/// A running `podns serve`, killed on drop (also when the bench panics).
struct Podns {
    child: Child,
    dns: SocketAddr,
    admin: SocketAddr,
    listening_after: Duration,
    /// The last log lines, for the panic message when something times out.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Drop for Podns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Podns {
    fn spawn(kubeconfig: &Path, launched: Instant) -> Self {
        let wrapper = std::env::var("PODNS_PROG_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut child = match words.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(words).arg(env!("CARGO_BIN_EXE_podns"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_podns")),
        };
        let mut child = child
            .arg("serve")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--upstream",
                "none",
                // Wait for the complete list even at 100k endpoints on a busy machine, so
                // "ready" and the first answer mean the whole cluster.
                "--startup-timeout",
                "240s",
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn podns serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::clone(&log);
        let (tx, rx) = mpsc::channel();
        // Drains stderr for the whole run (a full pipe would block podns) and reports the
        // two addresses the way the e2e harness reads them.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                for (marker, kind) in [("listening on ", "dns"), ("admin on ", "admin")] {
                    if let Some(rest) = line.split(marker).nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        let _ = tx.send((kind, addr.to_owned(), Instant::now()));
                    }
                }
                let mut log = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if log.len() == 40 {
                    log.pop_front();
                }
                log.push_back(line);
            }
        });
        let mut podns = Self {
            child,
            dns: SocketAddr::from(([0, 0, 0, 0], 0)),
            admin: SocketAddr::from(([0, 0, 0, 0], 0)),
            listening_after: Duration::ZERO,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut dns, mut admin) = (None, None);
        while dns.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(("dns", addr, at)) => {
                    dns = Some(addr.parse().expect("listen address"));
                    podns.listening_after = at - launched;
                }
                Ok((_, addr, _)) => admin = Some(addr.parse().expect("admin address")),
                Err(_) => panic!("podns serve did not start; log:\n{}", podns.log()),
            }
        }
        podns.dns = dns.expect("dns address");
        podns.admin = admin.expect("admin address");
        podns
    }

    fn log(&self) -> String {
        let log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// `GET path` on the admin port: status and body.
    fn admin_get(&self, path: &str) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(self.admin).expect("connect to admin");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.admin
        )
        .expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn metrics(&self) -> Metrics {
        let (status, body) = self.admin_get("/metrics");
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }

    /// Waits (bounded) until podns has recorded `count` programming-latency samples in all.
    fn wait_programmed(&self, count: f64) {
        let deadline = Instant::now() + VISIBLE_TIMEOUT;
        while self.metrics().programming_count < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The podns process: the child, or under `PODNS_PROG_WRAPPER` the first process below it
    /// that runs the podns binary (a wrapper such as heaptrack runs it as a descendant).
    fn podns_pid(&self) -> u32 {
        let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_podns")).ok();
        let mut queue = std::collections::VecDeque::from([self.child.id()]);
        while let Some(pid) = queue.pop_front() {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            if exe.is_some() && exe == binary {
                return pid;
            }
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            queue.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        self.child.id()
    }

    /// `VmHWM`, `VmRSS`, and of the latter the anonymous (heap, stacks) and file-backed (the
    /// binary's and libraries' pages) parts, in MiB, of the podns process.
    fn rss(&self) -> (f64, f64, f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.podns_pid()))
            .expect("read /proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(f64::NAN, |kib| kib / 1024.0)
        };
        (
            field("VmHWM:"),
            field("VmRSS:"),
            field("RssAnon:"),
            field("RssFile:"),
        )
    }
}

/// The histograms' sums and counts (all label sets added up).
#[derive(Clone, Copy, Debug, Default)]
struct Metrics {
    programming_sum: f64,
    programming_count: f64,
    build_sum: f64,
    build_count: f64,
}

impl Metrics {
    fn parse(text: &str) -> Self {
        let mut m = Self::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let name = series.split('{').next().unwrap_or_default();
            let slot = match name {
                "podns_kubernetes_dns_programming_duration_seconds_sum" => &mut m.programming_sum,
                "podns_kubernetes_dns_programming_duration_seconds_count" => {
                    &mut m.programming_count
                }
                "podns_zone_build_duration_seconds_sum" => &mut m.build_sum,
                "podns_zone_build_duration_seconds_count" => &mut m.build_count,
                _ => continue,
            };
            *slot += value;
        }
        m
    }

    /// What happened between `before` and `self`.
    fn since(self, before: Self) -> Self {
        Self {
            programming_sum: self.programming_sum - before.programming_sum,
            programming_count: self.programming_count - before.programming_count,
            build_sum: self.build_sum - before.build_sum,
            build_count: self.build_count - before.build_count,
        }
    }
}

// === asking ===

/// A UDP client for A queries, connected to podns.
struct Asker {
    socket: UdpSocket,
    id: u16,
}

/// What an A answer said.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    rcode: ResponseCode,
    addresses: BTreeSet<Ipv4Addr>,
}

impl Asker {
    fn new(server: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        socket.connect(server).expect("connect the UDP socket");
        socket
            .set_read_timeout(Some(QUERY_TIMEOUT))
            .expect("read timeout");
        Self { socket, id: 0 }
    }

    /// One A query; `None` when no answer came in time.
    fn ask(&mut self, name: &Name) -> Option<Answer> {
        self.id = self.id.wrapping_add(1);
        let mut query = Message::new(self.id, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(name.clone(), RecordType::A));
        self.socket
            .send(&query.to_vec().expect("encode a query"))
            .ok()?;
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + QUERY_TIMEOUT;
        // Late answers to earlier (timed-out) queries are skipped by their id.
        while Instant::now() < deadline {
            let n = self.socket.recv(&mut buf).ok()?;
            let Ok(reply) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if reply.metadata.id != self.id {
                continue;
            }
            let addresses = reply
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect();
            return Some(Answer {
                rcode: reply.metadata.response_code,
                addresses,
            });
        }
        None
    }

    /// Polls `name` until `done` holds for its answer; how long that took from `since`, or
    /// `None` after [`VISIBLE_TIMEOUT`].
    fn wait_until(
        &mut self,
        name: &Name,
        since: Instant,
        mut done: impl FnMut(&Answer) -> bool,
    ) -> Option<Duration> {
        loop {
            if self.ask(name).is_some_and(|a| done(&a)) {
                return Some(since.elapsed());
            }
            if since.elapsed() > VISIBLE_TIMEOUT {
                return None;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

fn name(fqdn: &str) -> Name {
    Name::from_ascii(fqdn).expect("a valid name")
}

// === one size ===

/// Everything measured at one size.
#[derive(Debug)]
struct SizeResult {
    size: Size,
    namespaces: usize,
    fill: Duration,
    listening: Duration,
    first_answer: Duration,
    ready: Duration,
    initial: Metrics,
    /// Event → visible of the endpoint changes; `None`: not visible in time.
    changes: Vec<Option<Duration>>,
    /// Whether the change events stopped at the time cap.
    capped: bool,
    created: Option<Duration>,
    deleted: Option<Duration>,
    during: Metrics,
    peak_rss: f64,
    rss: f64,
    rss_anon: f64,
    rss_file: f64,
}

fn run_size(runtime: &tokio::runtime::Runtime, size: &Size, cap: Duration) -> SizeResult {
    let (nss, mut services) = make_cluster(size);
    let api = runtime.block_on(FakeApiServer::start());
    let fill_started = Instant::now();
    for ns in &nss {
        api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    for svc in &services {
        api.apply(svc.service_json());
        for index in 0..svc.slices.len() {
            api.apply(svc.slice_json(index, None));
        }
    }
    let fill = fill_started.elapsed();
    eprintln!("  fake API server filled in {fill:.2?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig)
        .expect("write the kubeconfig");
    let launched = Instant::now();
    let podns = Podns::spawn(&kubeconfig, launched);
    let mut asker = Asker::new(podns.dns);

    // Start-up: the first service's full answer, then /ready.
    let first = &services[0];
    let expected = first.expected();
    asker
        .wait_until(&name(&first.fqdn()), launched, |a| a.addresses == expected)
        .unwrap_or_else(|| panic!("no first answer; log:\n{}", podns.log()));
    let first_answer = launched.elapsed();
    while podns.admin_get("/ready").0 != 200 {
        assert!(
            launched.elapsed() < START_TIMEOUT,
            "never ready; log:\n{}",
            podns.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let ready = launched.elapsed();
    eprintln!(
        "  listening {:.2?}, first answer {first_answer:.2?}, ready {ready:.2?}",
        podns.listening_after
    );
    // kube's watchers list first and open their watch streams after: an event applied before
    // a stream is open waits for it. Start measuring in the steady state, every stream open
    // (Namespace, Service, EndpointSlice).
    while api.open_watches() < 3 {
        assert!(
            launched.elapsed() < START_TIMEOUT,
            "watches never opened; log:\n{}",
            podns.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let watching = launched.elapsed();
    eprintln!("  all watches open {watching:.2?}");
    let initial = podns.metrics();

    // The change events: a different headless service each, spread over the cluster.
    let headless: Vec<usize> = (0..services.len())
        .filter(|&i| services[i].headless())
        .collect();
    let mut step = (headless.len() / size.events.max(1)).max(1);
    // Three of every four services are headless (two StatefulSet, one Deployment): a step
    // that is a multiple of 3 would hit one kind of the mix only.
    if step.is_multiple_of(3) {
        step -= 1;
    }
    let events_started = Instant::now();
    let mut changes = Vec::new();
    let mut capped = false;
    for e in 0..size.events {
        if events_started.elapsed() > cap {
            capped = true;
            break;
        }
        let svc = &mut services[headless[(e * step) % headless.len()]];
        if e % 2 == 0 {
            let ip = event_ip(e);
            let hostname = (svc.kind == SvcKind::StatefulSet).then(|| format!("{}-e{e}", svc.name));
            svc.slices[0].push(Endpoint {
                ip,
                pod: format!("{}-e{e}", svc.name),
                hostname,
            });
        } else {
            svc.slices[0].pop();
        }
        let expected = svc.expected();
        let qname = name(&svc.fqdn());
        let slice = svc.slice_json(0, Some(SystemTime::now()));
        let at = Instant::now();
        api.apply(slice);
        let took = asker.wait_until(&qname, at, |a| a.addresses == expected);
        match took {
            Some(t) => eprintln!("  event {e}: {} visible after {t:.2?}", svc.name),
            None => eprintln!(
                "  event {e}: {} NOT visible after {VISIBLE_TIMEOUT:?}",
                svc.name
            ),
        }
        changes.push(took);
        // The answer is visible once the snapshot is swapped in, but podns then drops the old
        // snapshot and records the metric before it takes the next event. Wait for that, so
        // each event starts on an idle podns and measures one change, not a queue.
        podns.wait_programmed(initial.programming_count + changes.len() as f64);
    }

    // A brand-new headless Service with its slice, then its deletion.
    let mut fresh = services[headless[0]].clone();
    fresh.name = "bench-new-headless".to_owned();
    fresh.slices = vec![
        (0..2)
            .map(|r| Endpoint {
                ip: event_ip(size.events + r),
                pod: format!("bench-new-{r}"),
                hostname: Some(format!("bench-new-{r}")),
            })
            .collect(),
    ];
    let qname = name(&fresh.fqdn());
    let expected = fresh.expected();
    let (service, slice) = (
        fresh.service_json(),
        fresh.slice_json(0, Some(SystemTime::now())),
    );
    let at = Instant::now();
    api.apply(service);
    api.apply(slice);
    let created = asker.wait_until(&qname, at, |a| a.addresses == expected);
    eprintln!("  new service visible after {} ms", opt_ms(created));
    let at = Instant::now();
    api.delete("v1", "Service", &fresh.ns, &fresh.name);
    let deleted = asker.wait_until(&qname, at, |a| a.rcode == ResponseCode::NXDomain);
    eprintln!("  deleted service gone after {} ms", opt_ms(deleted));

    // podns records the programming latency right after publishing; give the last one a
    // moment to land before reading.
    std::thread::sleep(Duration::from_millis(200));
    let during = podns.metrics().since(initial);
    let (peak_rss, rss, rss_anon, rss_file) = podns.rss();
    let listening = podns.listening_after;
    drop(podns);
    SizeResult {
        size: *size,
        namespaces: nss.len(),
        fill,
        listening,
        first_answer,
        ready,
        initial,
        changes,
        capped,
        created,
        deleted,
        during,
        peak_rss,
        rss,
        rss_anon,
        rss_file,
    }
}

// === report ===

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "timeout".to_owned(), ms)
}

/// The nearest-rank `p`-quantile of sorted `v`.
fn quantile(v: &[Duration], p: f64) -> Duration {
    let rank = (p * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn print_report(results: &[SizeResult]) {
    println!("\n### Event → answer visible (sequential events, UDP poll every 1 ms)\n");
    println!(
        "| services × endpoints | events | median ms | p90 ms | max ms | not visible | new Service ms | Service delete ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let mut seen: Vec<Duration> = r.changes.iter().flatten().copied().collect();
        seen.sort();
        let lost = r.changes.len() - seen.len();
        let (median, p90, max) = if seen.is_empty() {
            ("–".to_owned(), "–".to_owned(), "–".to_owned())
        } else {
            (
                ms(quantile(&seen, 0.5)),
                ms(quantile(&seen, 0.9)),
                ms(*seen.last().expect("not empty")),
            )
        };
        println!(
            "| {} × {} | {}{} | {median} | {p90} | {max} | {lost} | {} | {} |",
            r.size.services,
            r.size.endpoints,
            r.changes.len(),
            if r.capped { " (time cap)" } else { "" },
            opt_ms(r.created),
            opt_ms(r.deleted),
        );
    }
    println!("\n### podns's own view of the same events (/metrics deltas over the events)\n");
    println!(
        "| services × endpoints | programming latency mean ms (count) | zone builds | zone build mean ms | build share of event→visible |"
    );
    println!("|---|---:|---:|---:|---:|");
    for r in results {
        let d = r.during;
        let per = |sum: f64, count: f64| {
            if count > 0.0 {
                format!("{:.1}", sum / count * 1e3)
            } else {
                "–".to_owned()
            }
        };
        let seen: Vec<Duration> = r.changes.iter().flatten().copied().collect();
        let mean_seen = if seen.is_empty() {
            f64::NAN
        } else {
            seen.iter().map(Duration::as_secs_f64).sum::<f64>() / seen.len() as f64
        };
        let share = if d.build_count > 0.0 && mean_seen.is_finite() {
            format!("{:.0} %", d.build_sum / d.build_count / mean_seen * 100.0)
        } else {
            "–".to_owned()
        };
        println!(
            "| {} × {} | {} ({}) | {} | {} | {share} |",
            r.size.services,
            r.size.endpoints,
            per(d.programming_sum, d.programming_count),
            d.programming_count,
            d.build_count,
            per(d.build_sum, d.build_count),
        );
    }
    println!("\n### Start-up and memory\n");
    println!(
        "| services × endpoints | namespaces | API fill s | launch → listening s | → first answer s | → /ready 200 s | first zone build s | peak RSS MiB (VmHWM) | RSS at end MiB (anonymous + file) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        println!(
            "| {} × {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} ({:.1} + {:.1}) |",
            r.size.services,
            r.size.endpoints,
            r.namespaces,
            r.fill.as_secs_f64(),
            r.listening.as_secs_f64(),
            r.first_answer.as_secs_f64(),
            r.ready.as_secs_f64(),
            r.initial.build_sum,
            r.peak_rss,
            r.rss,
            r.rss_anon,
            r.rss_file,
        );
    }
}
