//! The CoreDNS-style options end to end: as flags, and in a config file that is reloaded while
//! queries keep being answered; and what `/metrics` shows: the queries, the process, the zone.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::harness::{Server, example, write_redis};

/// Writes `text` to `path` by rename, as a ConfigMap update or an editor does.
fn write_config(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Asks `name` A over UDP from a background thread until stopped (at most 30 s), counting
/// answered and unanswered queries.
struct QueryLoop {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    unanswered: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl QueryLoop {
    fn start(server: std::net::SocketAddr, name: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let unanswered = Arc::new(AtomicUsize::new(0));
        let mut query = Message::query();
        query.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        let (halt, ok, lost) = (stop.clone(), answered.clone(), unanswered.clone());
        let thread = std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut buf = [0u8; 4096];
            let mut id: u16 = 0;
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                id = id.wrapping_add(1);
                query.metadata.id = id;
                socket.send_to(&query.to_vec().unwrap(), server).unwrap();
                match socket.recv(&mut buf) {
                    Ok(len) => match Message::from_vec(&buf[..len]) {
                        Ok(m) if m.metadata.id == id && !m.answers.is_empty() => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    Err(_) => {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Self {
            stop,
            answered,
            unanswered,
            thread: Some(thread),
        }
    }

    /// Stops the loop; (answered, unanswered).
    fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        (
            self.answered.load(Ordering::Relaxed),
            self.unanswered.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn a_config_file_reload_applies_without_dropping_queries() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("podns.yaml");
    write_config(&config, "ttl: 30\npods: disabled\n");
    let server = Server::start(
        &[&example("redis-statefulset")],
        &["--config", config.to_str().unwrap()],
    );
    let name = "redis-headless.default.svc.cluster.local";
    server.dig(&[name]).assert_answers("A", 3, 30);
    server
        .dig(&["10-1-2-3.default.pod.cluster.local"])
        .assert_negative("NXDOMAIN", "cluster.local.");

    let queries = QueryLoop::start(server.addr, name);
    write_config(&config, "ttl: 7\npods: insecure\n");
    server.eventually("the new TTL", || server.dig(&[name]).answer[0].ttl == 7);
    assert_eq!(
        server
            .dig(&["10-1-2-3.default.pod.cluster.local"])
            .data("A"),
        ["10.1.2.3"]
    );

    // A broken file is reported with its key, and the running configuration stays.
    write_config(&config, "ttl: 7\npods: sometimes\n");
    server.wait_for_log("configuration rejected", 1);
    assert!(server.log().contains("sometimes"), "{}", server.log());
    write_config(&config, "ttl: 7\ntypo: 1\n");
    server.wait_for_log("configuration rejected", 2);
    server.dig(&[name]).assert_answers("A", 3, 7);

    let (answered, unanswered) = queries.finish();
    assert!(answered > 20, "only {answered} answered");
    assert_eq!(
        unanswered, 0,
        "{unanswered} queries unanswered during reloads"
    );
}

#[test]
fn a_config_change_is_rebuilt_from_the_files_and_waits_out_broken_manifests() {
    // `serve` keeps the zone, not the manifests, so a new configuration is applied by reading
    // the files again; while they are broken it is refused, the zone stays, and it is applied
    // once they load.
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    write_redis(&manifests, 3);
    let config = dir.path().join("podns.yaml");
    write_config(&config, "ttl: 30\n");
    let server = Server::start(&[&manifests], &["--config", config.to_str().unwrap()]);
    let name = "redis-headless.default.svc.cluster.local";
    server.dig(&[name]).assert_answers("A", 3, 30);

    // Edited manifests and a new configuration together: both are in the next zone.
    write_redis(&manifests, 2);
    server.eventually("2 redis pods", || server.dig_short(&[name]).len() == 2);
    write_config(&config, "ttl: 12\n");
    server.eventually("the new TTL", || server.dig(&[name]).answer[0].ttl == 12);
    server.dig(&[name]).assert_answers("A", 2, 12);

    let wrong = std::fs::read_to_string(example("redis-statefulset").join("redis.yaml"))
        .unwrap()
        .replace("replicas: 3", "replicas: three");
    std::fs::write(manifests.join("redis.yaml"), wrong).unwrap();
    server.wait_for_log("manifests rejected", 1);
    write_config(&config, "ttl: 7\n");
    server.wait_for_log("configuration rejected", 1);
    assert!(
        server
            .log()
            .contains("reading the manifests for the new configuration"),
        "{}",
        server.log()
    );
    server.dig(&[name]).assert_answers("A", 2, 12);

    write_redis(&manifests, 4);
    server.eventually("4 redis pods with the waiting TTL", || {
        let answer = server.dig(&[name]);
        answer.answer.len() == 4 && answer.answer.iter().all(|r| r.ttl == 7)
    });
}

#[test]
fn flags_win_over_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("podns.yaml");
    write_config(&config, "ttl: 12\nnegativeTtl: 3\n");
    let server = Server::start(
        &[&example("redis-statefulset")],
        &["--config", config.to_str().unwrap(), "--ttl", "5"],
    );
    let name = "redis-headless.default.svc.cluster.local";
    server.dig(&[name]).assert_answers("A", 3, 5);
    let miss = server.dig(&["nope.default.svc.cluster.local"]);
    assert_eq!(miss.authority[0].ttl, 3, "{}", miss.text);
    write_config(&config, "ttl: 20\nnegativeTtl: 4\n");
    server.eventually("the file's negative TTL", || {
        server.dig(&["nope.default.svc.cluster.local"]).authority[0].ttl == 4
    });
    server.dig(&[name]).assert_answers("A", 3, 5);
}

#[test]
fn coredns_options_as_flags() {
    let server = Server::start(
        &[&example("redis-statefulset")],
        &[
            "--pods",
            "insecure",
            "--cluster-domain",
            "cluster.local",
            "--cluster-domain",
            "example.local",
            "--ttl",
            "5",
        ],
    );
    // Every name under each zone, each with its own SOA.
    server
        .dig(&["redis-headless.default.svc.example.local"])
        .assert_answers("A", 3, 5);
    server
        .dig(&["nope.default.svc.example.local"])
        .assert_negative("NXDOMAIN", "example.local.");
    assert_eq!(
        server
            .dig(&["10-1-2-3.default.pod.cluster.local"])
            .data("A"),
        ["10.1.2.3"]
    );

    // Filters: a namespace allow-list and a label selector hide the service.
    let other_ns = Server::start(
        &[&example("redis-statefulset")],
        &["--namespaces", "kube-system"],
    );
    other_ns
        .dig(&["redis-headless.default.svc.cluster.local"])
        .assert_negative("NXDOMAIN", "cluster.local.");
    let unlabelled = Server::start(&[&example("redis-statefulset")], &["--labels", "tier=none"]);
    assert_ne!(
        unlabelled
            .dig(&["redis-headless.default.svc.cluster.local"])
            .status,
        "NOERROR"
    );
    // `noendpoints`: the headless service has nothing left to answer with.
    let no_endpoints = Server::start(&[&example("redis-statefulset")], &["--no-endpoints"]);
    no_endpoints
        .dig(&["redis-headless.default.svc.cluster.local"])
        .assert_negative("NXDOMAIN", "cluster.local.");
    // A bad selector is a start-up error naming the option.
    let output = crate::harness::podns()
        .args(["get", "records", "--labels", "a in (b", "--manifests"])
        .arg(example("redis-statefulset"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("labels"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn queries_are_counted_by_zone_type_and_rcode() {
    let server = Server::start(&[&example("redis-statefulset")], &[]);
    for _ in 0..3 {
        server.dig(&["redis-headless.default.svc.cluster.local"]);
    }
    server.dig(&[
        "+tcp",
        "SRV",
        "_redis._tcp.redis-headless.default.svc.cluster.local",
    ]);
    server.dig(&["nope.default.svc.cluster.local"]);
    server.dig(&["example.org"]);
    let metric = |series: &str| server.metric(series).unwrap_or(0.0);
    assert!(
        metric(r#"podns_dns_requests_total{zone="cluster.local.",proto="udp",type="A"}"#) >= 4.0
    );
    assert_eq!(
        metric(r#"podns_dns_requests_total{zone="cluster.local.",proto="tcp",type="SRV"}"#),
        1.0
    );
    assert!(metric(r#"podns_dns_responses_total{zone="cluster.local.",rcode="NXDOMAIN"}"#) >= 1.0);
    assert_eq!(
        metric(r#"podns_dns_responses_total{zone=".",rcode="REFUSED"}"#),
        1.0
    );
    assert!(metric("podns_zone_services") >= 1.0);
    assert!(
        metric(r#"podns_dns_request_duration_seconds_count{zone="cluster.local.",type="A"}"#)
            >= 4.0
    );
}

#[test]
fn process_memory_and_zone_size_are_exported() {
    // What CoreDNS's dashboards read (client_golang's process collector), and the zone's size.
    let server = Server::start(&[&example("redis-statefulset")], &[]);
    let metric = |series: &str| {
        server
            .metric(series)
            .unwrap_or_else(|| panic!("{series} missing from /metrics"))
    };
    let rss = metric("process_resident_memory_bytes");
    let kernel = server.rss_kib() as f64 * 1024.0;
    // The same quantity the kernel reports for the server, read a moment apart.
    assert!(
        (rss - kernel).abs() < 4.0 * 1024.0 * 1024.0,
        "{rss} vs {kernel}"
    );
    assert!(metric("podns_process_resident_memory_peak_bytes") >= rss);
    // Standard input and the logs, the UDP and TCP sockets, the admin listener.
    assert!(metric("process_open_fds") >= 5.0);
    // utime + stime of /proc/PID/stat, in the kernel's user-visible ticks (USER_HZ, 100 on
    // Linux), read before and after the scrape.
    let cpu_ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
    };
    let before = cpu_ticks();
    let cpu = metric("process_cpu_seconds_total");
    let after = cpu_ticks();
    assert!(before <= cpu && cpu <= after, "{before} ≤ {cpu} ≤ {after}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = metric("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 600.0,
        "{started} vs {now}"
    );
    // Three replicas' A, SRV and PTR answers, the apex and the Service's names.
    let zone = metric("podns_zone_snapshot_bytes");
    assert!(zone > 1000.0 && zone < rss, "{zone}");
}
