//! Manifest source: Kubernetes YAML/JSON files and folders, loaded and watched.
//!
//! This module is responsible for reading the manifests a standalone user writes into
//! [`Object`]s, reporting *every* problem of a set in one pass ([`ManifestErrors`]), and watching
//! the files so that each change re-reads the whole set ([`watch`]). It leaves what the objects
//! mean to the store and the controllers.
//!
//! What is read:
//! - files given directly (any extension; `.json` is read as JSON, everything else as YAML) and
//!   folders, recursively: files ending in `.yaml`, `.yml` or `.json`, skipping names that start
//!   with a dot, in sorted order so that loading is deterministic;
//! - multi-document YAML (`---`), JSON files with one or more values, and `kind: List` or any
//!   `*List` kind (`ServiceList`, …), whose `items` are flattened;
//! - the kinds of [`Kind`] at their `apiVersion` (`v1`, `apps/v1`, `discovery.k8s.io/v1`). Other
//!   kinds are skipped (with a `debug` log), as are known kinds of another API group (a Knative
//!   `serving.knative.dev/v1 Service` is not a Service); a known kind at another version of its
//!   own group (`apps/v1beta1 Deployment`, `extensions/v1beta1 Deployment`) is an error.
//!
//! Errors name the file, the document (1-based, counting non-empty documents), the list item,
//! the object and the field path, e.g.
//! `examples/web.yaml doc 2 StatefulSet default/web: spec.replicas: invalid type: string "x", expected i32`.
//! An object defined twice (same kind, namespace and name) is an error naming both places.
//!
//! ```text
//! watch(paths) ─▶ notify events ─▶ debounce ─▶ load(paths) ─▶ ReloadState::step ─▶ ManifestEvent
//!                                                               Loaded ⇄ Rejected (last good kept)
//! ```

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::object::{DEFAULT_NAMESPACE, Kind, Object, ObjectRef};
use crate::source::ClusterEvent;
use crate::store::ClusterStore;

/// How long the files must be quiet before a change is re-read (editors write in several steps).
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);

/// File extensions read from folders.
pub const MANIFEST_EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Loads every manifest under `paths` (files and folders) into objects.
///
/// Returns all objects in file order, or every error found in the whole set.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Object>, ManifestErrors> {
    let mut objects = Vec::new();
    load_into(paths, &mut |object| objects.push(object))?;
    Ok(objects)
}

/// [`load`] into a [`ClusterStore`], each object packed as soon as its file is parsed: the
/// decoded set is never in memory whole (at 10k Services it was 84 MB, the store keeps ~8).
pub fn load_store(paths: &[PathBuf]) -> Result<ClusterStore, ManifestErrors> {
    let mut store = ClusterStore::new();
    load_into(paths, &mut |object| {
        store.apply(object);
    })?;
    Ok(store)
}

