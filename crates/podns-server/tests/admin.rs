//! The admin HTTP server over real sockets on 127.0.0.1: raw HTTP/1.1 requests, so what is
//! tested is what a kubelet probe or a Prometheus scraper receives.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use podns_server::metrics::CONTENT_TYPE;
use podns_server::{AdminConfig, Metrics, Readiness, Transport, serve_admin_with};
use podns_testkit::prometheus::{Sample, parse, series, value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bound on every wait in these tests.
const TIMEOUT: Duration = Duration::from_secs(5);

struct Admin {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

async fn start(config: AdminConfig) -> Admin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::new(&["cluster.local.", "in-addr.arpa."]));
    let readiness = Readiness::new();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve_admin_with(
        config,
        listener,
        metrics.clone(),
        readiness.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    Admin {
        addr,
        metrics,
        readiness,
        stop: Some(stop),
        task,
    }
}

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
async fn request(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: podns\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .expect("response within the timeout")
        .unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let text = String::from_utf8(raw.to_vec()).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts.next().unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn health_answers_ok() {
    let admin = start(AdminConfig::default()).await;
    let r = request(admin.addr, "GET", "/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "OK\n");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn ready_follows_readiness() {
    let admin = start(AdminConfig::default()).await;
    let r = request(admin.addr, "GET", "/ready").await;
    assert_eq!((r.status, r.body.as_str()), (503, "not ready: starting\n"));

    admin
        .readiness
        .set_not_ready("waiting for the initial list of EndpointSlices");
    let r = request(admin.addr, "GET", "/ready").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        "not ready: waiting for the initial list of EndpointSlices\n"
    );

    admin.readiness.set_ready();
    assert!(admin.readiness.is_ready());
    let r = request(admin.addr, "GET", "/ready").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));

    // Degraded is still ready: the last good state keeps serving.
    admin
        .readiness
        .set_degraded("serving last known state; API server unreachable for 12 s");
    let r = request(admin.addr, "GET", "/ready").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        "ready\ndegraded: serving last known state; API server unreachable for 12 s\n"
    );
    admin.readiness.clear_degraded();
    let r = request(admin.addr, "GET", "/ready").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));

    admin.readiness.set_not_ready("shutting down");
    let r = request(admin.addr, "GET", "/ready").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "not ready: shutting down\n")
    );
}

