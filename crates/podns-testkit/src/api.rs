//! The fake API server's state and its list/watch semantics, without any HTTP.
//!
//! This module is responsible for what a request *means*: the objects (JSON, as stored by the
//! real server), the global resourceVersion counter (like etcd's revision), the change history
//! watches replay from, compaction, paginated lists over a consistent snapshot, label
//! selectors, and the watch event lines each open watch is sent. It leaves sockets, hanging and
//! delays to [`crate::server`].
//!
//! Facts taken from the real kube-apiserver: list items carry no `apiVersion`/`kind` (the list
//! does); watch event objects do; a DELETED event carries the object's last state with the
//! deletion's resourceVersion; a watch from a compacted resourceVersion answers `200` and then one
//! `ERROR` event with a `410 Expired` Status; a list `continue` from a compacted snapshot answers
//! HTTP `410 Expired`; a streaming list (`sendInitialEvents=true`) ends its initial events with a
//! BOOKMARK annotated `k8s.io/initial-events-end: "true"`.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use podns_cluster::LabelSelector;

/// One kind the fake server serves.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    /// `v1`, `discovery.k8s.io/v1`, …
    pub(crate) api_version: &'static str,
    /// `Service`
    pub(crate) kind: &'static str,
    /// `services`
    pub(crate) plural: &'static str,
    /// Whether objects live in a namespace.
    pub(crate) namespaced: bool,
}

/// Every kind served, by (apiVersion, plural).
pub(crate) const RESOURCES: &[Resource] = &[
    Resource {
        api_version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
    },
    Resource {
        api_version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
    },
    Resource {
        api_version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
    },
    Resource {
        api_version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        namespaced: true,
    },
    Resource {
        api_version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
    },
    Resource {
        api_version: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        namespaced: true,
    },
    Resource {
        api_version: "apps/v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        namespaced: true,
    },
    Resource {
        api_version: "apps/v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
    },
];

/// Index into [`RESOURCES`].
type ResourceId = usize;

/// A message to one open watch's response body.
#[derive(Debug)]
pub(crate) enum WatchMsg {
    /// One JSON event line (with its `\n`).
    Line(Bytes),
    /// End the stream cleanly (after a `410` ERROR event).
    End,
    /// Fail the stream: the connection is closed without the final chunk.
    Reset,
}

/// What a request is answered with.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A JSON body with this status code.
    Json(u16, Value),
    /// A watch stream: lines arrive on the receiver; it ends after `timeout_seconds`.
    Watch {
        /// The stream's messages (already holds the replayed/initial events).
        events: mpsc::UnboundedReceiver<WatchMsg>,
        /// `timeoutSeconds`, if given.
        timeout_seconds: Option<u64>,
    },
}

/// A request, reduced to what the API semantics need.
#[derive(Debug, Default)]
pub(crate) struct ApiRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a [(String, String)],
}

/// One stored object.
#[derive(Clone, Debug)]
struct Stored {
    /// The object as the server keeps it: apiVersion, kind, metadata with resourceVersion and uid.
    object: Value,
}

/// One change, as watches replay it.
#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    kind: &'static str,
    resource: ResourceId,
    namespace: String,
    /// The new state (for DELETED: the last state, with the deletion's resourceVersion).
    object: Value,
    /// The state before (MODIFIED only), to turn a label change into ADDED/DELETED for a
    /// selector watch.
    prev: Option<Value>,
}

/// A consistent list result being paged through.
#[derive(Debug)]
struct Snapshot {
    rv: u64,
    items: Vec<Value>,
}

/// One open watch.
#[derive(Debug)]
struct Watch {
    resource: ResourceId,
    namespace: Option<String>,
    selector: LabelSelector,
    bookmarks: bool,
    tx: mpsc::UnboundedSender<WatchMsg>,
}