/// Reads every manifest under `paths`, handing each object to `sink` in file order; on any
/// error, returns every error of the set (what was handed over is then not a whole set).
fn load_into(paths: &[PathBuf], sink: &mut dyn FnMut(Object)) -> Result<(), ManifestErrors> {
    let mut errors = Vec::new();
    let files = collect_files(paths, &mut errors);
    let mut seen: HashMap<ObjectRef, Location> = HashMap::new();
    for file in &files {
        for (location, object) in load_file(file, &mut errors) {
            let key = object.object_ref();
            if let Some(first) = seen.get(&key) {
                errors.push(ManifestError {
                    location,
                    object: Some(ObjectDesc::of(&key)),
                    field: None,
                    problem: ManifestProblem::Duplicate {
                        first: first.to_string(),
                    },
                });
                continue;
            }
            seen.insert(key, location);
            if errors.is_empty() {
                sink(object);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ManifestErrors(errors))
    }
}

/// Watches `paths` and re-reads the whole set after each change, once the files have been
/// quiet for `debounce` ([`DEFAULT_DEBOUNCE`] is a good value).
///
/// Returns the initial load and the watch. The watcher is started before the initial load, so
/// no change is missed between them. The watch keeps running after a rejected load and reports
/// the next good one; it stops when the [`ManifestWatch`] is dropped.
///
/// Folders are watched recursively; for a single file its parent folder is watched, so editors
/// that save by writing a new file and renaming it over the old one still work.
pub fn watch(
    paths: Vec<PathBuf>,
    debounce: Duration,
) -> Result<(Result<ClusterStore, ManifestErrors>, ManifestWatch), WatchError> {
    let (raw_tx, raw_rx) = std_mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(move |event| {
        // The receiver is gone only when the reload thread ended; nothing left to tell.
        let _ = raw_tx.send(event);
    })
    .map_err(|source| WatchError::Start { source })?;
    for target in watch_targets(&paths) {
        let mode = if target.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        watcher
            .watch(&target.path, mode)
            .map_err(|source| WatchError::Watch {
                path: target.path.clone(),
                source,
            })?;
    }
    let initial = load_store(&paths);
    let state = ReloadState::new(&initial);
    let (tx, rx) = mpsc::channel(4);
    std::thread::Builder::new()
        .name("podns-manifest-watch".to_owned())
        .spawn(move || reload_loop(&paths, debounce, &raw_rx, &tx, state))
        .map_err(|source| WatchError::Thread { source })?;
    Ok((
        initial,
        ManifestWatch {
            events: rx,
            _watcher: watcher,
        },
    ))
}

/// What a reload of the watched manifests found.
#[derive(Clone, Debug, PartialEq)]
pub enum ManifestEvent {
    /// The set loaded; these are all its objects. Sent when the set changed, and after a
    /// rejected load when the set is good again.
    Loaded(ClusterStore),
    /// The set is broken; keep the last good state. Sent for each reload that fails.
    Rejected(ManifestErrors),
}

/// A running manifest watch: receives [`ManifestEvent`]s; dropping it stops the watch.
#[derive(Debug)]
pub struct ManifestWatch {
    /// Reload results, from the reload thread.
    events: mpsc::Receiver<ManifestEvent>,
    /// Kept alive for as long as the events are wanted; dropping it ends the reload thread.
    _watcher: RecommendedWatcher,
}

/// Failure to start watching manifests.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The platform's file watcher could not be created (e.g. the inotify instance limit).
    #[error("cannot start the file watcher: {source}")]
    Start {
        /// What notify reported.
        source: notify::Error,
    },
    /// A path (a folder, or the folder of a file) could not be watched.
    #[error("{}: cannot watch: {source}", path.display())]
    Watch {
        /// The folder podns tried to watch.
        path: PathBuf,
        /// What notify reported.
        source: notify::Error,
    },
    /// The reload thread could not be spawned.
    #[error("cannot spawn the manifest reload thread: {source}")]
    Thread {
        /// What the OS reported.
        source: std::io::Error,
    },
}

/// Every problem found in one load of a manifest set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestErrors(pub Vec<ManifestError>);

/// One problem in a manifest set, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}{}{}: {problem}", fmt_object(.object), fmt_field(.field))]
pub struct ManifestError {
    /// File, document and list item.
    pub location: Location,
    /// The object, as far as it is known (kind, and namespace/name once read).
    pub object: Option<ObjectDesc>,
    /// The field path (`spec.ports[0].port`), when the problem is in one field.
    pub field: Option<String>,
    /// What is wrong.
    pub problem: ManifestProblem,
}

/// Where in a manifest set a document is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as given or as found in a folder.
    pub path: PathBuf,
    /// The document in the file, 1-based, counting non-empty documents; `None` for problems
    /// with the whole file (unreadable).
    pub document: Option<usize>,
    /// The item of a `List` document, 1-based.
    pub item: Option<usize>,
}

