//! The Kubernetes API source against the test kit's fake API server: the real kube client and
//! watcher over HTTP on 127.0.0.1, through pagination, watch drops, compaction (410), bookmarks,
//! a hung server and an outage. Every wait is bounded and polls a condition.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use podns_cluster::source::kube::{KubeEvent, KubeWatch, KubeWatchConfig, client, spawn_watch};
use podns_cluster::{ClusterEvent, ClusterStore, Kind, Object, ObjectRef, observed};
use podns_testkit::{FakeApiServer, RecordedRequest};
use serde_json::{Value, json};

/// The longest any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(15);

/// How often conditions are re-checked while no event arrives.
const POLL: Duration = Duration::from_millis(20);

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn service(ns: &str, name: &str, labels: &Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"name": "http", "port": 80}]},
    })
}

fn slice(ns: &str, service: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-abcde"), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

fn pod(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": "x"}]}})
}

/// A running source against a fake server, and the store its events built.
struct Harness {
    server: FakeApiServer,
    watch: KubeWatch,
    store: ClusterStore,
    /// Every event received so far; a streamed relist (start, items, done) as the one
    /// `ResyncKind` it amounts to, at its `RelistDone`.
    seen: Vec<KubeEvent>,
    /// Relists in progress: the items since each kind's `RelistStart`.
    relists: BTreeMap<Kind, Vec<Object>>,
    /// The sizes of the `RelistItems` chunks received, in order.
    chunks: Vec<usize>,
}

impl Harness {
    /// A source with `config` against `server`, through a kubeconfig file as the binary does.
    async fn start(server: FakeApiServer, config: KubeWatchConfig) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "podns-kube-source-{}-{}.kubeconfig",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        server.write_kubeconfig(&path).unwrap();
        let client = client(Some(&path), None)
            .await
            .expect("a client from the kubeconfig");
        std::fs::remove_file(&path).ok();
        Self {
            server,
            watch: spawn_watch(client, config),
            store: ClusterStore::new(),
            seen: Vec::new(),
            relists: BTreeMap::new(),
            chunks: Vec::new(),
        }
    }

    /// Receives events (applying changes to the store) until `done` holds; fails after `within`.
    async fn until(&mut self, within: Duration, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; seen: {:#?}",
                self.seen.iter().map(short).collect::<Vec<_>>()
            );
            // Short receives, so conditions on the server or the status are polled too.
            match tokio::time::timeout(POLL, self.watch.events.recv()).await {
                Ok(Some(event)) => self.take(event),
                Ok(None) => panic!("event channel closed while waiting for {what}"),
                Err(_) => {}
            }
        }
    }

    /// Receives for `quiet`; fails if any change arrives.
    async fn expect_no_change(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(Some(event)) =
            tokio::time::timeout_at(deadline, self.watch.events.recv()).await
        {
            assert!(
                !matches!(event, KubeEvent::Change { .. }),
                "unexpected change: {}",
                short(&event)
            );
            self.take(event);
        }
    }

    fn take(&mut self, event: KubeEvent) {
        let KubeEvent::Change {
            event,
            received,
            triggered,
        } = event
        else {
            self.seen.push(event);
            return;
        };
        self.store.apply_event(event.clone());
        let event = match event {
            ClusterEvent::RelistStart(kind) => {
                self.relists.insert(kind, Vec::new());
                return;
            }
            ClusterEvent::RelistItems(objects) => {
                self.chunks.push(objects.len());
                for object in objects {
                    let kind = object.kind();
                    self.relists
                        .get_mut(&kind)
                        .unwrap_or_else(|| panic!("a {kind} relist item outside a relist"))
                        .push(object);
                }
                return;
            }
            ClusterEvent::RelistDone(kind) => ClusterEvent::ResyncKind {
                kind,
                objects: self
                    .relists
                    .remove(&kind)
                    .unwrap_or_else(|| panic!("a {kind} relist done without its start")),
            },
            other => other,
        };
        self.seen.push(KubeEvent::Change {
            event,
            received,
            triggered,
        });
    }

    async fn synced(&mut self) {
        // The status runs ahead of the channel; the Synced events say the lists were received.
        self.until(WAIT, "Synced of every kind", |h| {
            h.watch.status.kinds().iter().all(|k| {
                h.seen
                    .iter()
                    .any(|e| matches!(e, KubeEvent::Synced(s) if s == k))
            })
        })
        .await;
        assert!(self.watch.status.synced());
        let kinds = self.watch.status.kinds().len();
        self.until(WAIT, "every watch open", |h| {
            h.server.open_watches() == kinds
        })
        .await;
    }

    fn has(&self, kind: Kind, ns: &str, name: &str) -> bool {
        self.store.get(&ObjectRef::new(kind, ns, name)).is_some()
    }

    /// The requests for one collection path.
    fn requests_for(&self, path: &str) -> Vec<RecordedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

