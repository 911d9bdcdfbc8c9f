//! Forwarding: IDs and question case, EDNS, TC → TCP, failover, health, spoofing, garbage,
//! fitting to the client's size, and the in-flight bound.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use podns_forward::Forwarder;

use crate::support::*;

#[tokio::test]
async fn answer_has_client_id_and_question_case() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 1 }).await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        let q = query("WwW.ExAmPlE.CoM.", RecordType::A, None);
        let raw = fwd.forward(&q, 512).await;
        assert_eq!(question_bytes(&raw), question_bytes(&q), "0x20 case kept");
        let m = parse(&raw);
        assert_eq!(m.metadata.id, 0xBEEF);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.recursion_desired);
        assert_eq!(addresses(&m), ["192.0.2.1"]);
        assert!(
            m.edns.is_none(),
            "no OPT to a client that sent none (RFC 6891 §7)"
        );

        // Upstream side: our own OPT advertising 1232, DO clear, and IDs not the client's.
        let q2 = query("other.example.", RecordType::A, None);
        fwd.forward(&q2, 512).await;
        let sent = up.queries();
        assert_eq!(sent.len(), 2);
        let edns = sent[0].edns.as_ref().expect("OPT added");
        assert_eq!(edns.max_payload(), 1232);
        assert!(!edns.flags().dnssec_ok);
        assert!(
            sent.iter().any(|s| s.metadata.id != 0xBEEF),
            "fresh random IDs upstream"
        );
    })
    .await;
}

#[tokio::test]
async fn client_edns_and_do_bit_are_kept() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 1 }).await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        let raw = fwd
            .forward(&query("example.", RecordType::A, Some((4096, true))), 1232)
            .await;
        let m = parse(&raw);
        let edns = m.edns.as_ref().expect("OPT for an EDNS client");
        assert!(edns.flags().dnssec_ok);
        let sent = &up.queries()[0];
        assert!(
            sent.edns.as_ref().unwrap().flags().dnssec_ok,
            "DO forwarded"
        );
    })
    .await;
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::TruncateUdp {
            ttl: 300,
            count: 100,
        })
        .await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        let m = parse(
            &fwd.forward(&query("big.example.", RecordType::A, None), 65535)
                .await,
        );
        assert_eq!(m.answers.len(), 100);
        assert!(!m.metadata.truncation);
        assert_eq!((up.udp_queries(), up.tcp_queries()), (1, 1));
    })
    .await;
}

#[tokio::test]
async fn response_larger_than_client_limit_gets_tc() {
    bounded(async {
        // 60 A records: about 1 KB, fits the upstream's 1232 but not a 512-octet client.
        let up = FakeUpstream::start(Behaviour::Answer {
            ttl: 300,
            count: 60,
        })
        .await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        let q = query("big.example.", RecordType::A, None);
        let raw = fwd.forward(&q, 512).await;
        assert!(raw.len() <= 512);
        let m = parse(&raw);
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty(), "no partial RRset");
        assert_eq!(m.metadata.id, 0xBEEF);
        // The client's TCP retry is answered in full, from the cache.
        let m = parse(&fwd.forward(&with_id(q, 7), 65535).await);
        assert_eq!((m.answers.len(), m.metadata.truncation), (60, false));
        assert_eq!(up.udp_queries() + up.tcp_queries(), 1);
    })
    .await;
}

#[tokio::test]
async fn dead_first_upstream_fails_over_then_is_tried_last() {
    bounded(async {
        let dead = FakeUpstream::start(Behaviour::Silent).await;
        let live = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 1 }).await;
        let cfg = podns_forward::ForwardConfig {
            timeout: Duration::from_millis(300),
            max_fails: 1,
            ..config(&[dead.addr, live.addr])
        };
        let fwd = Forwarder::new(cfg).unwrap();
        let t = Instant::now();
        let m = parse(
            &fwd.forward(&query("a.example.", RecordType::A, None), 512)
                .await,
        );
        let took = t.elapsed();
        assert_eq!(addresses(&m), ["192.0.2.1"]);
        assert!(
            took >= Duration::from_millis(300),
            "waited for the timeout: {took:?}"
        );
        assert!(
            took < Duration::from_millis(1300),
            "about one timeout: {took:?}"
        );
        let s = fwd.stats();
        assert_eq!(
            (s.upstreams[0].failures, s.upstreams[0].healthy),
            (1, false)
        );
        assert!(s.upstreams[1].healthy);

        // Marked down: the live one is asked first now.
        let t = Instant::now();
        let m = parse(
            &fwd.forward(&query("b.example.", RecordType::A, None), 512)
                .await,
        );
        assert_eq!(addresses(&m), ["192.0.2.1"]);
        assert!(
            t.elapsed() < Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(dead.udp_queries(), 1);
    })
    .await;
}

#[tokio::test]
async fn marked_down_upstreams_are_still_tried_when_all_are_down() {
    bounded(async {
        let dead = FakeUpstream::start(Behaviour::Silent).await;
        let cfg = podns_forward::ForwardConfig {
            timeout: Duration::from_millis(100),
            max_attempts: 1,
            max_fails: 1,
            ..config(&[dead.addr])
        };
        let fwd = Forwarder::new(cfg).unwrap();
        for name in ["a.example.", "b.example."] {
            let m = parse(&fwd.forward(&query(name, RecordType::A, None), 512).await);
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        }
        assert_eq!(dead.udp_queries(), 2, "never all skipped");
        assert!(!fwd.stats().upstreams[0].healthy);
    })
    .await;
}