/// Everything the fake API server knows.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The last resourceVersion handed out.
    rv: u64,
    /// (resource, namespace, name) → object; cluster-scoped objects have an empty namespace.
    objects: BTreeMap<(ResourceId, String, String), Stored>,
    /// Changes after `compacted`, oldest first.
    history: Vec<Change>,
    /// Watches and continues from before this resourceVersion get `410 Gone`.
    compacted: u64,
    snapshots: HashMap<u64, Snapshot>,
    next_snapshot: u64,
    watches: Vec<Watch>,
}

/// The parts of a request path that name a collection or an object.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    resource: ResourceId,
    namespace: Option<String>,
    name: Option<String>,
}

// === impl State ===

impl State {
    /// Creates or updates an object; returns its new resourceVersion.
    ///
    /// # Panics
    /// When `object` has no `apiVersion`/`kind` the server serves, or no `metadata.name`: this is
    /// a test helper, and a typo should fail the test loudly.
    pub(crate) fn apply(&mut self, mut object: Value) -> u64 {
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let resource = RESOURCES
            .iter()
            .position(|r| r.api_version == api_version && r.kind == kind)
            .unwrap_or_else(|| panic!("the fake API server does not serve {api_version} {kind}"));
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} without metadata.name"))
            .to_owned();
        let namespace = if RESOURCES[resource].namespaced {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned()
        } else {
            String::new()
        };
        self.rv += 1;
        let rv = self.rv;
        let key = (resource, namespace.clone(), name);
        let prev = self.objects.get(&key).map(|s| s.object.clone());
        let meta = object["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        if RESOURCES[resource].namespaced {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        let uid = prev
            .as_ref()
            .and_then(|p| p["metadata"]["uid"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("00000000-0000-4000-8000-{rv:012x}"));
        meta.insert("uid".into(), json!(uid));
        let change = Change {
            rv,
            kind: if prev.is_some() { "MODIFIED" } else { "ADDED" },
            resource,
            namespace,
            object: object.clone(),
            prev,
        };
        self.objects.insert(key, Stored { object });
        self.record(change);
        rv
    }

    /// Deletes an object; whether it existed. Deleting takes a resourceVersion, as in etcd.
    pub(crate) fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> bool {
        let Some(resource) = RESOURCES
            .iter()
            .position(|r| r.api_version == api_version && r.kind == kind)
        else {
            return false;
        };
        let namespace = if RESOURCES[resource].namespaced {
            namespace
        } else {
            ""
        };
        let key = (resource, namespace.to_owned(), name.to_owned());
        let Some(Stored { mut object }) = self.objects.remove(&key) else {
            return false;
        };
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(Change {
            rv: self.rv,
            kind: "DELETED",
            resource,
            namespace: key.1,
            object,
            prev: None,
        });
        true
    }

    /// Keeps a change for later watches and sends it to the open ones.
    fn record(&mut self, change: Change) {
        self.watches.retain(|w| !w.tx.is_closed());
        for watch in &self.watches {
            if let Some(line) = watch.event_line(&change) {
                let _ = watch.tx.send(WatchMsg::Line(line));
            }
        }
        self.history.push(change);
    }

    /// Forgets all history: older resourceVersions and open list snapshots now get `410 Gone`.
    pub(crate) fn compact(&mut self) {
        self.compacted = self.rv;
        self.history.clear();
        self.snapshots.clear();
    }

    /// Fails every open watch stream.
    pub(crate) fn drop_watches(&mut self) {
        for watch in self.watches.drain(..) {
            let _ = watch.tx.send(WatchMsg::Reset);
        }
    }

    /// A BOOKMARK at the current resourceVersion to every watch that asked for bookmarks.
    pub(crate) fn send_bookmarks(&mut self) {
        self.watches.retain(|w| !w.tx.is_closed());
        for watch in self.watches.iter().filter(|w| w.bookmarks) {
            let line = bookmark_line(&RESOURCES[watch.resource], self.rv, false);
            let _ = watch.tx.send(WatchMsg::Line(line));
        }
    }

    /// Watches whose client is still reading.
    pub(crate) fn open_watches(&mut self) -> usize {
        self.watches.retain(|w| !w.tx.is_closed());
        self.watches.len()
    }

    /// The current resourceVersion.
    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Answers one request.
    pub(crate) fn handle(&mut self, request: &ApiRequest<'_>) -> Reply {
        if request.path == "/version" {
            return Reply::Json(200, version());
        }
        let Some(target) = parse_path(request.path) else {
            return not_found();
        };
        if request.method != "GET" {
            return Reply::Json(
                405,
                status(
                    405,
                    "MethodNotAllowed",
                    "the fake API server only serves GET",
                ),
            );
        }
        let param = |name: &str| {
            request
                .query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let selector = match LabelSelector::parse(param("labelSelector").unwrap_or("")) {
            Ok(s) => s,
            Err(error) => {
                return Reply::Json(400, status(400, "BadRequest", &error.to_string()));
            }
        };
        if let Some(name) = &target.name {
            return self.get(&target, name);
        }
        if param("watch").is_some_and(|w| w == "true" || w == "1") {
            return self.watch(target, selector, param);
        }
        self.list(&target, &selector, param)
    }

    fn get(&self, target: &Target, name: &str) -> Reply {
        let key = (
            target.resource,
            target.namespace.clone().unwrap_or_default(),
            name.to_owned(),
        );
        match self.objects.get(&key) {
            Some(stored) => Reply::Json(200, stored.object.clone()),
            None => {
                let r = &RESOURCES[target.resource];
                Reply::Json(
                    404,
                    status(
                        404,
                        "NotFound",
                        &format!("{} \"{name}\" not found", r.plural),
                    ),
                )
            }
        }
    }

    fn list<'q>(
        &mut self,
        target: &Target,
        selector: &LabelSelector,
        param: impl Fn(&str) -> Option<&'q str>,
    ) -> Reply {
        let resource = &RESOURCES[target.resource];
        let limit = param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let (id, offset) = match param("continue").filter(|c| !c.is_empty()) {
            Some(token) => {
                let Some((id, offset)) = parse_continue(token) else {
                    return Reply::Json(400, status(400, "BadRequest", "invalid continue token"));
                };
                if !self.snapshots.contains_key(&id) {
                    return Reply::Json(410, status(410, "Expired", CONTINUE_EXPIRED));
                }
                (id, offset)
            }
            None => {
                if param("resourceVersionMatch") == Some("Exact")
                    && let Some(rv) = param("resourceVersion").and_then(|v| v.parse::<u64>().ok())
                    && rv < self.compacted
                {
                    return Reply::Json(410, status(410, "Expired", &too_old(rv, self.compacted)));
                }
                let items = self
                    .objects
                    .iter()
                    .filter(|((r, ns, _), s)| {
                        *r == target.resource
                            && target.namespace.as_ref().is_none_or(|t| t == ns)
                            && selector.matches(Some(&labels_of(&s.object)))
                    })
                    .map(|(_, s)| list_item(&s.object))
                    .collect();
                self.next_snapshot += 1;
                let id = self.next_snapshot;
                self.snapshots.insert(id, Snapshot { rv: self.rv, items });
                (id, 0)
            }
        };
        let snapshot = &self.snapshots[&id];
        let end = limit.map_or(snapshot.items.len(), |l| {
            (offset + l).min(snapshot.items.len())
        });
        let items: Vec<Value> = snapshot.items.get(offset..end).unwrap_or_default().to_vec();
        let mut metadata = json!({ "resourceVersion": snapshot.rv.to_string() });
        if end < snapshot.items.len() {
            metadata["continue"] = json!(format!("{id}:{end}"));
            metadata["remainingItemCount"] = json!(snapshot.items.len() - end);
        } else {
            self.snapshots.remove(&id);
        }
        Reply::Json(
            200,
            json!({
                "kind": format!("{}List", resource.kind),
                "apiVersion": resource.api_version,
                "metadata": metadata,
                "items": items,
            }),
        )
    }

    fn watch<'q>(
        &mut self,
        target: Target,
        selector: LabelSelector,
        param: impl Fn(&str) -> Option<&'q str>,
    ) -> Reply {
        let resource = &RESOURCES[target.resource];
        let (tx, events) = mpsc::unbounded_channel();
        let watch = Watch {
            resource: target.resource,
            namespace: target.namespace,
            selector,
            bookmarks: param("allowWatchBookmarks") == Some("true"),
            tx,
        };
        let timeout_seconds = param("timeoutSeconds").and_then(|t| t.parse().ok());
        let from = param("resourceVersion").unwrap_or("");
        let initial = param("sendInitialEvents") == Some("true");
        if initial && !watch.bookmarks {
            return Reply::Json(
                422,
                status(
                    422,
                    "Invalid",
                    "sendInitialEvents requires allowWatchBookmarks=true",
                ),
            );
        }
        if initial || from.is_empty() || from == "0" {
            // "Start at most recent"/"any": the current state as ADDED events, then changes.
            for ((r, ns, _), stored) in &self.objects {
                if *r == watch.resource
                    && watch.namespace.as_ref().is_none_or(|t| t == ns)
                    && watch.selector.matches(Some(&labels_of(&stored.object)))
                {
                    let _ = watch
                        .tx
                        .send(WatchMsg::Line(event_line("ADDED", &stored.object)));
                }
            }
            if initial {
                let _ = watch
                    .tx
                    .send(WatchMsg::Line(bookmark_line(resource, self.rv, true)));
            }
        } else {
            let Ok(from) = from.parse::<u64>() else {
                return Reply::Json(
                    400,
                    status(
                        400,
                        "BadRequest",
                        &format!("invalid resourceVersion {from:?}"),
                    ),
                );
            };
            if from < self.compacted {
                let error = json!({ "type": "ERROR", "object": status(410, "Expired", &too_old(from, self.compacted)) });
                let _ = watch.tx.send(WatchMsg::Line(line(&error)));
                let _ = watch.tx.send(WatchMsg::End);
                return Reply::Watch {
                    events,
                    timeout_seconds,
                };
            }
            for change in self.history.iter().filter(|c| c.rv > from) {
                if let Some(line) = watch.event_line(change) {
                    let _ = watch.tx.send(WatchMsg::Line(line));
                }
            }
        }
        self.watches.push(watch);
        Reply::Watch {
            events,
            timeout_seconds,
        }
    }
}