/// An object as far as a manifest error knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectDesc {
    /// The `kind` field.
    pub kind: String,
    /// `metadata.namespace` (defaulted to `default` for namespaced kinds), when known.
    pub namespace: Option<String>,
    /// `metadata.name`, when known.
    pub name: Option<String>,
}

/// What is wrong with a manifest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestProblem {
    /// The file or folder could not be read.
    #[error("cannot read: {0}")]
    Read(String),
    /// The document is not valid YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// The file is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The document is a scalar or a sequence, not an object.
    #[error("document is not a mapping (found {0})")]
    NotAMapping(&'static str),
    /// A required field is missing (`kind`, `apiVersion`, `metadata.name`, `items`).
    #[error("missing field")]
    Missing,
    /// A kind podns reads, at an API version it does not.
    #[error("apiVersion {found} is not supported for {kind} (podns reads {expected})")]
    UnsupportedApiVersion {
        /// The kind.
        kind: &'static str,
        /// The `apiVersion` written.
        found: String,
        /// The `apiVersion` podns reads.
        expected: &'static str,
    },
    /// A field has the wrong type or an invalid value.
    #[error("{0}")]
    Invalid(String),
    /// The same object (kind, namespace, name) is defined a second time.
    #[error("defined twice; first defined at {first}")]
    Duplicate {
        /// Where it was first defined.
        first: String,
    },
}

// === impl ManifestErrors ===

impl ManifestErrors {
    /// The errors, in file order.
    pub fn errors(&self) -> &[ManifestError] {
        &self.0
    }
}

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} manifest error{}", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestErrors {}

// === impl Location ===

impl Location {
    fn file(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            document: None,
            item: None,
        }
    }

    fn doc(path: &Path, document: usize) -> Self {
        Self {
            path: path.to_owned(),
            document: Some(document),
            item: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(d) = self.document {
            write!(f, " doc {d}")?;
        }
        if let Some(i) = self.item {
            write!(f, " item {i}")?;
        }
        Ok(())
    }
}

// === impl ObjectDesc ===

impl ObjectDesc {
    fn of(r: &ObjectRef) -> Self {
        Self {
            kind: r.kind.as_str().to_owned(),
            namespace: r.kind.is_namespaced().then(|| r.namespace.clone()),
            name: Some(r.name.clone()),
        }
    }
}

impl fmt::Display for ObjectDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => write!(f, " {ns}/{name}"),
            (None, Some(name)) => write!(f, " {name}"),
            (Some(ns), None) => write!(f, " in {ns}"),
            (None, None) => Ok(()),
        }
    }
}

fn fmt_object(object: &Option<ObjectDesc>) -> String {
    object.as_ref().map(|o| format!(" {o}")).unwrap_or_default()
}

fn fmt_field(field: &Option<String>) -> String {
    field.as_ref().map(|f| format!(": {f}")).unwrap_or_default()
}

// === impl ManifestWatch ===

impl ManifestWatch {
    /// The next reload result; `None` if the watch stopped (the watcher failed for good).
    pub async fn recv(&mut self) -> Option<ManifestEvent> {
        self.events.recv().await
    }

    /// The next reload result, blocking the thread (not for use inside an async runtime).
    pub fn blocking_recv(&mut self) -> Option<ManifestEvent> {
        self.events.blocking_recv()
    }
}

// === impl ManifestEvent ===

impl ManifestEvent {
    /// The cluster event to apply: a resync for a good load, nothing for a rejected one (the
    /// last good state stays).
    pub fn into_cluster_event(self) -> Option<ClusterEvent> {
        match self {
            Self::Loaded(store) => Some(ClusterEvent::Resync(store.iter().collect())),
            Self::Rejected(_) => None,
        }
    }
}

// === reload state machine ===

