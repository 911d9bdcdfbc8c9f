//! Lab errors: why a lab could not be brought up, changed or taken down.
//!
//! One enum for the crate; each variant carries the pod, command or path it is about, so the
//! message alone says what to look at.

use std::path::PathBuf;

/// `Result` with [`LabError`] as the default error.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Why a lab operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab makes network namespaces and veth pairs, which needs root.
    #[error("the lab needs root to make network namespaces (running as uid {uid})")]
    NotRoot {
        /// The effective uid of this process.
        uid: u32,
    },
    /// A program the lab runs is not installed.
    #[error("`{program}` is not installed on this machine (it comes with the {package} package)")]
    MissingProgram {
        /// The program looked for on `PATH`.
        program: &'static str,
        /// The Debian/Ubuntu package that ships it.
        package: &'static str,
    },
    /// The manifests do not load.
    #[error("loading the manifests")]
    Manifests(#[from] podns_cluster::ManifestErrors),
    /// The standalone controllers cannot derive the cluster.
    #[error("deriving pods")]
    Derive(#[from] podns_cluster::ControllerError),
    /// The derived cluster cannot be laid out on this machine (duplicate pod names, a pod
    /// address outside every IPv4 pod CIDR, …).
    #[error("planning the lab: {0}")]
    Plan(String),
    /// A lab of that name is already up.
    #[error("lab {name} is already up (state in {}); run `podns lab down` first", dir.display())]
    AlreadyUp {
        /// The lab's name.
        name: String,
        /// Its state folder.
        dir: PathBuf,
    },
    /// No lab of that name is up.
    #[error("lab {name} is not up (no state in {})", dir.display())]
    NotUp {
        /// The lab's name.
        name: String,
        /// Where its state would be.
        dir: PathBuf,
    },
    /// Something the lab would create already exists and is not the lab's: it is left alone.
    #[error("{what} already exists and was not made by this lab; remove it or rename the pod")]
    Exists {
        /// The namespace, folder or link, named.
        what: String,
    },
    /// An external command (`ip`, `kill`, …) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A file or process operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The state file cannot be read or written.
    #[error("lab state {}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A pod did not become ready: its process exited, or its port did not open in time.
    #[error("pod {pod} not ready: {reason}")]
    NotReady {
        /// `namespace/name`.
        pod: String,
        /// What was seen, with the tail of the pod's log.
        reason: String,
    },
    /// The lab's DNS server did not start or did not follow a pod change in time.
    #[error("lab DNS server: {0}")]
    Dns(String),
    /// The named pod is not in the lab.
    #[error("no pod {0} in the lab")]
    NoSuchPod(String),
    /// `lab down` could not remove everything; the rest was removed.
    #[error("lab down left things behind:\n{}", .0.join("\n"))]
    Leftovers(Vec<String>),
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
