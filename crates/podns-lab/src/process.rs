//! Lab processes: starting a command detached inside a network namespace, and stopping it.
//!
//! This module is responsible for the processes the lab leaves running after `lab up` returns:
//! pods' container commands and the DNS server. Each runs as the leader of its own process group
//! (so it outlives the command that started it and ignores that terminal's signals), with
//! stdin closed and stdout/stderr appended to a log file. A process is named by pid *and* start
//! time ([`ProcessId`]), so a later `lab down` never signals a process that merely reused a pid.

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};

/// A process the lab started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// Its pid, which is also its process group id.
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot): tells a reused pid apart.
    pub start_time: u64,
}

/// How a process is started: what, where, and under which identity.
pub(crate) struct Launch<'a> {
    /// Network namespace to run in (`ip netns exec`), which also gives it
    /// `/etc/netns/<netns>/{resolv.conf,hosts}` as `/etc/…`.
    pub(crate) netns: &'a str,
    /// Hostname in a UTS namespace of its own, as a pod's containers see the pod's hostname.
    pub(crate) hostname: Option<&'a str>,
    /// argv.
    pub(crate) argv: &'a [String],
    /// Extra environment.
    pub(crate) env: &'a [(String, String)],
    /// Working directory (the pod's folder in the state dir).
    pub(crate) dir: &'a Path,
    /// Log file, appended to.
    pub(crate) log: &'a Path,
}

/// Sets the hostname, then becomes the command: `$0` is the hostname, `$@` the argv.
const SET_HOSTNAME: &str = r#"hostname "$0" && exec "$@""#;

/// Starts `launch` detached and returns its id.
pub(crate) fn spawn(launch: &Launch<'_>) -> Result<ProcessId> {
    let log = open_log(launch.log)?;
    let err = log
        .try_clone()
        .map_err(|e| LabError::io(format!("log {}", launch.log.display()), e))?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", launch.netns]);
    if let Some(hostname) = launch.hostname {
        // `ip netns exec` changes the network and mount namespaces, not the UTS one.
        cmd.args(["unshare", "--uts", "sh", "-c", SET_HOSTNAME, hostname]);
        cmd.env("HOSTNAME", hostname);
    }
    cmd.args(launch.argv)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(launch.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| LabError::io(format!("starting {:?} in {}", launch.argv, launch.netns), e))?;
    let pid = child.id();
    // `ip netns exec`, `unshare` and `sh -c 'exec …'` all exec, so this pid ends up being the
    // command itself. The Child is dropped unwaited: the process outlives this one.
    drop(child);
    let start_time = stat(pid).map(|s| s.start_time).ok_or_else(|| {
        LabError::io(
            format!("process {pid}"),
            std::io::Error::other("exited at once"),
        )
    })?;
    Ok(ProcessId { pid, start_time })
}

/// Whether the process is still running (not exited, not a zombie, not a reused pid).
pub fn is_alive(id: ProcessId) -> bool {
    stat(id.pid).is_some_and(|s| s.start_time == id.start_time && !matches!(s.state, 'Z' | 'X'))
}

/// Stops the process's group: SIGTERM, then SIGKILL after `grace`. Returns once it is gone.
pub(crate) fn stop(id: ProcessId, grace: Duration) -> Result<()> {
    if !is_alive(id) {
        return Ok(());
    }
    signal(id, "TERM")?;
    if wait_dead(id, grace) {
        return Ok(());
    }
    tracing::warn!(
        pid = id.pid,
        "still running {grace:?} after SIGTERM; sending SIGKILL"
    );
    signal(id, "KILL")?;
    if wait_dead(id, Duration::from_secs(5)) {
        Ok(())
    } else {
        Err(LabError::io(
            format!("stopping process {}", id.pid),
            std::io::Error::other("still running after SIGKILL"),
        ))
    }
}

/// Signals the whole process group, so a shell's children go with it.
fn signal(id: ProcessId, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), "--", &format!("-{}", id.pid)])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| LabError::io("running kill", e))?;
    // A failure here means the group is already gone, which is what we want.
    if !status.success() {
        tracing::debug!(pid = id.pid, "kill -{sig}: {status}");
    }
    Ok(())
}

fn wait_dead(id: ProcessId, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_alive(id) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

struct Stat {
    state: char,
    start_time: u64,
}

/// `/proc/<pid>/stat`: the state (field 3) and start time (field 22). The command name (field
/// 2) may contain spaces and parentheses, so fields are counted after its last `)`.
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = text.get(text.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

fn open_log(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| LabError::io(format!("log {}", path.display()), e))
}

/// The last `lines` lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