#[tokio::test]
async fn all_upstreams_down_is_servfail_quickly() {
    bounded(async {
        let (a, b) = (closed_addr().await, closed_addr().await);
        let cfg = podns_forward::ForwardConfig {
            timeout: Duration::from_secs(2),
            ..config(&[a, b])
        };
        let fwd = Forwarder::new(cfg).unwrap();
        let q = query("WwW.example.", RecordType::A, Some((1232, false)));
        let t = Instant::now();
        let raw = fwd.forward(&q, 1232).await;
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "refused, not timed out: {:?}",
            t.elapsed()
        );
        assert_eq!(question_bytes(&raw), question_bytes(&q));
        let m = parse(&raw);
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(m.metadata.id, 0xBEEF);
        assert!(m.edns.is_some());
        let s = fwd.stats();
        assert_eq!(s.servfails, 1);
        assert_eq!(
            s.upstreams.iter().map(|u| u.failures).collect::<Vec<_>>(),
            [1, 1]
        );
    })
    .await;
}

#[tokio::test]
async fn spoofed_responses_are_ignored() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::SpoofFirst { ttl: 300 }).await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        let m = parse(
            &fwd.forward(&query("bank.example.", RecordType::A, None), 512)
                .await,
        );
        assert_eq!(
            addresses(&m),
            ["192.0.2.1"],
            "the real answer, not the spoof"
        );
        assert_eq!(fwd.stats().upstreams[0].failures, 0);
    })
    .await;
}

#[tokio::test]
async fn malformed_upstream_fails_over_at_once() {
    bounded(async {
        let broken = FakeUpstream::start(Behaviour::BrokenBody).await;
        let live = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 1 }).await;
        let fwd = Forwarder::new(config(&[broken.addr, live.addr])).unwrap();
        let t = Instant::now();
        let m = parse(
            &fwd.forward(&query("a.example.", RecordType::A, None), 512)
                .await,
        );
        assert_eq!(addresses(&m), ["192.0.2.1"]);
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "no timeout wait: {:?}",
            t.elapsed()
        );
        assert_eq!(fwd.stats().upstreams[0].failures, 1);
    })
    .await;
}

#[tokio::test]
async fn garbage_upstream_is_servfail_without_panic() {
    bounded(async {
        let noise = FakeUpstream::start(Behaviour::Garbage).await;
        let cfg = podns_forward::ForwardConfig {
            timeout: Duration::from_millis(200),
            ..config(&[noise.addr])
        };
        let fwd = Forwarder::new(cfg).unwrap();
        let m = parse(
            &fwd.forward(&query("a.example.", RecordType::A, None), 512)
                .await,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(
            noise.udp_queries(),
            2,
            "both attempts went out and were ignored"
        );
    })
    .await;
}

#[tokio::test]
async fn servfail_upstream_fails_over() {
    bounded(async {
        let bad = FakeUpstream::start(Behaviour::ServFail).await;
        let live = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 1 }).await;
        let fwd = Forwarder::new(config(&[bad.addr, live.addr])).unwrap();
        let m = parse(
            &fwd.forward(&query("a.example.", RecordType::A, None), 512)
                .await,
        );
        assert_eq!(addresses(&m), ["192.0.2.1"]);
        assert_eq!(bad.udp_queries(), 1);
        // Only SERVFAIL upstreams: SERVFAIL, and not cached.
        let fwd = Forwarder::new(config(&[bad.addr])).unwrap();
        for _ in 0..2 {
            let m = parse(
                &fwd.forward(&query("b.example.", RecordType::A, None), 512)
                    .await,
            );
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        }
        assert_eq!(fwd.stats().cache_entries, 0);
    })
    .await;
}

#[tokio::test]
async fn max_in_flight_exceeded_is_servfail_at_once() {
    bounded(async {
        let silent = FakeUpstream::start(Behaviour::Silent).await;
        let cfg = podns_forward::ForwardConfig {
            timeout: Duration::from_secs(5),
            max_in_flight: 1,
            ..config(&[silent.addr])
        };
        let fwd = Forwarder::new(cfg).unwrap();
        let first = tokio::spawn({
            let fwd = fwd.clone();
            async move {
                fwd.forward(&query("a.example.", RecordType::A, None), 512)
                    .await
            }
        });
        while fwd.stats().in_flight == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = Instant::now();
        let m = parse(
            &fwd.forward(&query("b.example.", RecordType::A, None), 512)
                .await,
        );
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(fwd.stats().overloaded, 1);
        // Dropping the waiting query frees its slot.
        first.abort();
        let _ = first.await;
        assert_eq!(fwd.stats().in_flight, 0);
    })
    .await;
}

#[test]
fn config_is_checked() {
    assert!(
        Forwarder::new(podns_forward::ForwardConfig::default()).is_err(),
        "no upstreams"
    );
    let ok = config(&["127.0.0.1:53".parse().unwrap()]);
    assert!(Forwarder::new(ok.clone()).is_ok());
    for bad in [
        podns_forward::ForwardConfig {
            max_attempts: 0,
            ..ok.clone()
        },
        podns_forward::ForwardConfig {
            timeout: Duration::ZERO,
            ..ok.clone()
        },
        podns_forward::ForwardConfig {
            max_in_flight: 0,
            ..ok.clone()
        },
        podns_forward::ForwardConfig {
            udp_payload: 100,
            ..ok
        },
    ] {
        assert!(Forwarder::new(bad).is_err());
    }
}