fn param<'a>(request: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    request
        .query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn is_watch(request: &RecordedRequest) -> bool {
    param(request, "watch") == Some("true")
}

/// One line per event, for failure messages and order assertions.
fn short(event: &KubeEvent) -> String {
    match event {
        KubeEvent::Change { event, .. } => match event {
            ClusterEvent::Apply(o) => format!(
                "apply {} rv={}",
                o.object_ref(),
                o.metadata().resource_version.as_deref().unwrap_or("")
            ),
            ClusterEvent::Delete(r) => format!("delete {r}"),
            ClusterEvent::Resync(objects) => format!("resync {}", objects.len()),
            ClusterEvent::ResyncKind { kind, objects } => {
                let mut names: Vec<String> = objects.iter().map(|o| o.name().to_owned()).collect();
                names.sort();
                format!("resync {kind} [{}]", names.join(","))
            }
            ClusterEvent::RelistStart(kind) => format!("relist start {kind}"),
            ClusterEvent::RelistItems(objects) => format!("relist items {}", objects.len()),
            ClusterEvent::RelistDone(kind) => format!("relist done {kind}"),
        },
        KubeEvent::Synced(kind) => format!("synced {kind}"),
        KubeEvent::Error { kind, message } => format!("error {kind}: {message}"),
    }
}

fn shorts_of(h: &Harness, kind: Kind) -> Vec<String> {
    let k = kind.to_string();
    h.seen
        .iter()
        .map(short)
        .filter(|s| s.contains(&k) && !s.starts_with("error"))
        .collect()
}