/// Where the watched set stands after the last load.
#[derive(Debug)]
enum ReloadState {
    /// The last load was good; a set with this digest was reported (or returned as the
    /// initial load). Only a digest: the store keeps the objects packed, and a copy of the
    /// decoded set here would be most of a standalone server's memory.
    Loaded(SetDigest),
    /// The last load failed; the consumer serves the last good state.
    Rejected,
}

/// A loaded set's identity: its objects' JSON as the store keeps it ([`Object::to_json`],
/// equal for equal objects), in the store's order, hashed with their lengths, and how many there were and how long. A reload is
/// taken as unchanged only when all three match: two different sets would need a 64-bit
/// SipHash collision at the same count and size.
#[derive(Debug, PartialEq, Eq)]
struct SetDigest {
    objects: usize,
    bytes: usize,
    hash: u64,
}

impl SetDigest {
    fn of(store: &ClusterStore) -> Self {
        use std::hash::{DefaultHasher, Hasher as _};
        let mut hasher = DefaultHasher::new();
        let mut bytes = 0;
        for json in store.packed_json() {
            hasher.write_usize(json.len());
            hasher.write(json);
            bytes += json.len();
        }
        Self {
            objects: store.len(),
            bytes,
            hash: hasher.finish(),
        }
    }
}

impl ReloadState {
    fn new(initial: &Result<ClusterStore, ManifestErrors>) -> Self {
        match initial {
            Ok(objects) => Self::Loaded(SetDigest::of(objects)),
            Err(_) => Self::Rejected,
        }
    }

    /// Takes a reload result; returns the event to report, if any (an unchanged good set is
    /// not reported again).
    fn step(&mut self, result: Result<ClusterStore, ManifestErrors>) -> Option<ManifestEvent> {
        match result {
            Ok(objects) => {
                let digest = SetDigest::of(&objects);
                if matches!(self, Self::Loaded(last) if *last == digest) {
                    return None;
                }
                *self = Self::Loaded(digest);
                Some(ManifestEvent::Loaded(objects))
            }
            Err(errors) => {
                *self = Self::Rejected;
                Some(ManifestEvent::Rejected(errors))
            }
        }
    }
}

/// Longest a reload waits for the files to go quiet, in multiples of the debounce.
const MAX_DEBOUNCE_FACTOR: u32 = 10;

fn reload_loop(
    paths: &[PathBuf],
    debounce: Duration,
    raw: &std_mpsc::Receiver<notify::Result<notify::Event>>,
    tx: &mpsc::Sender<ManifestEvent>,
    mut state: ReloadState,
) {
    loop {
        // Wait for the first relevant event; a closed channel means the watcher was dropped.
        match raw.recv() {
            Ok(event) if is_relevant(&event) => {}
            Ok(_) => continue,
            Err(_) => return,
        }
        // Then until the files are quiet (bounded, so a busy writer still gets reloaded).
        let started = Instant::now();
        loop {
            if started.elapsed() >= debounce * MAX_DEBOUNCE_FACTOR {
                break;
            }
            match raw.recv_timeout(debounce) {
                Ok(_) => {}
                Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        let result = load_store(paths);
        match &result {
            // The consumer reports the outcome (it knows what it kept serving); trace it only.
            Ok(store) => tracing::debug!(objects = store.len(), "manifest set re-read"),
            Err(errors) => tracing::debug!(%errors, "manifest set re-read with errors"),
        }
        if let Some(event) = state.step(result)
            && tx.blocking_send(event).is_err()
        {
            return;
        }
    }
}

/// Whether a watcher event can mean the manifests changed. Reads (our own included) cannot.
fn is_relevant(event: &notify::Result<notify::Event>) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match event {
        Ok(event) => match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        },
        Err(error) => {
            // Overflow and similar: the only safe answer is to re-read everything.
            tracing::warn!(%error, "file watcher error; re-reading manifests");
            true
        }
    }
}

struct WatchTarget {
    path: PathBuf,
    recursive: bool,
}