#[tokio::test]
async fn metrics_expose_recorded_queries() {
    let admin = start(AdminConfig::default()).await;
    let q = admin.metrics.query();
    let cluster = q.zone_index(b"\x03web\x07default\x03svc\x07cluster\x05local\x00");
    let outside = q.zone_index(b"\x07example\x03com\x00");
    assert_eq!((cluster, outside), (0, 2));
    for i in 0..5u64 {
        q.record(
            cluster,
            Transport::Udp,
            1,
            3,
            120,
            Duration::from_micros(20 * i + 1),
        );
    }
    q.record(
        cluster,
        Transport::Tcp,
        33,
        0,
        3000,
        Duration::from_millis(2),
    );
    q.record(outside, Transport::Udp, 1, 5, 40, Duration::from_micros(3));
    q.record_dropped(Transport::Udp);
    admin.metrics.set_synced(true);

    let r = request(admin.addr, "GET", "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(CONTENT_TYPE));
    assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    let s = parse(&r.body);

    let req = "podns_dns_requests_total";
    let cl = ("zone", "cluster.local.");
    let udp_a = [cl, ("proto", "udp"), ("type", "A")];
    assert_eq!(value(&s, req, &udp_a), Some(5.0));
    let tcp_srv = [cl, ("proto", "tcp"), ("type", "SRV")];
    assert_eq!(value(&s, req, &tcp_srv), Some(1.0));
    let root_a = [("zone", "."), ("proto", "udp"), ("type", "A")];
    assert_eq!(value(&s, req, &root_a), Some(1.0));
    let resp = "podns_dns_responses_total";
    assert_eq!(value(&s, resp, &[cl, ("rcode", "NXDOMAIN")]), Some(5.0));
    assert_eq!(value(&s, resp, &[cl, ("rcode", "NOERROR")]), Some(1.0));
    assert_eq!(
        value(&s, resp, &[("zone", "."), ("rcode", "REFUSED")]),
        Some(1.0)
    );
    let dropped = "podns_dns_requests_dropped_total";
    assert_eq!(value(&s, dropped, &[("proto", "udp")]), Some(1.0));
    assert_eq!(value(&s, "podns_synced", &[]), Some(1.0));

    // Histograms: le ascending, counts cumulative, +Inf = _count, and the values land where
    // they should (1, 21, 41, 61, 81 µs).
    let d = "podns_dns_request_duration_seconds";
    let a = [cl, ("type", "A")];
    let buckets = series(&s, &format!("{d}_bucket"), &a);
    assert_eq!(buckets.len(), 22);
    let le = |b: &Sample| -> f64 {
        let v = &b.labels.iter().find(|(k, _)| k == "le").unwrap().1;
        if v == "+Inf" {
            f64::INFINITY
        } else {
            v.parse().unwrap()
        }
    };
    assert!(buckets.windows(2).all(|w| le(w[0]) < le(w[1])));
    assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
    let at = |bound: f64| buckets.iter().find(|b| le(b) == bound).unwrap().value;
    assert_eq!(at(5e-6), 1.0);
    assert_eq!(at(2.5e-5), 2.0);
    assert_eq!(at(5e-5), 3.0);
    assert_eq!(at(1e-4), 5.0);
    assert_eq!(at(f64::INFINITY), 5.0);
    assert_eq!(value(&s, &format!("{d}_count"), &a), Some(5.0));
    let sum = value(&s, &format!("{d}_sum"), &a).unwrap();
    assert!((sum - 205e-6).abs() < 1e-9, "sum {sum}");

    let size = "podns_dns_response_size_bytes";
    let tcp = [cl, ("proto", "tcp")];
    let sizes = series(&s, &format!("{size}_bucket"), &tcp);
    assert_eq!(sizes.len(), 15);
    let at = |bound: f64| sizes.iter().find(|b| le(b) == bound).unwrap().value;
    assert_eq!((at(2047.0), at(4095.0)), (0.0, 1.0));
    assert_eq!(value(&s, &format!("{size}_count"), &tcp), Some(1.0));
    assert_eq!(value(&s, &format!("{size}_sum"), &tcp), Some(3000.0));

    // A second scrape sees new recordings.
    q.record(cluster, Transport::Udp, 1, 3, 120, Duration::from_micros(1));
    let s = parse(&request(admin.addr, "GET", "/metrics").await.body);
    assert_eq!(value(&s, req, &udp_a), Some(6.0));
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let admin = start(AdminConfig::default()).await;
    for path in ["/", "/healthz", "/metrics/x", "/ready?x"] {
        let r = request(admin.addr, "GET", path).await;
        // A query string is not part of the path.
        let want = if path == "/ready?x" { 503 } else { 404 };
        assert_eq!(r.status, want, "{path}");
    }
    for (method, path) in [
        ("POST", "/metrics"),
        ("DELETE", "/health"),
        ("PUT", "/ready"),
    ] {
        let r = request(admin.addr, method, path).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    assert_eq!(request(admin.addr, "POST", "/nope").await.status, 404);
}

#[tokio::test]
async fn head_sends_the_head_without_a_body() {
    let admin = start(AdminConfig::default()).await;
    admin.readiness.set_ready();
    for path in ["/health", "/ready", "/metrics"] {
        let r = request(admin.addr, "HEAD", path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, "", "{path}");
        let len: usize = r.header("content-length").unwrap().parse().unwrap();
        assert!(len > 0, "{path}");
    }
    let r = request(admin.addr, "HEAD", "/metrics").await;
    assert_eq!(r.header("content-type"), Some(CONTENT_TYPE));
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let admin = start(AdminConfig::default()).await;
    let mut stream = TcpStream::connect(admin.addr).await.unwrap();
    let two = "GET /health HTTP/1.1\r\nHost: a\r\n\r\nGET /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    stream.write_all(two.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "{text}");
    assert!(text.contains("HTTP/1.1 503 "), "{text}");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_stops_accepting() {
    let mut admin = start(AdminConfig::default()).await;
    // An idle keep-alive connection that has been served once.
    let mut idle = TcpStream::connect(admin.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(TIMEOUT, idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let began = Instant::now();
    admin.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(TIMEOUT, &mut admin.task)
        .await
        .expect("serve_admin returns after shutdown")
        .unwrap()
        .unwrap();
    // Well within the 5 s grace: the idle connection was closed, not waited out.
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    let n = tokio::time::timeout(TIMEOUT, idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle connection is closed");
    let refused = TcpStream::connect(admin.addr).await;
    assert!(refused.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let config = AdminConfig {
        header_read_timeout: Duration::from_millis(200),
        ..AdminConfig::default()
    };
    let admin = start(config).await;
    let mut stream = TcpStream::connect(admin.addr).await.unwrap();
    let began = Instant::now();
    // Half a request head, then nothing (Slowloris).
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .expect("connection closed within the timeout");
    let elapsed = began.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // Whatever hyper said (nothing, or 408), it did not answer the half request.
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains(" 200 "), "{text}");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let config = AdminConfig {
        max_connections: 2,
        ..AdminConfig::default()
    };
    let admin = start(config).await;
    // Two connections holding the slots (accepted: each has been answered once).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(admin.addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(TIMEOUT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // The third is closed without an answer.
    let mut third = TcpStream::connect(admin.addr).await.unwrap();
    let _ = third
        .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, third.read_to_end(&mut raw))
        .await
        .expect("closed within the timeout");
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
    // A freed slot is usable again.
    drop(held.pop());
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut s = TcpStream::connect(admin.addr).await.unwrap();
        let _ = s
            .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await;
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut raw)).await;
        if raw.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
