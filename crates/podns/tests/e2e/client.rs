//! podns-client against a running `podns serve`: discovery follows the manifests within a TTL,
//! a deleted pod's address goes away, a failing endpoint is ejected and comes back, and
//! `podns resolve` prints what the library sees.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use podns_client::{
    Balancer, Discovery, Endpoint, LookupKind, OutlierConfig, RefreshConfig, Resolver, RoundRobin,
    Route, Target, Update,
};

use crate::harness::{Server, example, podns, write_redis};

/// The answer TTL these tests serve: a watching client must see a change within it.
const TTL_SECS: u64 = 2;

fn resolver(server: &Server) -> Resolver {
    Resolver::builder()
        .server(server.addr)
        .pod_search("default", "cluster.local")
        .timeout(Duration::from_secs(2))
        .build()
        .expect("resolver")
}

/// Waits (bounded) for the next update that satisfies `want`, returning how long it took.
async fn next_update(
    updates: &mut podns_client::Updates,
    limit: Duration,
    mut want: impl FnMut(&Update) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let update = tokio::time::timeout(limit.saturating_sub(start.elapsed()), updates.next())
            .await
            .expect("no matching update in time")
            .expect("update stream ended");
        if want(&update) {
            return start.elapsed();
        }
    }
}

fn hostnames(endpoints: &[Endpoint]) -> Vec<String> {
    let mut names: Vec<String> = endpoints
        .iter()
        .filter_map(|e| e.hostname().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_client_sees_scaling_within_one_ttl() {
    let dir = tempfile::tempdir().unwrap();
    write_redis(dir.path(), 3);
    let ttl = TTL_SECS.to_string();
    let server = Server::start(&[dir.path()], &["--ttl", &ttl, "--negative-ttl", &ttl]);
    let target = Target::parse("redis-headless:6379")
        .unwrap()
        .with_kind(LookupKind::Srv);
    let discovery = Discovery::spawn(resolver(&server), target, RefreshConfig::default());
    let set = tokio::time::timeout(Duration::from_secs(10), discovery.ready())
        .await
        .expect("ready");
    assert_eq!(
        hostnames(set.endpoints()),
        ["redis-0", "redis-1", "redis-2"]
    );
    assert!(set.endpoints().iter().all(|e| e.addr.port() == 6379));
    let mut updates = discovery.updates();
    next_update(&mut updates, Duration::from_secs(5), |u| {
        matches!(u, Update::Reset(_))
    })
    .await;

    // One TTL, plus the server's debounce and re-derive, plus scheduling slack on 2 busy cores.
    let within = Duration::from_secs(TTL_SECS) + Duration::from_millis(1500);
    write_redis(dir.path(), 5);
    let took = next_update(
        &mut updates,
        within,
        |u| matches!(u, Update::Add(added) if hostnames(added) == ["redis-3", "redis-4"]),
    )
    .await;
    assert!(took <= within, "scale-up seen after {took:?}");
    assert_eq!(discovery.current().len(), 5);

    write_redis(dir.path(), 2);
    let took = next_update(&mut updates, within, |u| {
        matches!(u, Update::Remove(gone) if hostnames(gone) == ["redis-2", "redis-3", "redis-4"])
    })
    .await;
    assert!(took <= within, "scale-down seen after {took:?}");
    assert_eq!(
        hostnames(discovery.current().endpoints()),
        ["redis-0", "redis-1"]
    );
    // Ordinals come from the StatefulSet pod names.
    let mut ordinals: Vec<u32> = discovery
        .current()
        .endpoints()
        .iter()
        .filter_map(|e| e.ordinal)
        .collect();
    ordinals.sort_unstable();
    assert_eq!(ordinals, [0, 1]);
}

fn echo_manifests(dir: &Path, port: u16, pods: &[&str]) {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\nspec:\n  clusterIP: None\n  selector:\n    app: echo\n  ports:\n  - name: tcp\n    port: {port}\n"
    );
    for (i, ip) in pods.iter().enumerate() {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: echo-{i}\n  labels:\n    app: echo\nspec:\n  containers:\n  - name: echo\n    image: echo\nstatus:\n  phase: Running\n  podIP: {ip}\n  conditions:\n  - type: Ready\n    status: \"True\"\n"
        ));
    }
    let tmp = dir.join(".echo.yaml.tmp");
    fs::write(&tmp, yaml).unwrap();
    fs::rename(&tmp, dir.join("echo.yaml")).unwrap();
}