fn watch_targets(paths: &[PathBuf]) -> Vec<WatchTarget> {
    let mut seen = HashSet::new();
    let mut targets = Vec::new();
    for path in paths {
        let target = if path.is_dir() {
            WatchTarget {
                path: path.clone(),
                recursive: true,
            }
        } else {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            WatchTarget {
                path: parent,
                recursive: false,
            }
        };
        let key = std::fs::canonicalize(&target.path).unwrap_or_else(|_| target.path.clone());
        if seen.insert((key, target.recursive)) {
            targets.push(target);
        }
    }
    targets
}

// === loading ===

fn collect_files(paths: &[PathBuf], errors: &mut Vec<ManifestError>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        let mut found = Vec::new();
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk_dir(path, &mut found, errors),
            Ok(_) => found.push(path.clone()),
            Err(e) => errors.push(file_error(path, ManifestProblem::Read(e.to_string()))),
        }
        for file in found {
            let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if seen.insert(key) {
                files.push(file);
            }
        }
    }
    files
}

fn walk_dir(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<ManifestError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(file_error(dir, ManifestProblem::Read(e.to_string())));
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        let hidden = child
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        // Follow symlinks (ConfigMap volumes are symlinks into a hidden folder).
        match std::fs::metadata(&child) {
            Ok(meta) if meta.is_dir() => walk_dir(&child, files, errors),
            Ok(_) if has_manifest_extension(&child) => files.push(child),
            Ok(_) => {}
            Err(e) => errors.push(file_error(&child, ManifestProblem::Read(e.to_string()))),
        }
    }
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        MANIFEST_EXTENSIONS
            .iter()
            .any(|m| e.eq_ignore_ascii_case(m))
    })
}

fn file_error(path: &Path, problem: ManifestProblem) -> ManifestError {
    ManifestError {
        location: Location::file(path),
        object: None,
        field: None,
        problem,
    }
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Reads one file into its objects, each with where it was found.
fn load_file(path: &Path, errors: &mut Vec<ManifestError>) -> Vec<(Location, Object)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            errors.push(file_error(path, ManifestProblem::Read(e.to_string())));
            return Vec::new();
        }
    };
    // A UTF-8 byte-order mark, as some Windows editors write it, is not part of the document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut objects = Vec::new();
    if is_json(path) {
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        for (i, value) in stream.enumerate() {
            let location = Location::doc(path, i + 1);
            match value {
                Ok(value) => read_document(location, value, &mut objects, errors),
                Err(e) => {
                    errors.push(ManifestError {
                        location,
                        object: None,
                        field: None,
                        problem: ManifestProblem::Json(e.to_string()),
                    });
                    break;
                }
            }
        }
    } else {
        for (i, doc) in split_yaml_documents(text).into_iter().enumerate() {
            let location = Location::doc(path, i + 1);
            match serde_saphyr::from_str::<Value>(&doc.text) {
                Ok(value) => read_document(location, value, &mut objects, errors),
                Err(e) => errors.push(ManifestError {
                    location,
                    object: None,
                    field: None,
                    problem: ManifestProblem::Yaml(yaml_message(&e.render_with_options(
                        serde_saphyr::render_options! { line_offset: doc.line_offset },
                    ))),
                }),
            }
        }
    }
    objects
}

/// One document of a YAML stream: its text and the number of file lines before it.
struct YamlDocument<'a> {
    text: Cow<'a, str>,
    line_offset: u64,
}

