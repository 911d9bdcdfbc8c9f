//! `podns lab` end to end: seed 002's Redis StatefulSet in network namespaces, replicating
//! through podns DNS alone.
//!
//! Runs as root (CI does) and needs `ip`, `unshare`, `redis-server`, `redis-cli`, `dig` and
//! `getent`; `scripts/test` installs them. Without them the test fails and says what is
//! missing: it never skips. Every command has a deadline, and a guard runs `podns lab down`
//! when the test ends, passing or not, so no namespace, link or process outlives it.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The lab's name, so its namespace (`podns-e2e`) is not a hand-started lab's.
const LAB: &str = "e2e";
/// The pods of `examples/redis-lab`, which are also the network namespaces the lab makes.
const PODS: [&str; 4] = ["multitool", "redis-0", "redis-1", "redis-2"];
/// Longest any single command may run (`lab up` starts three redis-servers in order).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long replication may take to settle after a change.
const SETTLE: Duration = Duration::from_secs(30);

#[test]
fn redis_statefulset_replicates_through_dns() {
    preflight();
    let lab = LabGuard::new();
    let started = Instant::now();

    let up = lab.podns(&[
        "up",
        "--manifests",
        &example("redis-lab"),
        "--ready-timeout",
        "30",
    ]);
    assert!(up.status.success(), "lab up failed:\n{}", text(&up.stderr));
    let state = lab.state();
    let ip = |pod: &str| pod_field(&state, pod, "ip");

    // Replication came up through the name redis-0.redis-headless.default.svc.cluster.local.
    eventually("redis-0 has 2 online replicas", || {
        let info = redis("redis-0.redis-headless", &["INFO", "replication"]);
        (info.contains("role:master")
            && info.contains("connected_slaves:2")
            && info.matches("state=online").count() == 2)
            .then_some(())
            .ok_or(info)
    });
    for replica in ["redis-1", "redis-2"] {
        let info = redis(
            &format!("{replica}.redis-headless"),
            &["INFO", "replication"],
        );
        assert!(info.contains("role:slave"), "{replica}: {info}");
        assert!(
            info.contains("master_host:redis-0.redis-headless.default.svc.cluster.local"),
            "{replica} found its primary by DNS name: {info}"
        );
    }
    assert_eq!(
        redis(
            "redis-0.redis-headless",
            &["SET", "greeting", "hello from redis-0"]
        ),
        "OK"
    );
    for replica in ["redis-1.redis-headless", "redis-2.redis-headless"] {
        eventually(&format!("{replica} reads the primary's write"), || {
            let got = redis(replica, &["GET", "greeting"]);
            (got == "hello from redis-0").then_some(()).ok_or(got)
        });
    }
    let refused = redis(
        "redis-1.redis-headless",
        &["SET", "greeting", "overwritten"],
    );
    assert!(
        refused.contains("READONLY"),
        "a replica refuses writes: {refused}"
    );

    // Short names go through the pod's search path, with glibc and with dig.
    let redis_ips: BTreeSet<String> = ["redis-0", "redis-1", "redis-2"].map(ip).into();
    let getent = in_pod("multitool", &["getent", "hosts", "redis-1.redis-headless"]);
    assert!(getent.status.success(), "getent: {}", text(&getent.stderr));
    assert_eq!(
        first_words(&getent.stdout),
        BTreeSet::from([ip("redis-1")]),
        "getent hosts redis-1.redis-headless"
    );
    let getent = in_pod("multitool", &["getent", "ahostsv4", "redis-headless"]);
    assert_eq!(
        first_words(&getent.stdout),
        redis_ips,
        "getent ahostsv4 redis-headless"
    );
    let dig = in_pod(
        "multitool",
        &["dig", "+search", "+short", "redis-1.redis-headless"],
    );
    assert_eq!(
        first_words(&dig.stdout),
        BTreeSet::from([ip("redis-1")]),
        "dig +search redis-1.redis-headless"
    );
    let dig = in_pod("multitool", &["dig", "+search", "+short", "redis-headless"]);
    assert_eq!(
        first_words(&dig.stdout),
        redis_ips,
        "dig +search redis-headless"
    );
    let dig = in_pod("multitool", &["dig", "+search", "redis-headless"]);
    assert!(
        text(&dig.stdout).contains(";redis-headless.default.svc.cluster.local."),
        "the search list's first domain is the pod's namespace:\n{}",
        text(&dig.stdout)
    );

    // Kill redis-1 as a crash would; write while it is gone; bring it back under its name.
    let old_pid = pod_pid(&state, "redis-1");
    let kill = run(Command::new("kill").args(["-KILL", &old_pid.to_string()]));
    assert!(
        kill.status.success(),
        "kill redis-1: {}",
        text(&kill.stderr)
    );
    eventually("redis-0 sees redis-1 gone", || {
        let info = redis("redis-0.redis-headless", &["INFO", "replication"]);
        info.contains("connected_slaves:1")
            .then_some(())
            .ok_or(info)
    });
    assert_eq!(
        redis(
            "redis-0.redis-headless",
            &["SET", "while-away", "missed it"]
        ),
        "OK"
    );
    let restart = lab.podns(&["restart", "redis-1"]);
    assert!(
        restart.status.success(),
        "lab restart: {}",
        text(&restart.stderr)
    );
    let state = lab.state();
    assert_ne!(pod_pid(&state, "redis-1"), old_pid, "a new process");
    assert_eq!(
        pod_field(&state, "redis-1", "ip"),
        ip("redis-1"),
        "the same pod address"
    );
    eventually("redis-1 re-joins replication", || {
        let info = redis("redis-0.redis-headless", &["INFO", "replication"]);
        (info.contains("connected_slaves:2") && info.matches("state=online").count() == 2)
            .then_some(())
            .ok_or(info)
    });
    eventually("redis-1 caught up", || {
        let got = redis("redis-1.redis-headless", &["GET", "while-away"]);
        (got == "missed it").then_some(()).ok_or(got)
    });
    let info = redis("redis-1.redis-headless", &["INFO", "replication"]);
    assert!(info.contains("master_link_status:up"), "{info}");

    // Down removes everything up made.
    let pids: Vec<u32> = PODS.iter().filter_map(|p| pod_pid_opt(&state, p)).collect();
    let server_pid = state["server"]["pid"].as_u64().expect("server pid") as u32;
    let down = lab.podns(&["down"]);
    assert!(down.status.success(), "lab down: {}", text(&down.stderr));
    lab.assert_clean(pids.iter().copied().chain([server_pid]));
    eprintln!("lab test took {:?}", started.elapsed());
}

