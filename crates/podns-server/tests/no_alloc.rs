//! The query path allocates nothing: a counting global allocator watches `answer` serve every
//! kind of query (positive, rotated, SRV with additional records, negative, refused, malformed,
//! truncated, `pods insecure` answers computed per query) over UDP and TCP once the output
//! buffer has its capacity, and watches the per-query metrics (`QueryMetrics::zone_index`,
//! `record`, `record_dropped`) count each one, and response-rate limiting (`RateLimiter::check`,
//! `rrl::slip`, `record_rate_limited`) judge each one. A second test runs the real server (its
//! batched UDP loop on Linux: `recvmmsg`, answer, `sendmmsg`) with metrics and rate limiting
//! on, under bursts of queries from several clients, and counts nothing once it is warm.
//!
//! This file is the workspace's one audited exception to `unsafe_code = "deny"`: a
//! `GlobalAlloc` impl is `unsafe` by definition.
#![allow(unsafe_code)]

#[allow(unreachable_pub)]
#[path = "server/support.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use support::{cluster, query, with_edns, zone_config};

/// Counts allocations made while `COUNTING` is set, on any thread.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY:
// - every method forwards to `System` with the caller's own arguments, so `System`'s
//   guarantees (alignment, size, validity of returned pointers) are passed through unchanged;
// - the only extra work is a relaxed atomic load and increment, which neither allocates nor
//   touches the memory being managed.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout (see above).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's pointer and layout (see above).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The counter is global: the tests of this file take turns.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn answering_allocates_nothing() {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // `pods insecure`: its answers are the one kind written per query, and it adds the pod-label
    // check to every NXDOMAIN.
    let zone = podns_zone::ZoneConfig {
        pods: podns_zone::PodMode::Insecure,
        ..zone_config()
    };
    let snapshot = podns_zone::build(&zone, &cluster());
    let config = podns_server::QueryConfig::default();
    let mut requests: Vec<Vec<u8>> = [
        ("big.default.svc.cluster.local.", RecordType::A),
        ("web.default.svc.cluster.local.", RecordType::A),
        ("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV),
        ("web.default.svc.cluster.local.", RecordType::SRV),
        ("WEB.Default.svc.cluster.local.", RecordType::AAAA),
        (
            "nope.default.svc.cluster.local.default.svc.cluster.local.",
            RecordType::A,
        ),
        ("default.svc.cluster.local.", RecordType::A),
        ("dns-version.cluster.local.", RecordType::TXT),
        ("cluster.local.", RecordType::SOA),
        ("1.0.96.10.in-addr.arpa.", RecordType::PTR),
        ("example.com.", RecordType::A),
        ("web.default.svc.cluster.local.", RecordType::ANY),
        ("10-240-0-1.default.pod.cluster.local.", RecordType::A),
        (
            "fd00-0-0-0-0-0-0-5.default.pod.cluster.local.",
            RecordType::AAAA,
        ),
        ("10-240-0-1.default.pod.cluster.local.", RecordType::AAAA),
        ("blah.default.pod.cluster.local.", RecordType::A),
    ]
    .iter()
    .flat_map(|(name, rtype)| {
        [
            query(name, *rtype).to_vec().unwrap(),
            with_edns(query(name, *rtype), 4096).to_vec().unwrap(),
        ]
    })
    .collect();
    // Malformed: a truncated header and a question cut short.
    requests.push(vec![0x12, 0x34, 0x01]);
    let mut cut = query("web.default.svc.cluster.local.", RecordType::A)
        .to_vec()
        .unwrap();
    cut.truncate(20);
    requests.push(cut);

    let metrics = podns_server::Metrics::new(&["cluster.local.", "in-addr.arpa.", "ip6.arpa."]);
    let mut out = Vec::with_capacity(65535);
    // Warm-up outside the counted region (lazy statics, first-touch of anything, the metrics'
    // thread-local shard slot).
    for r in &requests {
        serve_one(
            r,
            podns_server::Transport::Udp,
            &config,
            &snapshot,
            0,
            &mut out,
            metrics.query(),
        );
    }

    // A low rate, so the counted loop sends, slips and drops; its table is allocated here.
    let mut limiter = podns_server::rrl::RateLimiter::new(podns_server::RateLimitConfig {
        responses_per_second: 20,
        ..Default::default()
    })
    .unwrap();
    let mut verdicts = [0usize; 3];

    COUNTING.store(true, Ordering::SeqCst);
    let mut answered = 0;
    for rotation in 0..50u32 {
        for transport in [podns_server::Transport::Udp, podns_server::Transport::Tcp] {
            for r in &requests {
                let outcome = serve_one(
                    r,
                    transport,
                    &config,
                    &snapshot,
                    rotation,
                    &mut out,
                    metrics.query(),
                );
                answered += usize::from(matches!(
                    outcome,
                    podns_server::Outcome::Respond { .. } | podns_server::Outcome::Forward { .. }
                ));
                // What the UDP loop does before sending: ask the limiter (clients from 16
                // prefixes, IPv4 and IPv6), slip or count a suppressed response.
                let client = if rotation % 2 == 0 {
                    std::net::IpAddr::from([10, 0, (rotation % 8) as u8, 1])
                } else {
                    std::net::IpAddr::from([0xfd00, 0, 0, (rotation % 8) as u16, 0, 0, 0, 1])
                };
                let verdict = limiter.check(client, Instant::now());
                verdicts[verdict as usize] += 1;
                if verdict != podns_server::rrl::Verdict::Send {
                    let question = match outcome {
                        podns_server::Outcome::Respond { asked, .. } => asked,
                        podns_server::Outcome::Forward { asked, .. } => Some(asked),
                        podns_server::Outcome::Drop => None,
                    };
                    if verdict == podns_server::rrl::Verdict::Slip {
                        podns_server::rrl::slip(&mut out, question.map(|a| a.qname_len + 4));
                    }
                    metrics
                        .query()
                        .record_rate_limited(verdict == podns_server::rrl::Verdict::Slip);
                }
            }
        }
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert!(
        verdicts.iter().all(|&n| n > 0),
        "send, slip, drop: {verdicts:?}"
    );
    // The metrics did count (scraping allocates, so only after the counted region).
    let text = metrics.encode();
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("podns_dns_requests_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(total as usize, answered + requests.len() - 1, "{text}");
    assert!(
        text.contains(r#"podns_dns_requests_total{zone="cluster.local.",proto="tcp",type="SRV"}"#),
        "{text}"
    );
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(
        answered >= 50 * 2 * (requests.len() - 1),
        "answered {answered}"
    );
    assert_eq!(
        allocations, 0,
        "the query path allocated {allocations} times"
    );
}

/// What a UDP/TCP loop does per message: answer it and count it.
fn serve_one(
    request: &[u8],
    transport: podns_server::Transport,
    config: &podns_server::QueryConfig,
    snapshot: &podns_zone::ZoneSnapshot,
    rotation: u32,
    out: &mut Vec<u8>,
    metrics: &podns_server::QueryMetrics,
) -> podns_server::Outcome {
    let began = Instant::now();
    let outcome = podns_server::answer(request, transport, config, snapshot, rotation, out);
    let (rcode, asked) = match outcome {
        podns_server::Outcome::Respond { rcode, asked, .. } => (rcode, asked),
        // No forwarder here: `out` holds podns's own REFUSED / NXDOMAIN.
        podns_server::Outcome::Forward { rcode, asked, .. } => (rcode, Some(asked)),
        podns_server::Outcome::Drop => {
            metrics.record_dropped(transport);
            return outcome;
        }
    };
    let (zone, qtype) = asked.map_or((usize::MAX, 0), |a| {
        (metrics.zone_index(a.qname(request)), a.qtype)
    });
    metrics.record(zone, transport, qtype, rcode, out.len(), began.elapsed());
    outcome
}

#[test]
fn the_udp_loop_allocates_nothing_under_bursts() {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (_writer, reader) = podns_zone::pair(podns_zone::build(&zone_config(), &cluster()));
    let config = podns_server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        // One worker, so the bursts queue on one socket and the batches fill.
        udp_workers: 1,
        // On, but high enough that every query is answered.
        rate_limit: podns_server::RateLimitConfig {
            responses_per_second: 1_000_000,
            ..Default::default()
        },
        ..Default::default()
    };
    let bound = podns_server::bind(&config).unwrap();
    let addr = bound.local_addr();
    let metrics = Arc::new(podns_server::Metrics::new(&["cluster.local."]));
    let mut services = podns_server::Services::new(reader);
    services.metrics = Some(Arc::clone(&metrics));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The server on a thread of its own, so it runs while this thread sends and reads.
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(podns_server::serve_with(bound, config, services, async {
                let _ = stopped.await;
            }))
            .unwrap();
    });

    let requests: Vec<Vec<u8>> = [
        ("web.default.svc.cluster.local.", RecordType::A),
        ("big.default.svc.cluster.local.", RecordType::A),
        ("web.default.svc.cluster.local.", RecordType::SRV),
        (
            "nope.default.svc.cluster.local.default.svc.cluster.local.",
            RecordType::A,
        ),
        ("web.default.svc.cluster.local.", RecordType::AAAA),
        ("dns-version.cluster.local.", RecordType::TXT),
    ]
    .iter()
    .flat_map(|(name, rtype)| {
        [
            query(name, *rtype).to_vec().unwrap(),
            with_edns(query(name, *rtype), 1232).to_vec().unwrap(),
        ]
    })
    .collect();
    let clients: Vec<std::net::UdpSocket> = (0..4)
        .map(|_| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            socket
        })
        .collect();
    let mut buf = vec![0u8; 65535];
    const IN_FLIGHT: usize = 48;
    // Every client sends IN_FLIGHT queries before any reads: up to 4 × 48 queue at once.
    let mut burst = || {
        for i in 0..IN_FLIGHT {
            for (c, client) in clients.iter().enumerate() {
                client
                    .send_to(&requests[(i + c) % requests.len()], addr)
                    .unwrap();
            }
        }
        let mut answered = 0;
        for client in &clients {
            for _ in 0..IN_FLIGHT {
                let (len, _) = client.recv_from(&mut buf).expect("an answer");
                assert!(len >= 12 && buf[2] & 0x80 != 0, "a response");
                answered += 1;
            }
        }
        answered
    };
    // Warm-up outside the counted region: the worker's batch buffers, nix's headers (one set
    // per thread and family), the metrics' shard slot, tokio's first wake-ups.
    for _ in 0..5 {
        burst();
    }
    COUNTING.store(true, Ordering::SeqCst);
    let mut answered = 0;
    for _ in 0..20 {
        answered += burst();
    }
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.swap(0, Ordering::SeqCst);
    let _ = stop.send(());
    server.join().unwrap();
    assert_eq!(answered, 20 * 4 * IN_FLIGHT);
    assert_eq!(
        allocations, 0,
        "the UDP loop allocated {allocations} times for {answered} queries"
    );
}
