//! Running a lab: bringing it up, changing its pods, taking it down.
//!
//! [`Lab`] is responsible for the order of things and for the state file that records them.
//! Every namespace, folder and process is recorded in `state.json` *before* it is made, so a
//! `lab down` from any later process (or after a failed `up`) removes exactly what the lab
//! made, and nothing that was there before: `up` refuses to start when a namespace or
//! `/etc/netns` folder it would make already exists.
//!
//! ```text
//! up:      plan ─▶ lab netns + bridge ─▶ pod netns + /etc/netns ─▶ DNS server (pods not ready)
//!            ─▶ for each start stage: start ─▶ ready (port open) ─▶ publish ─▶ DNS shows it
//! restart: unpublish ─▶ stop ─▶ start ─▶ ready ─▶ publish         (same name and address)
//! delete:  unpublish ─▶ stop ─▶ remove netns ─▶ the owner's replacement, if any, comes up
//! down:    stop pods, stages in reverse ─▶ stop DNS ─▶ remove namespaces and folders
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podns_cluster::{ClusterStore, ControllerConfig, Object};
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::net;
use crate::plan::{self, LabPod, Network, Owner};
use crate::probe::Probe;
use crate::process::{self, Launch, ProcessId};

/// Where lab state lives by default: one folder per lab, removed by `lab down`.
pub const DEFAULT_STATE_ROOT: &str = "/run/podns-lab";

/// How long a process gets between SIGTERM and SIGKILL (the kubelet's default grace is 30 s;
/// a lab wants to be quick).
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the DNS server may take to start and to follow one change (it re-reads the
/// manifests 50 ms after a change; a cold debug binary on a busy machine is slower).
const DNS_TIMEOUT: Duration = Duration::from_secs(20);
/// Between two probes.
const POLL: Duration = Duration::from_millis(100);

/// What `lab up` needs.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// The lab's name: its namespace is `podns-<name>`, its state `<state_root>/<name>/`.
    pub name: String,
    /// The folder that holds every lab's state.
    pub state_root: PathBuf,
    /// Manifest files or folders.
    pub manifests: Vec<PathBuf>,
    /// The standalone controllers' configuration (pod and service CIDRs, nodes).
    pub controller: ControllerConfig,
    /// The cluster domain (`cluster.local`).
    pub zone: String,
    /// The `podns` binary: runs the DNS server and the probes inside the lab namespace.
    pub podns: PathBuf,
    /// More `podns serve` flags (TTLs, …).
    pub serve_args: Vec<String>,
    /// How long each pod may take to become ready.
    pub ready_timeout: Duration,
}

/// Everything the lab made, as recorded in `state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabState {
    /// The lab's name.
    pub name: String,
    /// The lab namespace, home of the bridge and the DNS server.
    pub lab_netns: String,
    /// Whether the lab namespace exists (the lab made it).
    pub lab_netns_made: bool,
    /// Whether `/etc/netns` itself was made by the lab (removed again when empty).
    #[serde(default)]
    pub etc_netns_made: bool,
    /// Pod CIDR and bridge address.
    pub network: Network,
    /// The cluster domain.
    pub zone: String,
    /// The `podns` binary that probes run with.
    pub podns: PathBuf,
    /// Per-pod readiness timeout.
    pub ready_timeout: Duration,
    /// The DNS server process.
    pub server: Option<ProcessId>,
    /// The pods, in plan order.
    pub pods: Vec<LabPod>,
    /// Bumped on every replacement, so replacement names and addresses never repeat.
    pub generation: u64,
    /// The next free `veth<N>` name in the lab namespace.
    pub next_veth: u32,
}

/// A lab that is up: its state and its folder.
#[derive(Debug)]
pub struct Lab {
    /// `<state_root>/<name>/`.
    dir: PathBuf,
    /// What the lab made; saved after every change.
    state: LabState,
}

// === impl Lab ===