// === impl Watch ===

impl Watch {
    /// The event line this watch sees for `change`, if any: a label change across the selector
    /// turns MODIFIED into ADDED or DELETED, as the real watch cache does.
    fn event_line(&self, change: &Change) -> Option<Bytes> {
        if change.resource != self.resource
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != change.namespace)
        {
            return None;
        }
        let now = self.selector.matches(Some(&labels_of(&change.object)));
        let before = change
            .prev
            .as_ref()
            .is_some_and(|p| self.selector.matches(Some(&labels_of(p))));
        let kind = match (change.kind, before, now) {
            ("MODIFIED", true, true) => "MODIFIED",
            ("MODIFIED", false, true) => "ADDED",
            ("MODIFIED", true, false) => "DELETED",
            (kind, _, true) if kind != "MODIFIED" => kind,
            _ => return None,
        };
        Some(event_line(kind, &change.object))
    }
}

// === wire helpers ===

/// The message the real server sends for an expired `continue`.
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn too_old(rv: u64, oldest: u64) -> String {
    format!("too old resource version: {rv} ({oldest})")
}

/// A `meta/v1 Status` failure, as the API server sends it.
pub(crate) fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

fn not_found() -> Reply {
    Reply::Json(
        404,
        status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    )
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0-podns-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// An object as a list item: without `apiVersion` and `kind` (the list carries them).
fn list_item(object: &Value) -> Value {
    let mut item = object.clone();
    if let Some(map) = item.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    item
}

fn line(value: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(value).expect("JSON values serialise");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    line(&json!({ "type": kind, "object": object }))
}

fn bookmark_line(resource: &Resource, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if initial_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    line(&json!({
        "type": "BOOKMARK",
        "object": { "kind": resource.kind, "apiVersion": resource.api_version, "metadata": metadata },
    }))
}

fn parse_continue(token: &str) -> Option<(u64, usize)> {
    let (id, offset) = token.split_once(':')?;
    Some((id.parse().ok()?, offset.parse().ok()?))
}

/// `/api/v1/[namespaces/{ns}/]{plural}[/{name}]` or the same under `/apis/{group}/{version}`.
fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (api_version, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let find = |plural: &str| {
        RESOURCES
            .iter()
            .position(|r| r.api_version == api_version && r.plural == plural)
    };
    let (resource, namespace, name) = match rest {
        [plural] => (find(plural)?, None, None),
        ["namespaces", ns, plural] => (find(plural)?, Some(*ns), None),
        ["namespaces", ns, plural, name] => (find(plural)?, Some(*ns), Some(*name)),
        [plural, name] => (find(plural)?, None, Some(*name)),
        _ => return None,
    };
    // A namespaced path for a cluster-scoped kind, or a cluster-scoped get of a namespaced one,
    // is not a path the real server serves.
    if namespace.is_some() != RESOURCES[resource].namespaced
        && (namespace.is_some() || name.is_some())
    {
        return None;
    }
    Some(Target {
        resource,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, app: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": app}}})
    }

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn get(state: &mut State, path: &str, pairs: &[(&str, &str)]) -> Reply {
        let q = query(pairs);
        state.handle(&ApiRequest {
            method: "GET",
            path,
            query: &q,
        })
    }

    fn json_of(reply: Reply) -> (u16, Value) {
        match reply {
            Reply::Json(code, v) => (code, v),
            Reply::Watch { .. } => panic!("a watch, not JSON"),
        }
    }

    fn drain(reply: Reply) -> Vec<Value> {
        let Reply::Watch { mut events, .. } = reply else {
            panic!("not a watch")
        };
        let mut out = Vec::new();
        while let Ok(msg) = events.try_recv() {
            match msg {
                WatchMsg::Line(l) => out.push(serde_json::from_slice(&l).unwrap()),
                WatchMsg::End => out.push(json!("END")),
                WatchMsg::Reset => out.push(json!("RESET")),
            }
        }
        out
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("/api/v1/services").map(|t| t.resource), Some(1));
        let t = parse_path("/api/v1/namespaces/a/services").unwrap();
        assert_eq!((t.namespace.as_deref(), t.name), (Some("a"), None));
        assert!(parse_path("/apis/discovery.k8s.io/v1/endpointslices").is_some());
        assert_eq!(
            parse_path("/api/v1/namespaces/x").unwrap().name.as_deref(),
            Some("x")
        );
        assert!(parse_path("/api/v1/namespaces/a/namespaces").is_none());
        assert!(parse_path("/api/v1/widgets").is_none());
        assert!(parse_path("/healthz").is_none());
    }

    #[test]
    fn pages_are_one_snapshot() {
        let mut state = State::default();
        for n in 0..5 {
            state.apply(svc(&format!("s{n}"), "web"));
        }
        let (code, page) = json_of(get(&mut state, "/api/v1/services", &[("limit", "2")]));
        assert_eq!(code, 200);
        assert_eq!(page["kind"], "ServiceList");
        assert_eq!(page["metadata"]["resourceVersion"], "5");
        assert_eq!(page["metadata"]["remainingItemCount"], 3);
        assert!(
            page["items"][0].get("kind").is_none(),
            "list items carry no kind"
        );
        state.apply(svc("s9", "web"));
        state.delete("v1", "Service", "default", "s4");
        let token = page["metadata"]["continue"].as_str().unwrap().to_owned();
        let mut names = vec![];
        let mut token = Some(token);
        while let Some(t) = token {
            let (_, page) = json_of(get(
                &mut state,
                "/api/v1/services",
                &[("limit", "2"), ("continue", &t)],
            ));
            assert_eq!(
                page["metadata"]["resourceVersion"], "5",
                "the snapshot's version"
            );
            names.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["metadata"]["name"].clone()),
            );
            token = page["metadata"]["continue"].as_str().map(str::to_owned);
        }
        assert_eq!(
            names,
            ["s2", "s3", "s4"],
            "changes after the first page are not seen"
        );
    }

    #[test]
    fn compacted_continue_and_watch_are_gone() {
        let mut state = State::default();
        state.apply(svc("a", "web"));
        state.apply(svc("b", "web"));
        let (_, page) = json_of(get(&mut state, "/api/v1/services", &[("limit", "1")]));
        let token = page["metadata"]["continue"].as_str().unwrap().to_owned();
        state.compact();
        let (code, body) = json_of(get(&mut state, "/api/v1/services", &[("continue", &token)]));
        assert_eq!((code, body["reason"].as_str()), (410, Some("Expired")));
        let events = drain(get(
            &mut state,
            "/api/v1/services",
            &[("watch", "true"), ("resourceVersion", "1")],
        ));
        assert_eq!(events[0]["type"], "ERROR");
        assert_eq!(events[0]["object"]["code"], 410);
        assert_eq!(events[1], "END");
        let events = drain(get(
            &mut state,
            "/api/v1/services",
            &[("watch", "true"), ("resourceVersion", "2")],
        ));
        assert!(
            events.is_empty(),
            "from the compaction point: fine, nothing new"
        );
    }

    #[test]
    fn watch_replays_after_version_and_follows_selector() {
        let mut state = State::default();
        state.apply(svc("a", "web"));
        state.apply(svc("b", "db"));
        let reply = get(
            &mut state,
            "/api/v1/namespaces/default/services",
            &[
                ("watch", "true"),
                ("resourceVersion", "1"),
                ("labelSelector", "app=web"),
                ("allowWatchBookmarks", "true"),
            ],
        );
        state.apply(svc("b", "web"));
        state.apply(svc("a", "db"));
        state.delete("v1", "Service", "default", "b");
        state.send_bookmarks();
        let types: Vec<_> = drain(reply)
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["type"].as_str().unwrap(),
                    e["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap_or(e["object"]["metadata"]["resourceVersion"].as_str().unwrap())
                )
            })
            .collect();
        assert_eq!(types, ["ADDED b", "DELETED a", "DELETED b", "BOOKMARK 5"]);
    }

    #[test]
    fn streaming_list_ends_with_the_initial_events_bookmark() {
        let mut state = State::default();
        state.apply(svc("a", "web"));
        let events = drain(get(
            &mut state,
            "/api/v1/services",
            &[
                ("watch", "true"),
                ("sendInitialEvents", "true"),
                ("allowWatchBookmarks", "true"),
                ("resourceVersionMatch", "NotOlderThan"),
            ],
        ));
        assert_eq!(events[0]["type"], "ADDED");
        assert_eq!(
            events[0]["object"]["kind"], "Service",
            "watch objects carry their kind"
        );
        assert_eq!(events[1]["type"], "BOOKMARK");
        assert_eq!(
            events[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
    }

    #[test]
    fn unknown_paths_are_404_status() {
        let mut state = State::default();
        let (code, body) = json_of(get(&mut state, "/apis/example.com/v1/widgets", &[]));
        assert_eq!(
            (code, body["kind"].as_str(), body["reason"].as_str()),
            (404, Some("Status"), Some("NotFound"))
        );
        let (code, body) = json_of(get(&mut state, "/version", &[]));
        assert_eq!((code, body["minor"].as_str()), (200, Some("33")));
    }
}
