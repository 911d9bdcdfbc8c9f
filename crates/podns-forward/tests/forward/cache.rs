//! The cache: hits without upstream queries, TTL ageing, caps and expiry, RFC 2308 negative
//! caching, what is not cached, and the capacity bound.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use podns_forward::{ForwardConfig, Forwarder};

use crate::support::*;

fn ttls(m: &Message) -> Vec<u32> {
    m.answers
        .iter()
        .chain(&m.authorities)
        .map(|r| r.ttl)
        .collect()
}

#[tokio::test]
async fn hit_patches_id_and_case_and_ages_ttl() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 2 }).await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        let m = parse(
            &fwd.forward(&query("www.example.", RecordType::A, None), 512)
                .await,
        );
        assert_eq!(ttls(&m), [300, 300]);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let q = with_id(query("WWW.Example.", RecordType::A, None), 0x1234);
        let raw = fwd.forward(&q, 512).await;
        assert_eq!(question_bytes(&raw), question_bytes(&q));
        let m = parse(&raw);
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(addresses(&m), ["192.0.2.1", "192.0.2.2"]);
        let aged = ttls(&m);
        assert!(aged.iter().all(|&t| t == 299 || t == 298), "{aged:?}");
        assert_eq!(up.udp_queries(), 1, "answered from the cache");
        let s = fwd.stats();
        assert_eq!(
            (s.requests, s.cache_hits, s.cache_misses, s.cache_entries),
            (2, 1, 1, 1)
        );
        assert!(s.cache_bytes > 0);
    })
    .await;
}

#[tokio::test]
async fn max_ttl_caps_and_expiry_refetches() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 1 }).await;
        let cfg = ForwardConfig {
            max_ttl: Duration::from_secs(1),
            ..config(&[up.addr])
        };
        let fwd = Forwarder::new(cfg).unwrap();
        let q = query("short.example.", RecordType::A, None);
        assert_eq!(ttls(&parse(&fwd.forward(&q, 512).await)), [1], "capped");
        fwd.forward(&q, 512).await;
        assert_eq!(up.udp_queries(), 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let m = parse(&fwd.forward(&q, 512).await);
        assert_eq!(ttls(&m), [1]);
        assert_eq!(up.udp_queries(), 2, "expired entry refetched");
    })
    .await;
}

#[tokio::test]
async fn nxdomain_is_cached_for_the_soa_minimum() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::NxDomain {
            soa_ttl: 3600,
            minimum: 60,
        })
        .await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        let q = query("nope.example.", RecordType::A, None);
        for _ in 0..2 {
            let m = parse(&fwd.forward(&q, 512).await);
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
            assert_eq!(ttls(&m), [60], "SOA TTL sent as min(TTL, MINIMUM)");
        }
        assert_eq!(up.udp_queries(), 1);
    })
    .await;
}

#[tokio::test]
async fn nodata_uses_the_soa_ttl_when_lower_and_the_negative_cap() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::NoData {
            soa_ttl: 5,
            minimum: 600,
        })
        .await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        let m = parse(
            &fwd.forward(&query("v4only.example.", RecordType::AAAA, None), 512)
                .await,
        );
        assert_eq!(
            (m.metadata.response_code, ttls(&m)),
            (ResponseCode::NoError, vec![5])
        );

        let cfg = ForwardConfig {
            max_negative_ttl: Duration::from_secs(2),
            ..config(&[up.addr])
        };
        let fwd = Forwarder::new(cfg).unwrap();
        let q = query("v4only.example.", RecordType::AAAA, None);
        assert_eq!(ttls(&parse(&fwd.forward(&q, 512).await)), [2]);
        fwd.forward(&q, 512).await;
        assert_eq!(up.udp_queries(), 2, "one per forwarder");
    })
    .await;
}

#[tokio::test]
async fn negative_without_soa_is_not_cached() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::NxDomainNoSoa).await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        let q = query("nope.example.", RecordType::A, None);
        for _ in 0..2 {
            let m = parse(&fwd.forward(&q, 512).await);
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        }
        assert_eq!(up.udp_queries(), 2);
        assert_eq!(fwd.stats().cache_entries, 0);
    })
    .await;
}

#[tokio::test]
async fn do_bit_and_qtype_are_part_of_the_key() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 1 }).await;
        let fwd = Forwarder::new(config(&[up.addr])).unwrap();
        fwd.forward(&query("k.example.", RecordType::A, None), 512)
            .await;
        fwd.forward(
            &query("k.example.", RecordType::A, Some((1232, false))),
            512,
        )
        .await;
        assert_eq!(up.udp_queries(), 1, "EDNS without DO shares the entry");
        fwd.forward(&query("k.example.", RecordType::A, Some((1232, true))), 512)
            .await;
        fwd.forward(&query("k.example.", RecordType::AAAA, None), 512)
            .await;
        assert_eq!(up.udp_queries(), 3);
    })
    .await;
}

#[tokio::test]
async fn capacity_bound_evicts_least_recently_used() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 1 }).await;
        let cfg = ForwardConfig {
            cache_capacity: 3,
            ..config(&[up.addr])
        };
        let fwd = Forwarder::new(cfg).unwrap();
        let name = |i: usize| format!("n{i}.example.");
        for i in 0..10 {
            fwd.forward(&query(&name(i), RecordType::A, None), 512)
                .await;
        }
        assert_eq!(fwd.stats().cache_entries, 3);
        assert_eq!(up.udp_queries(), 10);
        fwd.forward(&query(&name(9), RecordType::A, None), 512)
            .await;
        assert_eq!(up.udp_queries(), 10, "recent name kept");
        fwd.forward(&query(&name(0), RecordType::A, None), 512)
            .await;
        assert_eq!(up.udp_queries(), 11, "oldest name evicted");
        assert_eq!(fwd.stats().cache_entries, 3);
    })
    .await;
}

#[tokio::test]
async fn capacity_zero_disables_the_cache() {
    bounded(async {
        let up = FakeUpstream::start(Behaviour::Answer { ttl: 300, count: 1 }).await;
        let cfg = ForwardConfig {
            cache_capacity: 0,
            ..config(&[up.addr])
        };
        let fwd = Forwarder::new(cfg).unwrap();
        let q = query("a.example.", RecordType::A, None);
        fwd.forward(&q, 512).await;
        fwd.forward(&q, 512).await;
        assert_eq!(up.udp_queries(), 2);
        assert_eq!(fwd.stats().cache_hits, 0);
    })
    .await;
}