/// Splits a YAML stream at `---` (and `...`) lines into its non-empty documents.
///
/// Documents are split here rather than by the parser so that one broken document does not
/// hide the others, and so each error can name its document. A document borrows its lines from
/// the file and starts at its first line of content; the lines before it are its `line_offset`,
/// which the parser's errors are rendered with, so they name the file's lines. (Padding each
/// document with the file's earlier lines instead, as this once did, made splitting quadratic:
/// 181 MB of newlines for the 6 MB of the bench's 10k-Service manifests.)
fn split_yaml_documents(text: &str) -> Vec<YamlDocument<'_>> {
    // Where the current document's content starts: byte, line, and whether it starts after a
    // `---` on the same line (then three spaces stand in for the marker, keeping columns).
    struct Start {
        byte: usize,
        line: usize,
        after_marker: bool,
    }
    fn close<'a>(
        docs: &mut Vec<YamlDocument<'a>>,
        text: &'a str,
        start: Option<Start>,
        end: usize,
    ) {
        let Some(start) = start else { return };
        let body = &text[start.byte..end];
        let text = if start.after_marker {
            Cow::Owned(format!("   {body}"))
        } else {
            Cow::Borrowed(body)
        };
        docs.push(YamlDocument {
            text,
            line_offset: start.line as u64,
        });
    }
    let mut docs = Vec::new();
    let mut start: Option<Start> = None;
    let mut byte = 0;
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let line_start = byte;
        byte += line.len();
        let trimmed_end = line.trim_end_matches(['\n', '\r']);
        let is_marker = |m: &str| {
            trimmed_end.starts_with(m)
                && trimmed_end[3..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        };
        if is_marker("---") || is_marker("...") {
            close(&mut docs, text, start.take(), line_start);
            // The rest of a `--- {…}` line belongs to the next document.
            if let Some(rest) = trimmed_end.strip_prefix("---")
                && !rest.trim().is_empty()
                && !rest.trim_start().starts_with('#')
            {
                start = Some(Start {
                    byte: line_start + 3,
                    line: line_no,
                    after_marker: true,
                });
            }
        } else if start.is_none() {
            // Blank lines, comments and directives (`%YAML 1.2`, meaningless once split)
            // before a document's content are not part of it.
            let t = trimmed_end.trim_start();
            if !t.is_empty() && !t.starts_with('#') && !t.starts_with('%') {
                start = Some(Start {
                    byte: line_start,
                    line: line_no,
                    after_marker: false,
                });
            }
        }
    }
    close(&mut docs, text, start.take(), text.len());
    docs
}