fn config() -> KubeWatchConfig {
    KubeWatchConfig {
        page_size: 2,
        backoff_max: Duration::from_secs(1),
        ..KubeWatchConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_list_across_pages_is_one_resync_then_synced() {
    let server = FakeApiServer::start().await;
    server.apply(namespace("default"));
    server.apply(namespace("prod"));
    for n in 0..5 {
        server.apply(service("prod", &format!("svc-{n}"), &json!({})));
    }
    server.apply(slice("prod", "svc-0", "10.244.0.5"));
    server.apply(pod("prod", "svc-0-0"));
    let mut h = Harness::start(
        server,
        KubeWatchConfig {
            pods: true,
            ..config()
        },
    )
    .await;
    h.synced().await;

    assert_eq!(
        shorts_of(&h, Kind::Service),
        [
            "resync Service [svc-0,svc-1,svc-2,svc-3,svc-4]",
            "synced Service"
        ],
        "five services over three pages arrive as one relist, then Synced"
    );
    assert_eq!(h.store.len(), 2 + 5 + 1 + 1);
    assert_eq!(
        h.watch.status.kinds(),
        [
            Kind::Namespace,
            Kind::Service,
            Kind::EndpointSlice,
            Kind::Pod
        ]
    );
    assert!(h.watch.status.connected());

    let requests = h.requests_for("/api/v1/services");
    let lists: Vec<_> = requests.iter().filter(|r| !is_watch(r)).collect();
    assert_eq!(lists.len(), 3, "pages of 2: {lists:?}");
    assert!(lists.iter().all(|r| param(r, "limit") == Some("2")));
    assert_eq!(param(lists[0], "continue"), None);
    assert!(param(lists[1], "continue").is_some() && param(lists[2], "continue").is_some());
    let watch = requests
        .iter()
        .find(|r| is_watch(r))
        .expect("a watch after the list");
    assert_eq!(param(watch, "allowWatchBookmarks"), Some("true"));
    assert_eq!(
        param(watch, "resourceVersion"),
        Some("9"),
        "the watch starts at the list's resourceVersion"
    );

    let cluster = observed(&h.store);
    assert_eq!(cluster.services.len(), 5);
    assert_eq!(cluster.endpoint_slices.len(), 1);
    assert_eq!(cluster.pods.len(), 1);
    assert_eq!(cluster.namespaces.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_arrive_in_order() {
    let server = FakeApiServer::start().await;
    let mut h = Harness::start(server.clone(), config()).await;
    h.synced().await;
    server.apply(service("default", "web", &json!({"v": "1"})));
    server.apply(service("default", "web", &json!({"v": "2"})));
    server.delete("v1", "Service", "default", "web");
    h.until(WAIT, "the delete", |h| {
        h.seen
            .iter()
            .any(|e| short(e) == "delete Service default/web")
    })
    .await;
    assert_eq!(
        shorts_of(&h, Kind::Service),
        [
            "resync Service []",
            "synced Service",
            "apply Service default/web rv=1",
            "apply Service default/web rv=2",
            "delete Service default/web",
        ]
    );
    assert!(h.store.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watch_resumes_from_the_last_version_without_relist() {
    let server = FakeApiServer::start().await;
    server.apply(service("default", "a", &json!({})));
    let mut h = Harness::start(server.clone(), config()).await;
    h.synced().await;
    let rv = server.apply(service("default", "b", &json!({})));
    h.until(WAIT, "b", |h| h.has(Kind::Service, "default", "b"))
        .await;

    server.clear_requests();
    server.drop_watches();
    h.until(WAIT, "watches re-opened", |h| h.server.open_watches() == 3)
        .await;
    server.apply(service("default", "c", &json!({})));
    h.until(WAIT, "c", |h| h.has(Kind::Service, "default", "c"))
        .await;

    let requests = h.requests_for("/api/v1/services");
    assert!(!requests.is_empty());
    assert!(requests.iter().all(is_watch), "no relist: {requests:?}");
    assert_eq!(
        param(&requests[0], "resourceVersion"),
        Some(rv.to_string().as_str())
    );
    assert_eq!(h.watch.status.relists(Kind::Service), 0);
    assert!(h.watch.status.connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_gives_410_and_a_relist_without_the_deleted() {
    let server = FakeApiServer::start().await;
    server.apply(service("default", "a", &json!({})));
    server.apply(service("default", "b", &json!({})));
    let mut h = Harness::start(server.clone(), config()).await;
    h.synced().await;

    // Hold the watcher (a hung server) so it cannot follow the changes live, drop its watch,
    // change and compact: when it comes back, its resourceVersion is gone.
    server.set_hang(true);
    server.drop_watches();
    server.delete("v1", "Service", "default", "b");
    server.apply(service("default", "c", &json!({})));
    server.compact();
    server.clear_requests();
    server.set_hang(false);

    // The status runs ahead of the channel: wait for the relist itself to arrive.
    h.until(WAIT, "a relist of Services", |h| {
        shorts_of(h, Kind::Service)
            .iter()
            .filter(|s| s.starts_with("resync"))
            .count()
            == 2
    })
    .await;
    // And the status counts it (just after sending it).
    h.until(WAIT, "the relist counted", |h| {
        h.watch.status.relists(Kind::Service) == 1
    })
    .await;
    assert!(
        !h.has(Kind::Service, "default", "b"),
        "deleted while compacted: gone"
    );
    assert!(h.has(Kind::Service, "default", "c"));
    assert!(h.has(Kind::Service, "default", "a"));
    let services = shorts_of(&h, Kind::Service);
    assert_eq!(
        services[2..],
        ["resync Service [a,c]"],
        "the relist is one event, the delete is not replayed: {services:?}"
    );
    assert!(
        h.seen.iter().any(|e| matches!(e, KubeEvent::Error { kind: Kind::Service, message } if message.contains("410") || message.contains("too old"))),
        "the 410 is reported"
    );
    let requests = h.requests_for("/api/v1/services");
    let first_list = requests
        .iter()
        .position(|r| !is_watch(r))
        .expect("a relist");
    assert!(
        is_watch(&requests[0]),
        "a watch first, which got 410: {requests:?}"
    );
    assert_eq!(param(&requests[first_list], "continue"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_advance_the_resumed_version() {
    let server = FakeApiServer::start().await;
    let mut h = Harness::start(server.clone(), config()).await;
    h.synced().await;
    // A change of another kind moves the global version; the Service watch sees nothing of it.
    let rv = server.apply(namespace("other"));
    h.until(WAIT, "the namespace", |h| {
        h.has(Kind::Namespace, "", "other")
    })
    .await;
    server.send_bookmarks();
    server.clear_requests();
    server.drop_watches();
    h.until(WAIT, "watches re-opened", |h| h.server.open_watches() == 3)
        .await;
    let requests = h.requests_for("/api/v1/services");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        param(&requests[0], "resourceVersion"),
        Some(rv.to_string().as_str()),
        "resumed from the bookmark, not from the list's version 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_makes_no_progress_then_recovers() {
    let server = FakeApiServer::start().await;
    server.set_hang(true);
    server.apply(service("default", "a", &json!({})));
    let mut h = Harness::start(server.clone(), config()).await;
    h.expect_no_change(Duration::from_millis(800)).await;
    assert!(!h.watch.status.synced());
    server.set_hang(false);
    h.synced().await;
    assert!(h.has(Kind::Service, "default", "a"));

    server.set_hang(true);
    server.apply(service("default", "b", &json!({})));
    h.expect_no_change(Duration::from_millis(800)).await;
    server.set_hang(false);
    h.until(WAIT, "b after the hang", |h| {
        h.has(Kind::Service, "default", "b")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_reported_and_changes_during_it_arrive_soon_after() {
    let server = FakeApiServer::start().await;
    server.apply(service("default", "a", &json!({})));
    let config = config();
    let backoff_max = config.backoff_max;
    let mut h = Harness::start(server.clone(), config).await;
    h.synced().await;
    assert!(h.watch.status.connected());

    server.stop();
    h.until(WAIT, "errors of every kind", |h| {
        [Kind::Namespace, Kind::Service, Kind::EndpointSlice]
            .iter()
            .all(|k| h.watch.status.restarts(*k) >= 2)
    })
    .await;
    assert!(!h.watch.status.connected());
    assert!(h.seen.iter().any(|e| matches!(
        e,
        KubeEvent::Error {
            kind: Kind::Service,
            ..
        }
    )));
    server.apply(service("default", "during", &json!({})));
    server.delete("v1", "Service", "default", "a");
    // Long enough for the backoff to reach its cap.
    tokio::time::sleep(backoff_max * 2).await;
    let restarts = h.watch.status.total_restarts();

    server.resume().await;
    let resumed = Instant::now();
    h.until(WAIT, "the change made during the outage", |h| {
        h.has(Kind::Service, "default", "during") && !h.has(Kind::Service, "default", "a")
    })
    .await;
    let took = resumed.elapsed();
    assert!(
        took <= backoff_max + Duration::from_secs(2),
        "took {took:?}"
    );
    h.until(WAIT, "connected again", |h| h.watch.status.connected())
        .await;
    assert!(restarts >= 6);
    assert_eq!(
        h.watch.status.relists(Kind::Service),
        0,
        "resumed from its version, no relist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_label_selector_is_applied_by_the_server() {
    let server = FakeApiServer::start().await;
    server.apply(service("default", "web", &json!({"app": "web"})));
    server.apply(service(
        "default",
        "old",
        &json!({"app": "web", "legacy": "true"}),
    ));
    server.apply(service("default", "db", &json!({"app": "db"})));
    let config = KubeWatchConfig {
        service_label_selector: Some("app=web,!legacy".to_owned()),
        ..config()
    };
    let mut h = Harness::start(server.clone(), config).await;
    h.synced().await;
    let all: Vec<String> = h.seen.iter().map(short).collect();
    assert_eq!(
        shorts_of(&h, Kind::Service).first().map(String::as_str),
        Some("resync Service [web]"),
        "{all:?}"
    );
    let requests = h.requests_for("/api/v1/services");
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| param(r, "labelSelector") == Some("app=web,!legacy"))
    );
    assert!(
        h.requests_for("/api/v1/namespaces")
            .iter()
            .all(|r| param(r, "labelSelector").is_none())
    );

    server.apply(service("default", "db", &json!({"app": "web"})));
    h.until(WAIT, "db joining the selector", |h| {
        h.has(Kind::Service, "default", "db")
    })
    .await;
    assert!(!h.has(Kind::Service, "default", "old"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_stripped_and_the_trigger_time_is_read() {
    let server = FakeApiServer::start().await;
    let fat = |ip: &str, at: &str| {
        let mut s = slice("default", "web", ip);
        s["metadata"]["managedFields"] = json!([{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "discovery.k8s.io/v1"}]);
        s["metadata"]["annotations"] = json!({
            "kubectl.kubernetes.io/last-applied-configuration": "{\"a\":1}",
            "endpoints.kubernetes.io/last-change-trigger-time": at,
            "team": "dns",
        });
        s
    };
    server.apply(fat("10.244.0.1", "2026-11-03T10:00:00Z"));
    let mut h = Harness::start(server.clone(), config()).await;
    h.synced().await;
    server.apply(fat("10.244.0.2", "2026-11-03T10:00:01.250Z"));
    h.until(WAIT, "the slice update", |h| {
        h.seen.iter().any(|e| {
            matches!(
                e,
                KubeEvent::Change {
                    event: ClusterEvent::Apply(_),
                    ..
                }
            )
        })
    })
    .await;

    let triggered = h.seen.iter().find_map(|e| match e {
        KubeEvent::Change {
            event: ClusterEvent::Apply(_),
            triggered,
            ..
        } => Some(*triggered),
        _ => None,
    });
    let expected: SystemTime = UNIX_EPOCH + Duration::from_millis(1_793_700_001_250);
    assert_eq!(triggered, Some(Some(expected)));
    let r = ObjectRef::new(Kind::EndpointSlice, "default", "web-abcde");
    let Some(Object::EndpointSlice(stored)) = h.store.get(&r) else {
        panic!("slice stored")
    };
    assert_eq!(stored.metadata.managed_fields, None);
    assert_eq!(
        stored.metadata.annotations,
        Some([("team".to_owned(), "dns".to_owned())].into()),
        "only the annotations podns may show are kept"
    );
    assert_eq!(stored.endpoints[0].addresses, ["10.244.0.2"]);
    // The relist path strips too.
    let resync = h.seen.iter().find_map(|e| match e {
        KubeEvent::Change {
            event:
                ClusterEvent::ResyncKind {
                    kind: Kind::EndpointSlice,
                    objects,
                },
            ..
        } => Some(objects),
        _ => None,
    });
    assert_eq!(
        resync.map(|o| o[0].metadata().managed_fields.is_none()),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_outage_ends_connected_without_any_event() {
    let server = FakeApiServer::start().await;
    let mut h = Harness::start(server.clone(), config()).await;
    h.synced().await;
    server.stop();
    h.until(WAIT, "disconnected", |h| !h.watch.status.connected())
        .await;
    let changes = h.seen.len();
    server.resume().await;
    // Nothing changed, so no event tells the watchers they are back: the request observer does.
    h.until(WAIT, "connected again", |h| h.watch.status.connected())
        .await;
    h.until(WAIT, "every watch open", |h| h.server.open_watches() == 3)
        .await;
    assert!(
        h.seen[changes..]
            .iter()
            .all(|e| !matches!(e, KubeEvent::Change { .. })),
        "no relist, no change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_server_serves_streaming_lists_to_the_real_watcher() {
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::Service;
    use kube::runtime::watcher;

    let server = FakeApiServer::start().await;
    server.apply(service("default", "a", &json!({})));
    let path = std::env::temp_dir().join(format!(
        "podns-kube-streaming-{}.kubeconfig",
        std::process::id()
    ));
    server.write_kubeconfig(&path).unwrap();
    let client = client(Some(&path), None).await.unwrap();
    std::fs::remove_file(&path).ok();
    let stream = watcher(
        kube::Api::<Service>::all(client),
        watcher::Config::default().streaming_lists(),
    );
    let mut stream = std::pin::pin!(stream);
    let mut next = async || {
        let event = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("an event in time");
        match event.expect("the stream goes on").expect("no error") {
            watcher::Event::Init => "init".to_owned(),
            watcher::Event::InitApply(s) => format!("init-apply {}", s.metadata.name.unwrap()),
            watcher::Event::InitDone => "init-done".to_owned(),
            watcher::Event::Apply(s) => format!("apply {}", s.metadata.name.unwrap()),
            watcher::Event::Delete(s) => format!("delete {}", s.metadata.name.unwrap()),
        }
    };
    assert_eq!(next().await, "init");
    assert_eq!(next().await, "init-apply a");
    assert_eq!(next().await, "init-done");
    server.apply(service("default", "b", &json!({})));
    assert_eq!(next().await, "apply b");
    let requests = server.requests();
    assert!(
        requests.iter().all(is_watch),
        "no list request: {requests:?}"
    );
    assert_eq!(param(&requests[0], "sendInitialEvents"), Some("true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_list_streams_in_chunks_and_lands_whole() {
    let server = FakeApiServer::start().await;
    server.apply(namespace("default"));
    for n in 0..250 {
        server.apply(service("default", &format!("svc-{n:03}"), &json!({})));
    }
    let mut h = Harness::start(
        server,
        KubeWatchConfig {
            page_size: 500,
            ..config()
        },
    )
    .await;
    h.synced().await;
    assert_eq!(h.store.services().count(), 250);
    let mut chunks = h.chunks.clone();
    chunks.sort_unstable();
    assert_eq!(
        chunks,
        [1, 50, 100, 100],
        "the Namespace alone, the Services in chunks of at most 100"
    );
}
