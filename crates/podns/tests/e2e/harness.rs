//! Starting `podns serve` and asking it questions with `dig`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the server may take to start (a cold debug binary on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The bundled example folder `name`.
pub(crate) fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// Writes the Redis example into `dir` with `replicas` pods, replacing the file by rename as
/// editors and deploy tools do.
pub(crate) fn write_redis(dir: &Path, replicas: u32) {
    let manifest = std::fs::read_to_string(example("redis-statefulset").join("redis.yaml"))
        .unwrap()
        .replace("replicas: 3", &format!("replicas: {replicas}"));
    let tmp = dir.join(".redis.yaml.tmp");
    std::fs::write(&tmp, manifest).unwrap();
    std::fs::rename(&tmp, dir.join("redis.yaml")).unwrap();
}

/// The `podns` binary built for these tests.
pub(crate) fn podns() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podns"))
}

/// Where a server under test gets its cluster from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `--manifests`: podns reads the files and runs the controllers itself.
    Standalone,
    /// `--kubeconfig`: the same manifests, derived by `podns get all`, served by a fake
    /// Kubernetes API server that podns lists and watches.
    Cluster,
}

/// Generates each test function twice, in `standalone` and `cluster` modules, with `$mode`
/// bound to the matching [`Mode`]: the same assertions must hold whichever source feeds podns.
macro_rules! in_both_modes {
    ($($(#[$meta:meta])* fn $name:ident($mode:ident) $body:block)*) => {
        mod standalone {
            #[allow(unused_imports)]
            use super::*;
            $($(#[$meta])* #[test] fn $name() { let $mode = $crate::harness::Mode::Standalone; $body })*
        }
        mod cluster {
            #[allow(unused_imports)]
            use super::*;
            $($(#[$meta])* #[test] fn $name() { let $mode = $crate::harness::Mode::Cluster; $body })*
        }
    };
}
pub(crate) use in_both_modes;

/// A fake Kubernetes API server holding a cluster, on its own runtime (the tests are sync).
pub(crate) struct FakeCluster {
    runtime: tokio::runtime::Runtime,
    /// The API server.
    pub(crate) api: podns_testkit::FakeApiServer,
    dir: tempfile::TempDir,
}

impl FakeCluster {
    /// An API server holding the objects podns derives from `manifests` (with `extra` flags).
    /// Of `extra`, only the flags that shape the derivation (`podns get` takes them too).
    pub(crate) fn from_manifests(manifests: &[&Path], extra: &[&str]) -> Self {
        const DERIVATION_FLAGS: [&str; 4] = [
            "--pod-cidr",
            "--service-cidr",
            "--nodes",
            "--cluster-domain",
        ];
        let mut cmd = podns();
        cmd.args(["get", "all", "-A", "-o", "json"]);
        for m in manifests {
            cmd.arg("--manifests").arg(m);
        }
        let mut flags = extra.iter();
        while let Some(flag) = flags.next() {
            if DERIVATION_FLAGS.contains(flag) {
                cmd.arg(flag).args(flags.next());
            }
        }
        let output = cmd.output().expect("run podns get all");
        assert!(
            output.status.success(),
            "podns get all failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let all: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("podns get -o json prints JSON");
        let cluster = Self::empty();
        for item in all["items"].as_array().expect("items") {
            cluster.api.apply(item.clone());
        }
        cluster
    }

    /// An API server with no objects.
    pub(crate) fn empty() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let api = runtime.block_on(podns_testkit::FakeApiServer::start());
        let dir = tempfile::tempdir().expect("tempdir");
        api.write_kubeconfig(&dir.path().join("kubeconfig"))
            .expect("write kubeconfig");
        Self { runtime, api, dir }
    }

    /// The kubeconfig that points at the API server.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Runs `f` on the API server's runtime (for its async controls).
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

/// A running `podns serve`, killed on drop.
pub(crate) struct Server {
    child: Child,
    /// Where it answers, UDP and TCP.
    pub(crate) addr: SocketAddr,
    /// Where it serves /health, /ready and /metrics.
    pub(crate) admin: Option<SocketAddr>,
    /// Every line it has logged so far.
    log: Arc<Mutex<Vec<String>>>,
    /// The API server a cluster-mode server watches.
    pub(crate) cluster: Option<FakeCluster>,
}

impl Server {
    /// Serves `manifests` on 127.0.0.1 with a free port; `extra` are more `serve` flags.
    pub(crate) fn start(manifests: &[&Path], extra: &[&str]) -> Self {
        Self::start_in(Mode::Standalone, manifests, extra)
    }

    /// Serves `manifests` in `mode`: read directly, or through a fake API server.
    pub(crate) fn start_in(mode: Mode, manifests: &[&Path], extra: &[&str]) -> Self {
        match mode {
            Mode::Standalone => {
                let mut args: Vec<String> = Vec::new();
                for m in manifests {
                    args.push("--manifests".into());
                    args.push(m.display().to_string());
                }
                args.extend(extra.iter().map(|s| (*s).to_owned()));
                Self::spawn(&args, None)
            }
            Mode::Cluster => Self::watching(FakeCluster::from_manifests(manifests, extra), extra),
        }
    }

    /// Serves what `cluster`'s API server holds, following it live.
    pub(crate) fn watching(cluster: FakeCluster, extra: &[&str]) -> Self {
        let mut args = vec![
            "--kubeconfig".to_owned(),
            cluster.kubeconfig().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::spawn(&args, Some(cluster))
    }

    fn spawn(source_args: &[String], cluster: Option<FakeCluster>) -> Self {
        let mut cmd = podns();
        cmd.arg("serve").args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--debounce-ms",
            "50",
        ]);
        // Tests never send queries off the machine; forwarding tests give their own upstream.
        if !source_args.iter().any(|a| a.starts_with("--upstream")) {
            cmd.args(["--upstream", "none"]);
        }
        cmd.args(source_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn podns serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                for (marker, kind) in [("listening on ", "dns"), ("admin on ", "admin")] {
                    if let Some(rest) = line.split(marker).nth(1) {
                        let addr = rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let _ = tx.send((kind, addr));
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut addr = None;
        let mut admin = None;
        while addr.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(("dns", a)) => addr = Some(a.parse().expect("listen address")),
                Ok((_, a)) => admin = Some(a.parse().expect("admin address")),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "podns serve did not start; log:\n{}",
                        log.lock().unwrap().join("\n")
                    );
                }
            }
        }
        Self {
            child,
            addr: addr.expect("dns address"),
            admin,
            log,
            cluster,
        }
    }

    /// The server's process id (for reading its memory use from `/proc`).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident set size (`VmRSS` in `/proc/PID/status`), in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// The fake API server of a cluster-mode server.
    pub(crate) fn api(&self) -> &FakeCluster {
        self.cluster.as_ref().expect("a cluster-mode server")
    }

    /// `GET path` on the admin port: status code and body.
    pub(crate) fn admin_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read as _, Write as _};
        let admin = self.admin.expect("admin address");
        let mut stream = std::net::TcpStream::connect(admin).expect("connect to the admin port");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
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

    /// The value of one sample in /metrics (`name{labels}` exactly as exposed), if present.
    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
        let (status, body) = self.admin_get("/metrics");
        assert_eq!(status, 200, "{body}");
        body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
    }

    /// `dig @server -p port ARGS…`, parsed.
    pub(crate) fn dig(&self, args: &[&str]) -> Dig {
        let output = Command::new("dig")
            .arg(format!("@{}", self.addr.ip()))
            .args(["-p", &self.addr.port().to_string(), "+tries=1", "+time=3"])
            .args(args)
            .output()
            .expect("dig must be installed (bind9-dnsutils; scripts/test installs it)");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "dig {args:?} failed:\n{text}");
        Dig::parse(&text)
    }

    /// `dig … +short`, one answer datum per line.
    pub(crate) fn dig_short(&self, args: &[&str]) -> Vec<String> {
        let output = Command::new("dig")
            .arg(format!("@{}", self.addr.ip()))
            .args([
                "-p",
                &self.addr.port().to_string(),
                "+tries=1",
                "+time=3",
                "+short",
            ])
            .args(args)
            .output()
            .expect("dig must be installed (bind9-dnsutils; scripts/test installs it)");
        assert!(output.status.success(), "dig {args:?} failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// `nslookup -port=PORT NAME 127.0.0.1`, its standard output.
    pub(crate) fn nslookup(&self, name: &str) -> String {
        let output = Command::new("nslookup")
            .args([
                &format!("-port={}", self.addr.port()),
                name,
                &self.addr.ip().to_string(),
            ])
            .output()
            .expect("nslookup must be installed (bind9-dnsutils; scripts/test installs it)");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until a log line contains `needle` (at least `count` such lines).
    pub(crate) fn wait_for_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .count();
            if seen >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no log line {needle:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Polls `probe` until it returns true (bounded: 20 s), for changes made on disk.
    pub(crate) fn eventually(&self, what: &str, mut probe: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !probe() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Sends SIGTERM.
    pub(crate) fn send_term(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; its exit status.
    pub(crate) fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "podns did not exit after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One resource record as dig prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rr {
    pub(crate) name: String,
    pub(crate) ttl: u32,
    pub(crate) class: String,
    pub(crate) rtype: String,
    pub(crate) data: String,
}

/// A parsed dig answer.
#[derive(Debug, Default)]
pub(crate) struct Dig {
    pub(crate) status: String,
    pub(crate) flags: Vec<String>,
    pub(crate) question: Vec<String>,
    pub(crate) answer: Vec<Rr>,
    pub(crate) authority: Vec<Rr>,
    pub(crate) additional: Vec<Rr>,
    pub(crate) edns_udp: Option<u16>,
    pub(crate) text: String,
}

impl Dig {
    fn parse(text: &str) -> Self {
        let mut dig = Self {
            text: text.to_owned(),
            ..Self::default()
        };
        let mut section = "";
        for line in text.lines() {
            if let Some(rest) = line.split("status: ").nth(1) {
                dig.status = rest.split(',').next().unwrap_or_default().to_owned();
            } else if let Some(rest) = line.strip_prefix(";; flags: ") {
                let flags = rest.split(';').next().unwrap_or_default();
                dig.flags = flags.split_whitespace().map(str::to_owned).collect();
            } else if let Some(rest) = line
                .split("udp: ")
                .nth(1)
                .filter(|_| line.starts_with("; EDNS"))
            {
                dig.edns_udp = rest.trim().parse().ok();
            } else if line.starts_with(";; ") && line.ends_with(" SECTION:") {
                section = line.trim_start_matches(";; ").trim_end_matches(" SECTION:");
            } else if line.trim().is_empty() {
                section = "";
            } else if section == "QUESTION" {
                dig.question.push(
                    line.trim_start_matches(';')
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            } else if !line.starts_with(';') && !section.is_empty() {
                let mut f = line.split_whitespace();
                let rr = Rr {
                    name: f.next().unwrap_or_default().to_owned(),
                    ttl: f.next().and_then(|t| t.parse().ok()).unwrap_or(u32::MAX),
                    class: f.next().unwrap_or_default().to_owned(),
                    rtype: f.next().unwrap_or_default().to_owned(),
                    data: f.collect::<Vec<_>>().join(" "),
                };
                match section {
                    "ANSWER" => dig.answer.push(rr),
                    "AUTHORITY" => dig.authority.push(rr),
                    "ADDITIONAL" => dig.additional.push(rr),
                    _ => {}
                }
            }
        }
        dig
    }

    /// The answer records' data of type `rtype`, sorted.
    pub(crate) fn data(&self, rtype: &str) -> Vec<String> {
        let mut data: Vec<String> = self
            .answer
            .iter()
            .filter(|rr| rr.rtype == rtype)
            .map(|rr| rr.data.clone())
            .collect();
        data.sort();
        data
    }

    /// Asserts NOERROR with AA and `n` answer records of `rtype`, all with `ttl`.
    pub(crate) fn assert_answers(&self, rtype: &str, n: usize, ttl: u32) {
        assert_eq!(self.status, "NOERROR", "{}", self.text);
        assert!(
            self.flags.iter().any(|f| f == "aa"),
            "not authoritative:\n{}",
            self.text
        );
        assert_eq!(self.answer.len(), n, "answer count:\n{}", self.text);
        for rr in &self.answer {
            assert_eq!(rr.rtype, rtype, "{}", self.text);
            assert_eq!(rr.ttl, ttl, "{}", self.text);
            assert_eq!(rr.class, "IN", "{}", self.text);
        }
    }

    /// Asserts a negative answer (`NXDOMAIN` or NODATA as `NOERROR`) carrying the zone's SOA.
    pub(crate) fn assert_negative(&self, status: &str, zone: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.flags.iter().any(|f| f == "aa"),
            "not authoritative:\n{}",
            self.text
        );
        assert!(
            self.answer.is_empty(),
            "answers in a negative response:\n{}",
            self.text
        );
        assert_eq!(self.authority.len(), 1, "authority:\n{}", self.text);
        assert_eq!(self.authority[0].rtype, "SOA", "{}", self.text);
        assert_eq!(self.authority[0].name, zone, "{}", self.text);
    }
}

/// Pod IPs by pod name, from `podns get pods -o json` on the same manifests.
pub(crate) fn pod_ips(
    manifests: &Path,
    extra: &[&str],
) -> std::collections::BTreeMap<String, String> {
    let json = get_json(manifests, "pods", extra);
    json["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|pod| {
            let name = pod["metadata"]["name"].as_str()?.to_owned();
            let ip = pod["status"]["podIP"].as_str()?.to_owned();
            Some((name, ip))
        })
        .collect()
}

/// `podns get RESOURCE -A -o json --manifests DIR`.
pub(crate) fn get_json(manifests: &Path, resource: &str, extra: &[&str]) -> serde_json::Value {
    let output = podns()
        .args(["get", resource, "-A", "-o", "json", "--manifests"])
        .arg(manifests)
        .args(extra)
        .output()
        .expect("run podns get");
    assert!(
        output.status.success(),
        "podns get failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("podns get -o json prints JSON")
}