/// The parser's message on one line, without its source snippet (`--> <input>:5:15 | …`).
fn yaml_message(s: &str) -> String {
    let s = s.split(" --> ").next().unwrap_or(s);
    let s = s.split("\n -->").next().unwrap_or(s);
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_owned()
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// Reads one document: an object, or a list of objects.
fn read_document(
    location: Location,
    value: Value,
    objects: &mut Vec<(Location, Object)>,
    errors: &mut Vec<ManifestError>,
) {
    if value.is_null() {
        return; // an empty document (`--- ~`), as kubectl skips it
    }
    let kind = value.get("kind").and_then(Value::as_str).map(str::to_owned);
    let is_list = value.is_object()
        && kind
            .as_deref()
            .is_some_and(|k| k.ends_with("List") && Kind::from_kind(k).is_none());
    if !is_list {
        read_object(location, value, objects, errors);
        return;
    }
    let desc = ObjectDesc {
        kind: kind.unwrap_or_default(),
        namespace: None,
        name: None,
    };
    match value.get("items") {
        Some(Value::Array(_)) => {}
        Some(Value::Null) | None => return, // an empty list
        Some(other) => {
            errors.push(ManifestError {
                location,
                object: Some(desc),
                field: Some("items".to_owned()),
                problem: ManifestProblem::Invalid(format!(
                    "expected a sequence, found {}",
                    value_type(other)
                )),
            });
            return;
        }
    }
    let Value::Object(mut map) = value else {
        return;
    };
    let Some(Value::Array(items)) = map.remove("items") else {
        return;
    };
    for (i, item) in items.into_iter().enumerate() {
        let location = Location {
            item: Some(i + 1),
            ..location.clone()
        };
        read_object(location, item, objects, errors);
    }
}

/// Reads one object (a document, or an item of a list).
fn read_object(
    location: Location,
    value: Value,
    objects: &mut Vec<(Location, Object)>,
    errors: &mut Vec<ManifestError>,
) {
    let err = |object: Option<ObjectDesc>, field: Option<&str>, problem| ManifestError {
        location: location.clone(),
        object,
        field: field.map(str::to_owned),
        problem,
    };
    if !value.is_object() {
        errors.push(err(
            None,
            None,
            ManifestProblem::NotAMapping(value_type(&value)),
        ));
        return;
    }
    let kind_str = match value.get("kind") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            errors.push(err(None, Some("kind"), ManifestProblem::Missing));
            return;
        }
        Some(other) => {
            let problem =
                ManifestProblem::Invalid(format!("expected a string, found {}", value_type(other)));
            errors.push(err(None, Some("kind"), problem));
            return;
        }
    };
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let Some(kind) = Kind::from_kind(&kind_str) else {
        tracing::debug!(%location, kind = %kind_str, "skipping a kind podns does not read");
        return;
    };
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let namespace = kind.is_namespaced().then(|| {
        value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_owned()
    });
    let desc = ObjectDesc {
        kind: kind_str.clone(),
        namespace,
        name: name.clone(),
    };
    let Some(api_version) = api_version else {
        errors.push(err(
            Some(desc),
            Some("apiVersion"),
            ManifestProblem::Missing,
        ));
        return;
    };
    if api_version != kind.api_version() {
        if same_api_group(kind, api_version) {
            let problem = ManifestProblem::UnsupportedApiVersion {
                kind: kind.as_str(),
                found: api_version.to_owned(),
                expected: kind.api_version(),
            };
            errors.push(err(Some(desc), Some("apiVersion"), problem));
        } else {
            tracing::debug!(%location, kind = %kind_str, api_version, "skipping a kind of another API group");
        }
        return;
    }
    if name.is_none() {
        errors.push(err(
            Some(desc),
            Some("metadata.name"),
            ManifestProblem::Missing,
        ));
        return;
    }
    match typed(kind, value) {
        Ok(mut object) => {
            object.default_namespace();
            objects.push((location, object));
        }
        Err((field, message)) => {
            errors.push(err(
                Some(desc),
                field.as_deref(),
                ManifestProblem::Invalid(message),
            ));
        }
    }
}

/// Whether `api_version` is another version of the API group podns reads `kind` from (an
/// error), rather than another group that happens to use the same kind name (skipped).
fn same_api_group(kind: Kind, api_version: &str) -> bool {
    let group = |v: &str| v.rsplit_once('/').map_or("", |(g, _)| g).to_owned();
    let found = group(api_version);
    let expected = group(kind.api_version());
    found == expected
        || (found == "extensions"
            && matches!(
                kind,
                Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet | Kind::StatefulSet
            ))
}

/// Deserialises a checked document into its k8s-openapi type; errors carry the field path.
fn typed(kind: Kind, value: Value) -> Result<Object, (Option<String>, String)> {
    fn de<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, (Option<String>, String)> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = (path != "." && !path.is_empty()).then_some(path);
            (field, e.into_inner().to_string())
        })
    }
    Ok(match kind {
        Kind::Namespace => de::<Namespace>(value)?.into(),
        Kind::Service => de::<Service>(value)?.into(),
        Kind::EndpointSlice => de::<EndpointSlice>(value)?.into(),
        Kind::Endpoints => de::<Endpoints>(value)?.into(),
        Kind::Pod => de::<Pod>(value)?.into(),
        Kind::StatefulSet => de::<StatefulSet>(value)?.into(),
        Kind::Deployment => de::<Deployment>(value)?.into(),
        Kind::ReplicaSet => de::<ReplicaSet>(value)?.into(),
        Kind::DaemonSet => de::<DaemonSet>(value)?.into(),
    })
}

#[cfg(test)]
mod tests;