/// Runs `podns lab down` when dropped, whatever happened.
struct LabGuard {
    /// A state folder of this test's own, so it never reads or removes another lab's state.
    state_dir: PathBuf,
}

impl LabGuard {
    fn new() -> Self {
        let state_dir = std::env::temp_dir().join(format!("podns-lab-test-{}", std::process::id()));
        Self { state_dir }
    }

    /// `podns lab --name e2e --state-dir … ARGS…`.
    fn podns(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_podns"));
        cmd.arg("lab")
            .args(["--name", LAB, "--state-dir"])
            .arg(&self.state_dir)
            .args(args);
        run(&mut cmd)
    }

    fn state(&self) -> serde_json::Value {
        let out = self.podns(&["status", "--json"]);
        assert!(out.status.success(), "lab status: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("lab status --json")
    }

    fn assert_clean(&self, pids: impl Iterator<Item = u32>) {
        for ns in PODS.iter().copied().chain([&*format!("podns-{LAB}")]) {
            assert!(
                !Path::new("/run/netns").join(ns).exists(),
                "netns {ns} left behind"
            );
            assert!(
                !Path::new("/etc/netns").join(ns).exists(),
                "/etc/netns/{ns} left behind"
            );
        }
        for pid in pids {
            assert!(!alive(pid), "process {pid} left running");
        }
        assert!(!self.state_dir.join(LAB).exists(), "lab state left behind");
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let down = self.podns(&["down"]);
        if !down.status.success() {
            eprintln!("cleanup: podns lab down failed:\n{}", text(&down.stderr));
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// Fails, saying why, when the test cannot run here: it must not pass by skipping.
fn preflight() {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "the lab test makes network namespaces and must run as root (CI does); run scripts/test as root"
    );
    let missing: Vec<&str> = [
        "ip",
        "unshare",
        "redis-server",
        "redis-cli",
        "dig",
        "getent",
        "timeout",
        "kill",
    ]
    .into_iter()
    .filter(|p| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .collect();
    assert!(
        missing.is_empty(),
        "the lab test needs {missing:?} (scripts/test installs redis-server, iproute2 and bind9-dnsutils)"
    );
}

/// `redis-cli -h HOST ARGS…` from the multitool pod; its output, trimmed.
fn redis(host: &str, args: &[&str]) -> String {
    let mut argv = vec!["redis-cli", "-h", host];
    argv.extend(args);
    let out = in_pod("multitool", &argv);
    format!("{}{}", text(&out.stdout), text(&out.stderr))
        .trim()
        .to_owned()
}

/// `ip netns exec POD ARGS…`: as `kubectl exec` into the pod.
fn in_pod(pod: &str, args: &[&str]) -> Output {
    run(Command::new("ip").args(["netns", "exec", pod]).args(args))
}

/// Runs a command under `timeout`, so no step can hang the suite.
fn run(cmd: &mut Command) -> Output {
    let mut bounded = Command::new("timeout");
    bounded
        .args(["--kill-after=5", &COMMAND_TIMEOUT.as_secs().to_string()])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    bounded
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Retries `check` until it passes or [`SETTLE`] runs out, then fails with its last answer.
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + SETTLE;
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {SETTLE:?}; last:\n{last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .display()
        .to_string()
}

fn pod_field(state: &serde_json::Value, pod: &str, field: &str) -> String {
    let pods = state["pods"].as_array().expect("pods in lab state");
    let pod = pods
        .iter()
        .find(|p| p["name"] == pod)
        .unwrap_or_else(|| panic!("pod {pod} in lab state"));
    pod[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} of {pod}"))
        .to_owned()
}

fn pod_pid_opt(state: &serde_json::Value, pod: &str) -> Option<u32> {
    let pods = state["pods"].as_array()?;
    let pod = pods.iter().find(|p| p["name"] == pod)?;
    pod["process"]["pid"].as_u64().map(|p| p as u32)
}

fn pod_pid(state: &serde_json::Value, pod: &str) -> u32 {
    pod_pid_opt(state, pod).unwrap_or_else(|| panic!("pod {pod} has a process"))
}

/// Running (a zombie waiting for init to reap it counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        !matches!(state, Some("Z" | "X") | None)
    })
}

/// The first word of each output line: addresses, from `getent` and `dig +short`.
fn first_words(out: &[u8]) -> BTreeSet<String> {
    text(out)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