impl Lab {
    /// Brings a lab up: returns once every pod is running and ready, and DNS says so.
    ///
    /// On failure, everything made so far is removed again and the error says which pod (and
    /// the tail of its log) or which command failed.
    pub fn up(config: &LabConfig) -> Result<Self> {
        preflight()?;
        let dir = config.state_root.join(&config.name);
        if dir.join("state.json").exists() {
            return Err(LabError::AlreadyUp {
                name: config.name.clone(),
                dir,
            });
        }
        let objects = podns_cluster::load(&config.manifests)?;
        let mut store = ClusterStore::default();
        store.resync(objects.clone());
        let derived = podns_cluster::derive(&store, &config.controller)?;
        let (network, pods) = plan::plan(
            &objects,
            &derived,
            &config.controller.pod_cidrs,
            &config.zone,
        )?;

        let lab_netns = format!("podns-{}", config.name);
        for name in std::iter::once(&lab_netns).chain(pods.iter().map(|p| &p.name)) {
            if net::netns_exists(name) {
                return Err(LabError::Exists {
                    what: format!("network namespace {name}"),
                });
            }
        }
        for pod in &pods {
            if net::etc_dir(&pod.name).exists() {
                return Err(LabError::Exists {
                    what: net::etc_dir(&pod.name).display().to_string(),
                });
            }
        }
        std::fs::create_dir_all(dir.join("manifests"))
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        let mut lab = Self {
            dir,
            state: LabState {
                name: config.name.clone(),
                lab_netns,
                lab_netns_made: false,
                etc_netns_made: !net::etc_root_exists(),
                network,
                zone: config.zone.clone(),
                podns: config.podns.clone(),
                ready_timeout: config.ready_timeout,
                server: None,
                next_veth: u32::try_from(pods.len()).unwrap_or(u32::MAX),
                pods,
                generation: 0,
            },
        };
        lab.save()?;
        match lab.bring_up(config, &objects) {
            Ok(()) => Ok(lab),
            Err(error) => {
                tracing::error!("lab up failed, removing what it made: {error}");
                if let Err(down) = lab.teardown() {
                    tracing::error!("{down}");
                }
                Err(error)
            }
        }
    }