/// Two loopback "pods" listening on the same port (127.0.0.2 and 127.0.0.3).
fn two_listeners() -> (TcpListener, TcpListener, u16) {
    for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let port = first.local_addr().unwrap().port();
        if let Ok(second) = TcpListener::bind(("127.0.0.3", port)) {
            return (first, second, port);
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_disappears_and_a_failing_endpoint_is_ejected_then_returns() {
    let (first, second, port) = two_listeners();
    let dir = tempfile::tempdir().unwrap();
    echo_manifests(dir.path(), port, &["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let ttl = TTL_SECS.to_string();
    let server = Server::start(&[dir.path()], &["--ttl", &ttl, "--negative-ttl", &ttl]);
    let target = Target::parse(&format!("echo:{port}")).unwrap();
    let discovery = Discovery::spawn(resolver(&server), target, RefreshConfig::default());
    let set = tokio::time::timeout(Duration::from_secs(10), discovery.ready())
        .await
        .expect("ready");
    assert_eq!(set.len(), 3);

    // Delete the pod at 127.0.0.4: its address leaves the set.
    let mut updates = discovery.updates();
    echo_manifests(dir.path(), port, &["127.0.0.2", "127.0.0.3"]);
    let gone: SocketAddr = format!("127.0.0.4:{port}").parse().unwrap();
    next_update(
        &mut updates,
        Duration::from_secs(TTL_SECS + 5),
        |u| matches!(u, Update::Remove(removed) if removed.iter().any(|e| e.addr == gone)),
    )
    .await;
    assert_eq!(discovery.current().len(), 2);

    // 127.0.0.3 stops accepting: after 3 consecutive failures it is ejected.
    drop(second);
    let failing: SocketAddr = format!("127.0.0.3:{port}").parse().unwrap();
    let outlier = OutlierConfig {
        consecutive_failures: 3,
        base_ejection_time: Duration::from_secs(2),
        max_ejection_percent: 50,
        ..OutlierConfig::default()
    };
    let balancer = Balancer::builder(discovery, RoundRobin::new())
        .outlier(outlier)
        .build();
    let connect = |ep: Endpoint| async move {
        tokio::net::TcpStream::connect(ep.addr)
            .await
            .map(|_| ep.addr)
    };
    for _ in 0..10 {
        // Retries move a failed call to the healthy endpoint, so every call succeeds.
        let reached = balancer
            .call(Route::new(), connect)
            .await
            .expect("a healthy endpoint answers");
        assert_eq!(reached.ip(), first.local_addr().unwrap().ip());
    }
    assert_eq!(balancer.ejected(), [failing]);

    // It listens again; after the ejection time it gets traffic again.
    let _second = TcpListener::bind(failing).expect("rebind 127.0.0.3");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reached_failing = false;
    while Instant::now() < deadline && !reached_failing {
        let reached = balancer.call(Route::new(), connect).await.expect("call");
        reached_failing = reached == failing;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reached_failing, "127.0.0.3 never came back");
    assert!(balancer.ejected().is_empty());
}

#[test]
fn podns_resolve_prints_the_endpoint_set() {
    let server = Server::start(&[&example("redis-statefulset")], &[]);
    let output = podns()
        .args([
            "resolve",
            "redis-headless:6379",
            "--type",
            "SRV",
            "--server",
            &server.addr.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_by_key(|l| l.split_whitespace().nth(1).map(str::to_owned));
    assert_eq!(lines.len(), 3, "{text}");
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(f[0].ends_with(":6379"), "{line}");
        assert_eq!(
            f[1..],
            [format!("redis-{i}").as_str(), &format!("ordinal={i}")],
            "{line}"
        );
    }

    // A short name through the pod search list, A records only.
    let output = podns()
        .args([
            "resolve",
            "redis-0.redis-headless",
            "--type",
            "A",
            "--server",
            &server.addr.to_string(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");

    // NXDOMAIN is an error with a clear message.
    let output = podns()
        .args([
            "resolve",
            "nope.default.svc.cluster.local:80",
            "--server",
            &server.addr.to_string(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("NXDOMAIN"));
}

#[test]
fn podns_resolve_watch_prints_changes_with_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    write_redis(dir.path(), 2);
    let server = Server::start(&[dir.path()], &["--ttl", "1", "--negative-ttl", "1"]);
    let mut child = podns()
        .args([
            "resolve",
            "redis-headless:6379",
            "--type",
            "SRV",
            "--watch",
            "--server",
            &server.addr.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let wait_for = |needle: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    };
    let reset = wait_for("= 2 endpoints");
    assert!(
        reset.starts_with("20") && reset.contains('T') && reset.contains('Z'),
        "{reset}"
    );
    write_redis(dir.path(), 3);
    let added = wait_for("+ ");
    assert!(added.contains("redis-2 ordinal=2"), "{added}");
    let _ = child.kill();
    let _ = child.wait();
}