    /// The lab `name` under `state_root`, as `up` left it.
    pub fn open(state_root: &Path, name: &str) -> Result<Self> {
        let dir = state_root.join(name);
        let path = dir.join("state.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LabError::NotUp {
                    name: name.to_owned(),
                    dir,
                });
            }
            Err(e) => return Err(LabError::io(format!("reading {}", path.display()), e)),
        };
        let state =
            serde_json::from_str(&text).map_err(|source| LabError::State { path, source })?;
        Ok(Self { dir, state })
    }

    /// What the lab made and how its pods are.
    pub fn state(&self) -> &LabState {
        &self.state
    }

    /// The pod's log file.
    pub fn log_path(&self, pod: &LabPod) -> PathBuf {
        self.pod_dir(pod).join("pod.log")
    }

    /// Stops everything and removes every namespace, folder and file the lab made.
    pub fn down(mut self) -> Result<()> {
        self.teardown()
    }

    /// Restarts a pod's container in place, as the kubelet does: same name, same address. The
    /// pod leaves DNS while it is down and comes back once it is ready.
    pub fn restart(&mut self, name: &str) -> Result<()> {
        let i = self.find(name)?;
        self.set_ready(i, false)?;
        self.stop_pod(i)?;
        self.start_pod(i)?;
        self.wait_ready(i)?;
        self.set_ready(i, true)
    }

    /// Deletes a pod, and brings up what its owner would make instead: a StatefulSet the same
    /// name and address, another controller a new name and a new address, a bare Pod nothing.
    /// Returns the replacement's name.
    pub fn delete(&mut self, name: &str) -> Result<Option<String>> {
        let i = self.find(name)?;
        self.set_ready(i, false)?;
        self.stop_pod(i)?;
        self.remove_pod_netns(i)?;
        let pod = &self.state.pods[i];
        let Some((new_name, ip)) = plan::replacement(
            pod,
            &self.state.network,
            &self.state.pods,
            self.state.generation,
        ) else {
            self.state.pods.remove(i);
            self.save()?;
            self.publish()?;
            return Ok(None);
        };
        if new_name != pod.name && net::netns_exists(&new_name) {
            return Err(LabError::Exists {
                what: format!("network namespace {new_name}"),
            });
        }
        self.state.generation += 1;
        let veth = format!("veth{}", self.state.next_veth);
        self.state.next_veth += 1;
        let pod = &mut self.state.pods[i];
        if !matches!(pod.owner, Owner::StatefulSet { .. }) {
            pod.hostname = pod
                .object
                .spec
                .as_ref()
                .and_then(|s| s.hostname.clone())
                .unwrap_or_else(|| new_name.clone());
        }
        pod.name = new_name.clone();
        pod.ip = ip;
        pod.veth = veth;
        self.save()?;
        self.publish()?;
        self.make_pod_netns(i)?;
        self.start_pod(i)?;
        self.wait_ready(i)?;
        self.set_ready(i, true)?;
        Ok(Some(new_name))
    }

    fn bring_up(&mut self, config: &LabConfig, objects: &[Object]) -> Result<()> {
        let network = self.state.network;
        self.state.lab_netns_made = true;
        self.save()?;
        net::add_lab_netns(
            &self.state.lab_netns,
            network.bridge_ip,
            network.cidr.prefix_len(),
        )?;
        for i in 0..self.state.pods.len() {
            self.make_pod_netns(i)?;
        }

        let manifests = self.dir.join("manifests");
        write_json(
            &manifests.join("objects.json"),
            &plan::served_objects(objects)?,
        )?;
        self.publish()?;
        self.start_server(config, &manifests)?;

        for stage in plan::start_stages(&self.state.pods) {
            for &i in &stage {
                self.start_pod(i)?;
            }
            for &i in &stage {
                self.wait_ready(i)?;
            }
            for &i in &stage {
                self.state.pods[i].ready = true;
            }
            self.save()?;
            self.publish()?;
            for &i in &stage {
                self.wait_dns(i)?;
            }
            for &i in &stage {
                let pod = &self.state.pods[i];
                tracing::info!(pod = %format!("{}/{}", pod.namespace, pod.name), ip = %pod.ip, "ready");
            }
        }
        Ok(())
    }

    fn start_server(&mut self, config: &LabConfig, manifests: &Path) -> Result<()> {
        let listen = SocketAddr::from((self.state.network.bridge_ip, 53));
        let mut argv: Vec<String> = vec![
            config.podns.display().to_string(),
            "serve".to_owned(),
            "--manifests".to_owned(),
            manifests.display().to_string(),
            "--listen".to_owned(),
            listen.to_string(),
            "--cluster-domain".to_owned(),
            config.zone.clone(),
            "--debounce-ms".to_owned(),
            "50".to_owned(),
        ];
        for cidr in &config.controller.service_cidrs {
            argv.extend(["--service-cidr".to_owned(), cidr.to_string()]);
        }
        argv.extend(config.serve_args.iter().cloned());
        let id = process::spawn(&Launch {
            netns: &self.state.lab_netns,
            hostname: None,
            argv: &argv,
            env: &[],
            dir: &self.dir,
            log: &self.dir.join("server.log"),
        })?;
        self.state.server = Some(id);
        self.save()?;
        let deadline = Instant::now() + DNS_TIMEOUT;
        loop {
            if !process::is_alive(id) {
                return Err(LabError::Dns(format!(
                    "exited at start-up:\n{}",
                    process::log_tail(&self.dir.join("server.log"), 20)
                )));
            }
            if self.probe(&Probe::Tcp(listen)) {
                tracing::info!(%listen, "lab DNS server up");
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabError::Dns(format!(
                    "not answering on {listen} after {DNS_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    fn make_pod_netns(&mut self, i: usize) -> Result<()> {
        let network = self.state.network;
        let pod = &mut self.state.pods[i];
        // Recorded first: if making them fails half-way, `down` still removes the half.
        pod.netns_made = true;
        pod.etc_made = true;
        self.save()?;
        let pod = &self.state.pods[i];
        net::add_pod_netns(
            &self.state.lab_netns,
            &pod.name,
            &pod.veth,
            pod.ip,
            network.cidr.prefix_len(),
        )?;
        net::write_etc(
            &pod.name,
            &pod.namespace,
            &self.state.zone,
            network.bridge_ip,
            pod.ip,
            &pod.hostname,
            pod.fqdn.as_deref(),
        )?;
        let dir = self.pod_dir(pod);
        std::fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))
    }

    fn remove_pod_netns(&mut self, i: usize) -> Result<()> {
        let pod = &mut self.state.pods[i];
        if pod.netns_made {
            net::del_netns(&pod.name)?;
            pod.netns_made = false;
        }
        if pod.etc_made {
            net::remove_etc(&pod.name)?;
            pod.etc_made = false;
        }
        self.save()
    }

    fn start_pod(&mut self, i: usize) -> Result<()> {
        let pod = &self.state.pods[i];
        let Some(program) = pod.command.first() else {
            tracing::warn!(pod = %pod.name, "no command in the pod spec: the pod runs no process");
            return Ok(());
        };
        if which(program).is_none() {
            tracing::warn!(pod = %pod.name, "{program} is not on this machine: the pod runs no process");
            return Ok(());
        }
        let dir = self.pod_dir(pod);
        let id = process::spawn(&Launch {
            netns: &pod.name,
            hostname: Some(&pod.hostname),
            argv: &pod.command,
            env: &pod.env,
            dir: &dir,
            log: &dir.join("pod.log"),
        })?;
        self.state.pods[i].process = Some(id);
        self.save()
    }

    fn stop_pod(&mut self, i: usize) -> Result<()> {
        if let Some(id) = self.state.pods[i].process {
            process::stop(id, STOP_GRACE)?;
            self.state.pods[i].process = None;
            self.save()?;
        }
        Ok(())
    }

    /// Ready: the process runs and its first TCP port accepts connections on the pod address,
    /// seen from the lab namespace (as the kubelet's TCP probe sees it from the node).
    fn wait_ready(&self, i: usize) -> Result<()> {
        let pod = &self.state.pods[i];
        let timeout = self.state.ready_timeout;
        let deadline = Instant::now() + timeout;
        let Some(id) = pod.process else {
            return Ok(());
        };
        let not_ready = |reason: String| LabError::NotReady {
            pod: format!("{}/{}", pod.namespace, pod.name),
            reason: format!(
                "{reason}; its log ends:\n{}",
                process::log_tail(&self.log_path(pod), 15)
            ),
        };
        loop {
            if !process::is_alive(id) {
                return Err(not_ready(format!("{:?} exited", pod.command)));
            }
            let ready = match pod.port {
                Some(port) => self.probe(&Probe::Tcp(SocketAddr::from((pod.ip, port)))),
                None => true,
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let port = pod.port.unwrap_or_default();
                return Err(not_ready(format!(
                    "nothing accepted connections on {}:{port} within {timeout:?}",
                    pod.ip
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Publishes the pod's readiness and waits until DNS follows.
    fn set_ready(&mut self, i: usize, ready: bool) -> Result<()> {
        self.state.pods[i].ready = ready;
        self.save()?;
        self.publish()?;
        self.wait_dns(i)
    }

    /// Waits until DNS shows the pod as its readiness says (a pod no headless Service
    /// selects changes no answer, so there is nothing to wait for).
    fn wait_dns(&self, i: usize) -> Result<()> {
        let pod = &self.state.pods[i];
        let Some(fqdn) = pod.dns_name(&self.state.zone) else {
            return Ok(());
        };
        let probe = Probe::Dns {
            server: SocketAddr::from((self.state.network.bridge_ip, 53)),
            name: fqdn.clone(),
            ip: pod.ip,
            present: pod.ready,
        };
        let deadline = Instant::now() + DNS_TIMEOUT;
        while !self.probe(&probe) {
            if Instant::now() >= deadline {
                let how = if pod.ready { "answer" } else { "drop" };
                return Err(LabError::Dns(format!(
                    "did not {how} {} for {fqdn} within {DNS_TIMEOUT:?}; see {}",
                    pod.ip,
                    self.dir.join("server.log").display()
                )));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Writes the pods the DNS server serves. Renamed into place, so the server never reads a
    /// half-written file.
    fn publish(&self) -> Result<()> {
        let tmp = self.dir.join("pods.json.tmp");
        write_json(&tmp, &plan::served_pods(&self.state.pods)?)?;
        let path = self.dir.join("manifests").join("pods.json");
        std::fs::rename(&tmp, &path)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))
    }

    /// Runs a probe inside the lab namespace.
    fn probe(&self, probe: &Probe) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.state.lab_netns])
            .arg(&self.state.podns)
            .args(["lab", "probe"])
            .args(probe.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops everything, in reverse start order, then removes what was made. Keeps going past
    /// failures and reports them all; the state folder stays when anything is left behind.
    fn teardown(&mut self) -> Result<()> {
        let mut leftovers = Vec::new();
        for stage in plan::start_stages(&self.state.pods).into_iter().rev() {
            for i in stage.into_iter().rev() {
                if let Err(e) = self.stop_pod(i) {
                    leftovers.push(format!("pod {}: {e}", self.state.pods[i].name));
                }
            }
        }
        if let Some(id) = self.state.server {
            match process::stop(id, STOP_GRACE) {
                Ok(()) => self.state.server = None,
                Err(e) => leftovers.push(format!("DNS server: {e}")),
            }
        }
        for i in 0..self.state.pods.len() {
            if let Err(e) = self.remove_pod_netns(i) {
                leftovers.push(format!("pod {}: {e}", self.state.pods[i].name));
            }
        }
        if self.state.lab_netns_made {
            match net::del_netns(&self.state.lab_netns) {
                Ok(()) => self.state.lab_netns_made = false,
                Err(e) => leftovers.push(e.to_string()),
            }
        }
        if self.state.etc_netns_made {
            net::remove_etc_root();
        }
        if !leftovers.is_empty() {
            self.save()?;
            return Err(LabError::Leftovers(leftovers));
        }
        std::fs::remove_dir_all(&self.dir)
            .map_err(|e| LabError::io(format!("removing {}", self.dir.display()), e))
    }

    fn find(&self, name: &str) -> Result<usize> {
        self.state
            .pods
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| LabError::NoSuchPod(name.to_owned()))
    }

    fn pod_dir(&self, pod: &LabPod) -> PathBuf {
        self.dir.join("pods").join(&pod.namespace).join(&pod.name)
    }

    fn save(&self) -> Result<()> {
        let tmp = self.dir.join("state.json.tmp");
        let json = serde_json::to_value(&self.state).map_err(|source| LabError::State {
            path: tmp.clone(),
            source,
        })?;
        write_json(&tmp, &json)?;
        let path = self.dir.join("state.json");
        std::fs::rename(&tmp, &path)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))
    }
}

/// The programs the lab runs, with the package each comes in.
const PROGRAMS: [(&str, &str); 5] = [
    ("ip", "iproute2"),
    ("unshare", "util-linux"),
    ("hostname", "hostname"),
    ("kill", "procps"),
    ("sh", "dash"),
];

/// Root, and every program the lab runs, before anything is made.
fn preflight() -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self is owned by the effective uid of the process looking at it.
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    if uid != 0 {
        return Err(LabError::NotRoot { uid });
    }
    for (program, package) in PROGRAMS {
        if which(program).is_none() {
            return Err(LabError::MissingProgram { program, package });
        }
    }
    Ok(())
}

/// Where `program` is: itself when it has a `/`, else the first executable on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| LabError::State {
        path: path.to_owned(),
        source,
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}
