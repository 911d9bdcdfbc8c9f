//! Integration tests: the real server on 127.0.0.1:0, real UDP/TCP sockets, requests built and
//! responses parsed with hickory-proto.

mod options;
mod support;
mod udp_batch;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use support::*;

const SOA_LINE: &str = "ns.dns.cluster.local. hostmaster.cluster.local.";

/// Asserts a negative answer: rcode, AA, no answers, the zone's SOA (owner `zone`) in authority.
fn assert_negative(m: &Message, rcode: ResponseCode, zone: &str) {
    assert_eq!(m.metadata.response_code, rcode, "{m}");
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty(), "{m}");
    assert_eq!(m.authorities.len(), 1, "{m}");
    let soa = &m.authorities[0];
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.name.to_string(), zone);
    assert_eq!(soa.ttl, 30);
    // MNAME and RNAME point into the question, so they come back in its case (as from NSD).
    assert!(
        soa.data
            .to_string()
            .to_ascii_lowercase()
            .starts_with(SOA_LINE),
        "{}",
        soa.data
    );
}

fn assert_positive(m: &Message) {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m}");
    assert!(m.metadata.authoritative);
    assert!(!m.metadata.truncation);
    assert!(!m.metadata.recursion_available);
    assert!(m.authorities.is_empty());
    assert!(
        m.answers
            .iter()
            .all(|r| r.ttl == 30 && r.dns_class == DNSClass::IN)
    );
}

#[tokio::test]
async fn headless_a_has_ready_endpoints_only() {
    let s = Server::start().await;
    let m = udp(
        s.addr,
        &query("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_positive(&m);
    assert_eq!(m.metadata.id, 0xBEEF);
    assert!(m.metadata.recursion_desired, "RD is copied");
    assert_eq!(
        sorted(answers(&m)),
        ["10.244.1.10", "10.244.1.11", "10.244.1.12"]
    );
    assert!(
        m.answers
            .iter()
            .all(|r| r.name.to_string() == "web.default.svc.cluster.local.")
    );
    // No EDNS in the request: none in the response.
    assert!(m.edns.is_none());
    s.stop().await;
}

#[tokio::test]
async fn per_pod_names_and_ptrs() {
    let s = Server::start().await;
    let m = udp(
        s.addr,
        &query("web-1.web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["10.244.1.11"]);
    let m = udp(s.addr, &query("11.1.244.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["web-1.web.default.svc.cluster.local."]);
    // The not-ready endpoint has no name and no PTR.
    let m = udp(
        s.addr,
        &query("web-3.web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_negative(&m, ResponseCode::NXDomain, "cluster.local.");
    let m = udp(s.addr, &query("13.1.244.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_negative(&m, ResponseCode::NXDomain, "in-addr.arpa.");
    // A parent of a PTR name is an empty non-terminal: NODATA, not NXDOMAIN.
    let m = udp(s.addr, &query("1.244.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_negative(&m, ResponseCode::NoError, "in-addr.arpa.");
    s.stop().await;
}

#[tokio::test]
async fn headless_srv_uses_endpoint_ports_with_additional_addresses() {
    let s = Server::start().await;
    let m = udp(
        s.addr,
        &with_edns(
            query("_web._tcp.web.default.svc.cluster.local.", RecordType::SRV),
            1232,
        ),
    )
    .await;
    assert_positive(&m);
    assert_eq!(
        sorted(answers(&m)),
        [
            "0 33 8080 web-0.web.default.svc.cluster.local.",
            "0 33 8080 web-1.web.default.svc.cluster.local.",
            "0 33 8080 web-2.web.default.svc.cluster.local.",
        ]
    );
    let extra: HashSet<String> = m
        .additionals
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(extra.len(), 3, "{m}");
    assert!(extra.contains("web-0.web.default.svc.cluster.local. 10.244.1.10"));
    // Bare service name: every named port × ready endpoint, weight ⌊100/6⌋.
    let m = udp(
        s.addr,
        &with_edns(
            query("web.default.svc.cluster.local.", RecordType::SRV),
            1232,
        ),
    )
    .await;
    assert_positive(&m);
    let got = answers(&m);
    assert_eq!(got.len(), 6);
    assert!(got.iter().all(|a| a.starts_with("0 16 ")), "{got:?}");
    assert!(got.contains(&"0 16 9091 web-2.web.default.svc.cluster.local.".to_owned()));
    // `_tcp.<svc>` is an empty non-terminal; an unknown port is NXDOMAIN.
    let m = udp(
        s.addr,
        &query("_tcp.web.default.svc.cluster.local.", RecordType::SRV),
    )
    .await;
    assert_negative(&m, ResponseCode::NoError, "cluster.local.");
    let m = udp(
        s.addr,
        &query("_nope._tcp.web.default.svc.cluster.local.", RecordType::SRV),
    )
    .await;
    assert_negative(&m, ResponseCode::NXDomain, "cluster.local.");
    s.stop().await;
}

#[tokio::test]
async fn headless_without_hostnames_gets_dashed_targets_that_resolve() {
    let s = Server::start().await;
    let m = udp(
        s.addr,
        &query(
            "_http._tcp.deploy.default.svc.cluster.local.",
            RecordType::SRV,
        ),
    )
    .await;
    assert_positive(&m);
    assert_eq!(
        sorted(answers(&m)),
        [
            "0 50 8080 10-244-2-1.deploy.default.svc.cluster.local.",
            "0 50 8080 10-244-2-2.deploy.default.svc.cluster.local."
        ]
    );
    let m = udp(
        s.addr,
        &query(
            "10-244-2-1.deploy.default.svc.cluster.local.",
            RecordType::A,
        ),
    )
    .await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["10.244.2.1"]);
    // No PTR for endpoints without a hostname.
    let m = udp(s.addr, &query("1.2.244.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_negative(&m, ResponseCode::NXDomain, "in-addr.arpa.");
    s.stop().await;
}

#[tokio::test]
async fn cluster_ip_records() {
    let s = Server::start().await;
    let m = udp(
        s.addr,
        &query("api.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["10.96.0.10"]);
    let m = udp(
        s.addr,
        &query(
            "_https._tcp.api.default.svc.cluster.local.",
            RecordType::SRV,
        ),
    )
    .await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["0 100 443 api.default.svc.cluster.local."]);
    assert_eq!(m.additionals.len(), 1);
    assert_eq!(m.additionals[0].data.to_string(), "10.96.0.10");
    let m = udp(s.addr, &query("10.0.96.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_eq!(answers(&m), ["api.default.svc.cluster.local."]);
    // ClusterIP: no per-endpoint names, AAAA is NODATA.
    let m = udp(
        s.addr,
        &query("10-244-9-9.api.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_negative(&m, ResponseCode::NXDomain, "cluster.local.");
    let m = udp(
        s.addr,
        &query("api.default.svc.cluster.local.", RecordType::AAAA),
    )
    .await;
    assert_negative(&m, ResponseCode::NoError, "cluster.local.");
    s.stop().await;
}

#[tokio::test]
async fn dual_stack_aaaa_and_ip6_ptr() {
    let s = Server::start().await;
    let m = udp(
        s.addr,
        &query("dual.default.svc.cluster.local.", RecordType::AAAA),
    )
    .await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["fd00::20"]);
    let m = udp(
        s.addr,
        &query("dual.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(answers(&m), ["10.96.0.20"]);
    let ptr = "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    let m = udp(s.addr, &query(ptr, RecordType::PTR)).await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["dual.default.svc.cluster.local."]);
    let m = udp(
        s.addr,
        &query("dual-hl.default.svc.cluster.local.", RecordType::AAAA),
    )
    .await;
    assert_eq!(sorted(answers(&m)), ["fd00:1::5", "fd00:1::6"]);
    let m = udp(
        s.addr,
        &query(
            "fd00-1--6.dual-hl.default.svc.cluster.local.",
            RecordType::AAAA,
        ),
    )
    .await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["fd00:1::6"]);
    let m = udp(
        s.addr,
        &query(
            "dual-hl-0.dual-hl.default.svc.cluster.local.",
            RecordType::A,
        ),
    )
    .await;
    assert_negative(&m, ResponseCode::NoError, "cluster.local.");
    let m = udp(s.addr, &query("ip6.arpa.", RecordType::SOA)).await;
    assert_positive(&m);
    s.stop().await;
}

#[tokio::test]
async fn external_name_answers_cname_for_every_type() {
    let s = Server::start().await;
    for rtype in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::SRV,
        RecordType::TXT,
        RecordType::CNAME,
        RecordType::ANY,
    ] {
        let m = udp(s.addr, &query("ext.default.svc.cluster.local.", rtype)).await;
        assert_positive(&m);
        assert_eq!(m.answers.len(), 1, "{rtype}: {m}");
        assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
        assert_eq!(answers(&m), ["example.com."]);
    }
    let m = udp(
        s.addr,
        &query("_http._tcp.ext.default.svc.cluster.local.", RecordType::SRV),
    )
    .await;
    assert_negative(&m, ResponseCode::NXDomain, "cluster.local.");
    s.stop().await;
}

#[tokio::test]
async fn headless_without_ready_endpoints_is_nxdomain() {
    let s = Server::start().await;
    for (name, rtype) in [
        ("down.default.svc.cluster.local.", RecordType::A),
        ("down.default.svc.cluster.local.", RecordType::SRV),
        (
            "_http._tcp.down.default.svc.cluster.local.",
            RecordType::SRV,
        ),
        ("down-0.down.default.svc.cluster.local.", RecordType::A),
    ] {
        let m = udp(s.addr, &query(name, rtype)).await;
        assert_negative(&m, ResponseCode::NXDomain, "cluster.local.");
    }
    s.stop().await;
}

#[tokio::test]
async fn negative_answers_and_empty_non_terminals() {
    let s = Server::start().await;
    // The typical search-path miss.
    let m = udp(
        s.addr,
        &query(
            "web.default.svc.cluster.local.default.svc.cluster.local.",
            RecordType::A,
        ),
    )
    .await;
    assert_negative(&m, ResponseCode::NXDomain, "cluster.local.");
    let m = udp(
        s.addr,
        &query("web.default.svc.cluster.local.", RecordType::AAAA),
    )
    .await;
    assert_negative(&m, ResponseCode::NoError, "cluster.local.");
    for ent in [
        "svc.cluster.local.",
        "default.svc.cluster.local.",
        "empty.svc.cluster.local.",
        "dns.cluster.local.",
    ] {
        let m = udp(s.addr, &query(ent, RecordType::A)).await;
        assert_negative(&m, ResponseCode::NoError, "cluster.local.");
    }
    let m = udp(s.addr, &query("nope.svc.cluster.local.", RecordType::A)).await;
    assert_negative(&m, ResponseCode::NXDomain, "cluster.local.");
    let m = udp(s.addr, &query("pod.cluster.local.", RecordType::A)).await;
    assert_negative(&m, ResponseCode::NXDomain, "cluster.local.");
    // Pod records are not served (removed in spec 1.1.0).
    let m = udp(
        s.addr,
        &query("10-244-1-10.default.pod.cluster.local.", RecordType::A),
    )
    .await;
    assert_negative(&m, ResponseCode::NXDomain, "cluster.local.");
    // dns-version: TXT "1.1.0", NODATA for other types.
    let m = udp(
        s.addr,
        &query("dns-version.cluster.local.", RecordType::TXT),
    )
    .await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["1.1.0"]);
    let m = udp(s.addr, &query("dns-version.cluster.local.", RecordType::A)).await;
    assert_negative(&m, ResponseCode::NoError, "cluster.local.");
    s.stop().await;
}

#[tokio::test]
async fn apex_soa_ns_and_glue() {
    let s = Server::start().await;
    let m = udp(s.addr, &query("cluster.local.", RecordType::SOA)).await;
    assert_positive(&m);
    assert!(answers(&m)[0].starts_with(SOA_LINE));
    assert!(
        answers(&m)[0].ends_with("7200 1800 86400 30"),
        "{}",
        answers(&m)[0]
    );
    let m = udp(s.addr, &query("cluster.local.", RecordType::NS)).await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["ns.dns.cluster.local."]);
    assert_eq!(m.additionals.len(), 1);
    assert_eq!(m.additionals[0].name.to_string(), "ns.dns.cluster.local.");
    assert_eq!(m.additionals[0].data.to_string(), "10.96.0.53");
    let m = udp(s.addr, &query("ns.dns.cluster.local.", RecordType::A)).await;
    assert_eq!(answers(&m), ["10.96.0.53"]);
    s.stop().await;
}

#[tokio::test]
async fn names_are_case_insensitive_and_the_question_is_echoed() {
    let s = Server::start().await;
    let name = "WeB-0.wEb.DEFAULT.Svc.Cluster.LOCAL.";
    let m = udp(s.addr, &query(name, RecordType::A)).await;
    assert_positive(&m);
    assert_eq!(answers(&m), ["10.244.1.10"]);
    assert_eq!(m.queries[0].name().to_string(), name);
    let m = udp(
        s.addr,
        &query("NOPE.Default.Svc.Cluster.Local.", RecordType::A),
    )
    .await;
    assert_negative(&m, ResponseCode::NXDomain, "Cluster.Local.");
    assert_eq!(
        m.queries[0].name().to_string(),
        "NOPE.Default.Svc.Cluster.Local."
    );
    // The SOA's names in the zone are pointers into the question: its case, as NSD answers.
    assert!(
        m.authorities[0]
            .data
            .to_string()
            .starts_with("ns.dns.Cluster.Local. hostmaster.Cluster.Local. "),
        "{}",
        m.authorities[0].data
    );
    s.stop().await;
}

#[tokio::test]
async fn rotation_changes_the_first_record() {
    let s = Server::start().await;
    let mut firsts = HashSet::new();
    for _ in 0..6 {
        let m = udp(
            s.addr,
            &query("web.default.svc.cluster.local.", RecordType::A),
        )
        .await;
        assert_eq!(m.answers.len(), 3);
        firsts.insert(answers(&m)[0].clone());
    }
    assert!(firsts.len() >= 2, "first record never changed: {firsts:?}");
    s.stop().await;

    let config = podns_server::ServerConfig {
        query: podns_server::QueryConfig {
            rotate: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let s = Server::start_with(config).await;
    let mut firsts = HashSet::new();
    for _ in 0..6 {
        let m = udp(
            s.addr,
            &query("web.default.svc.cluster.local.", RecordType::A),
        )
        .await;
        firsts.insert(answers(&m)[0].clone());
    }
    assert_eq!(firsts.len(), 1, "rotation off: {firsts:?}");
    s.stop().await;
}

#[tokio::test]
async fn large_answers_truncate_over_udp_and_complete_over_tcp() {
    let s = Server::start().await;
    let q = query("big.default.svc.cluster.local.", RecordType::A);
    let m = udp(s.addr, &q).await;
    assert!(m.metadata.truncation);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty() && m.additionals.is_empty());
    assert_eq!(m.queries.len(), 1);
    // EDNS 4096 is clamped to our 1232: still too big for 100 A records (1,600 octets).
    let m = udp(s.addr, &with_edns(q.clone(), 4096)).await;
    assert!(m.metadata.truncation);
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);
    let m = tcp(s.addr, &q).await;
    assert_positive(&m);
    assert_eq!(m.answers.len(), 100);
    s.stop().await;
}

#[tokio::test]
async fn edns_payload_size_is_honoured() {
    let s = Server::start().await;
    let q = query("mid.default.svc.cluster.local.", RecordType::A);
    // 40 A records ≈ 690 octets: too big for 512, fits 1232.
    let raw = udp_raw(s.addr, &q.to_vec().unwrap(), TIMEOUT)
        .await
        .unwrap();
    assert!(Message::from_vec(&raw).unwrap().metadata.truncation);
    assert!(raw.len() <= 512);
    let raw = udp_raw(
        s.addr,
        &with_edns(q.clone(), 1232).to_vec().unwrap(),
        TIMEOUT,
    )
    .await
    .unwrap();
    let m = Message::from_vec(&raw).unwrap();
    assert_positive(&m);
    assert_eq!(m.answers.len(), 40);
    assert!(raw.len() <= 1232);
    // A client size below 512 counts as 512.
    let m = udp(s.addr, &with_edns(q, 100)).await;
    assert!(m.metadata.truncation);
    s.stop().await;
}

#[tokio::test]
async fn additional_records_are_dropped_before_truncating() {
    let s = Server::start().await;
    let q = query("_http._tcp.six.default.svc.cluster.local.", RecordType::SRV);
    let raw = udp_raw(s.addr, &q.to_vec().unwrap(), TIMEOUT)
        .await
        .unwrap();
    assert!(raw.len() <= 512);
    let m = Message::from_vec(&raw).unwrap();
    assert!(!m.metadata.truncation, "additional data must not cause TC");
    assert_eq!(m.answers.len(), 6);
    assert!(m.additionals.len() < 6, "{}", m.additionals.len());
    let m = udp(s.addr, &with_edns(q, 1232)).await;
    assert_eq!(m.answers.len(), 6);
    assert_eq!(m.additionals.len(), 6);
    s.stop().await;
}

#[tokio::test]
async fn any_gets_one_rrset() {
    let s = Server::start().await;
    let m = udp(
        s.addr,
        &query("web.default.svc.cluster.local.", RecordType::ANY),
    )
    .await;
    assert_positive(&m);
    assert!(
        m.answers.iter().all(|r| r.record_type() == RecordType::A),
        "{m}"
    );
    assert_eq!(m.answers.len(), 3);
    let m = udp(s.addr, &query("cluster.local.", RecordType::ANY)).await;
    assert!(m.answers.iter().all(|r| r.record_type() == RecordType::SOA));
    let m = udp(s.addr, &query("svc.cluster.local.", RecordType::ANY)).await;
    assert_negative(&m, ResponseCode::NoError, "cluster.local.");
    s.stop().await;
}

#[tokio::test]
async fn refused_cases() {
    let s = Server::start().await;
    let m = udp(s.addr, &query("example.com.", RecordType::A)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    assert!(m.answers.is_empty() && m.authorities.is_empty());
    let m = udp(
        s.addr,
        &query_class(
            "web.default.svc.cluster.local.",
            RecordType::A,
            DNSClass::CH,
        ),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let m = tcp(s.addr, &query("cluster.local.", RecordType::AXFR)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let m = udp(s.addr, &query("cluster.local.", RecordType::IXFR)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // QCLASS ANY is answered.
    let m = udp(
        s.addr,
        &query_class(
            "web.default.svc.cluster.local.",
            RecordType::A,
            DNSClass::ANY,
        ),
    )
    .await;
    assert_positive(&m);
    s.stop().await;
}

#[tokio::test]
async fn badvers_for_edns_version_above_zero() {
    let s = Server::start().await;
    let mut q = with_edns(query("web.default.svc.cluster.local.", RecordType::A), 1232);
    q.edns.as_mut().unwrap().set_version(1);
    let m = udp(s.addr, &q).await;
    // Extended RCODE 16 (hickory decodes 16 as BADSIG, which shares the value).
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert!(m.answers.is_empty());
    assert_eq!(m.edns.as_ref().unwrap().version(), 0);
    s.stop().await;
}

#[tokio::test]
async fn formerr_cases() {
    let s = Server::start().await;
    let mut long_label = vec![64];
    long_label.extend([b'a'; 64]);
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut long_name = Vec::new();
    for _ in 0..5 {
        long_name.push(60);
        long_name.extend([b'a'; 60]);
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no question", raw(0x0100, 0, 0, &[])),
        ("two questions", raw(0x0100, 2, 0, &[WEB_Q, WEB_Q].concat())),
        (
            "pointer in question",
            raw(0x0100, 1, 0, b"\xC0\x0C\x00\x01\x00\x01"),
        ),
        ("label > 63", raw(0x0100, 1, 0, &long_label)),
        ("name > 255", raw(0x0100, 1, 0, &long_name)),
        (
            "truncated question",
            raw(0x0100, 1, 0, &WEB_Q[..WEB_Q.len() - 2]),
        ),
        (
            "trailing garbage",
            raw(0x0100, 1, 0, &[WEB_Q, b"junk"].concat()),
        ),
        ("counted record missing", raw(0x0100, 1, 1, WEB_Q)),
        ("two OPTs", raw(0x0100, 1, 2, &[WEB_Q, OPT, OPT].concat())),
        (
            "OPT not root",
            raw(0x0100, 1, 1, &[WEB_Q, b"\x01a", &OPT[1..]].concat()),
        ),
    ];
    for (what, request) in cases {
        let (m, bytes) = rcode_of(s.addr, &request).await;
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{what}");
        assert_eq!(m.metadata.id, 0x1234, "{what}");
        assert!(m.metadata.message_type == hickory_proto::op::MessageType::Response);
        assert!(m.answers.is_empty(), "{what}");
        // The response has no OPT for a message we could not parse.
        assert!(bytes.len() <= 12 + WEB_Q.len(), "{what}");
    }
    s.stop().await;
}

#[tokio::test]
async fn notimp_echoes_the_question() {
    let s = Server::start().await;
    // OPCODE 4 (NOTIFY).
    let (m, _) = rcode_of(s.addr, &raw(0x2000, 1, 0, WEB_Q)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(m.metadata.op_code, hickory_proto::op::OpCode::Notify);
    assert_eq!(m.queries.len(), 1);
    assert_eq!(
        m.queries[0].name().to_string(),
        "web.default.svc.cluster.local."
    );
    s.stop().await;
}

#[tokio::test]
async fn responses_and_runts_are_dropped_and_the_server_survives() {
    let s = Server::start().await;
    let wait = Duration::from_millis(300);
    assert!(
        udp_raw(s.addr, &raw(0x8100, 1, 0, WEB_Q), wait)
            .await
            .is_none(),
        "QR=1 must be dropped"
    );
    assert!(
        udp_raw(s.addr, b"\x12\x34\x01", wait).await.is_none(),
        "< 12 octets must be dropped"
    );
    assert!(udp_raw(s.addr, &[0xff; 700], wait).await.is_none());
    // Still serving.
    let m = udp(
        s.addr,
        &query("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_positive(&m);
    s.stop().await;
}

#[tokio::test]
async fn tcp_pipelining_answers_in_order() {
    let s = Server::start().await;
    let mut requests = Vec::new();
    let names = [
        "web.default.svc.cluster.local.",
        "nope.cluster.local.",
        "api.default.svc.cluster.local.",
        "big.default.svc.cluster.local.",
    ];
    for (i, name) in names.iter().enumerate() {
        let mut q = query(name, RecordType::A);
        q.metadata.id = 100 + i as u16;
        requests.push(q.to_vec().unwrap());
    }
    let responses = tcp_raw(s.addr, &requests).await;
    let parsed: Vec<Message> = responses
        .iter()
        .map(|r| Message::from_vec(r).unwrap())
        .collect();
    let ids: Vec<u16> = parsed.iter().map(|m| m.metadata.id).collect();
    assert_eq!(ids, [100, 101, 102, 103]);
    assert_eq!(parsed[0].answers.len(), 3);
    assert_eq!(parsed[1].metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(answers(&parsed[2]), ["10.96.0.10"]);
    assert_eq!(parsed[3].answers.len(), 100);
    s.stop().await;
}

#[tokio::test]
async fn tcp_malformed_frame_closes_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start().await;
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(&[0, 3, 1, 2, 3]).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "connection closed without a response");
    s.stop().await;
}

#[tokio::test]
async fn tcp_idle_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    let config = podns_server::ServerConfig {
        tcp_idle_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let s = Server::start_with(config).await;
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
        .await
        .expect("closed by the idle timeout")
        .unwrap_or(0);
    assert_eq!(n, 0);
    s.stop().await;
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let s = Server::start().await;
    let addr = s.addr;
    // An idle TCP connection does not hold shutdown up.
    let _idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.stop().await;
    let q = query("web.default.svc.cluster.local.", RecordType::A)
        .to_vec()
        .unwrap();
    assert!(
        udp_raw(addr, &q, Duration::from_millis(200))
            .await
            .is_none()
    );
}

#[test]
fn bind_uses_one_port_for_udp_and_tcp() {
    let config = podns_server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        udp_workers: 3,
        ..Default::default()
    };
    let bound = podns_server::bind(&config).unwrap();
    let port = bound.local_addr().port();
    assert_ne!(port, 0);
    // Both protocols are taken on that port now.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
    assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_err());
}

/// The query path reuses `out`: once it has capacity, no answer reallocates it. (A counting
/// global allocator would also catch allocations elsewhere, but it needs `unsafe impl
/// GlobalAlloc`, which the workspace's `unsafe_code = "forbid"` rules out.)
#[test]
fn query_path_keeps_the_output_buffer() {
    let snapshot = podns_zone::build(&zone_config(), &cluster());
    let config = podns_server::QueryConfig::default();
    let mut out = Vec::with_capacity(65535);
    let ptr = out.as_ptr();
    let requests = [
        query("big.default.svc.cluster.local.", RecordType::A)
            .to_vec()
            .unwrap(),
        query("web.default.svc.cluster.local.", RecordType::SRV)
            .to_vec()
            .unwrap(),
        query("nope.default.svc.cluster.local.", RecordType::A)
            .to_vec()
            .unwrap(),
        query("example.com.", RecordType::A).to_vec().unwrap(),
        raw(0x0100, 0, 0, &[]),
    ];
    for transport in [podns_server::Transport::Udp, podns_server::Transport::Tcp] {
        for (i, r) in requests.iter().enumerate() {
            let outcome =
                podns_server::answer(r, transport, &config, &snapshot, i as u32, &mut out);
            // example.com is not ours: `Forward`, with podns's REFUSED in `out`.
            assert!(matches!(
                outcome,
                podns_server::Outcome::Respond { .. } | podns_server::Outcome::Forward { .. }
            ));
            assert!(!out.is_empty());
            assert_eq!(out.as_ptr(), ptr);
            assert_eq!(out.capacity(), 65535);
        }
    }
}

/// A Service's bare name and `_<port>._<proto>` name answer SRV with the same records when it
/// has one named port (the zone stores that answer once and writes it for both names), over
/// UDP (fitting, additional data cut short, truncated) and TCP; with two named ports the bare
/// name answers both ports' records.
#[tokio::test]
async fn both_srv_names_answer_the_same_records() {
    let one_port: Arc<[podns_view::PortView]> = vec![
        port(Some("grpc"), podns_view::Protocol::Tcp, 8080),
        port(None, podns_view::Protocol::Tcp, 9000),
    ]
    .into();
    let two_ports: Arc<[podns_view::PortView]> = vec![
        port(Some("grpc"), podns_view::Protocol::Tcp, 8080),
        port(Some("admin"), podns_view::Protocol::Udp, 8081),
    ]
    .into();
    let endpoints = |third: u8, ports: &Arc<[podns_view::PortView]>| {
        (1..=12)
            .map(|i| {
                let host = format!("m-{i}");
                ep(&format!("10.251.{third}.{i}"), Some(&host), true, ports)
            })
            .collect()
    };
    let view = podns_view::ClusterView {
        namespaces: vec!["default".into()],
        services: vec![
            svc(
                "multi",
                podns_view::ServiceKind::Headless,
                vec![
                    port(Some("grpc"), podns_view::Protocol::Tcp, 80),
                    port(None, podns_view::Protocol::Tcp, 90),
                ],
                endpoints(1, &one_port),
            ),
            svc(
                "pair",
                podns_view::ServiceKind::Headless,
                vec![
                    port(Some("grpc"), podns_view::Protocol::Tcp, 80),
                    port(Some("admin"), podns_view::Protocol::Udp, 81),
                ],
                endpoints(2, &two_ports),
            ),
        ],
        pods: Vec::new(),
    };
    let s = Server::start_zone(Default::default(), &zone_config(), &view).await;
    let records = |rs: &[hickory_proto::rr::Record]| -> Vec<String> {
        sorted(
            rs.iter()
                .map(|r| format!("{} {} {}", r.ttl, r.record_type(), r.data))
                .collect(),
        )
    };
    let additional = |m: &Message| -> Vec<String> {
        sorted(
            m.additionals
                .iter()
                .map(|r| format!("{} {} {}", r.name, r.ttl, r.data))
                .collect(),
        )
    };
    let srv = |port: u16, svc: &str| -> Vec<String> {
        sorted(
            (1..=12)
                .map(|i| format!("30 SRV 0 8 {port} m-{i}.{svc}.default.svc.cluster.local."))
                .collect(),
        )
    };
    let glue = |third: u8, svc: &str| -> Vec<String> {
        sorted(
            (1..=12)
                .map(|i| format!("m-{i}.{svc}.default.svc.cluster.local. 30 10.251.{third}.{i}"))
                .collect(),
        )
    };
    let bare = "multi.default.svc.cluster.local.";
    let named = "_grpc._tcp.multi.default.svc.cluster.local.";
    // TCP and a large enough EDNS size: everything, the same for both names.
    for name in [bare, named] {
        let q = query(name, RecordType::SRV);
        for m in [
            tcp(s.addr, &q).await,
            udp(s.addr, &with_edns(q.clone(), 1232)).await,
        ] {
            assert_positive(&m);
            assert!(!m.metadata.truncation, "{name}");
            assert_eq!(m.answers.len(), 12, "{name}");
            assert!(m.answers.iter().all(|r| r.name.to_string() == name));
            assert_eq!(records(&m.answers), srv(8080, "multi"), "{name}");
            assert_eq!(additional(&m), glue(1, "multi"), "{name}");
        }
    }
    // 512 octets: the answer does not fit, TC and nothing else, for both names.
    for name in [bare, named] {
        let m = udp(s.addr, &query(name, RecordType::SRV)).await;
        assert!(m.metadata.truncation, "{name}");
        assert!(m.answers.is_empty() && m.additionals.is_empty(), "{name}");
    }
    // 900 octets: the whole answer, part of the additional data (no TC), owners correct.
    for name in [bare, named] {
        let m = udp(s.addr, &with_edns(query(name, RecordType::SRV), 900)).await;
        assert!(!m.metadata.truncation, "{name}");
        assert_eq!(records(&m.answers), srv(8080, "multi"), "{name}");
        let got = additional(&m);
        assert!(!got.is_empty() && got.len() < 12, "{name}: {got:?}");
        let all = glue(1, "multi");
        assert!(got.iter().all(|g| all.contains(g)), "{name}: {got:?}");
    }
    // ANY at the port name gets its one RRset, the SRV records.
    let m = tcp(s.addr, &query(named, RecordType::ANY)).await;
    assert_eq!(records(&m.answers), srv(8080, "multi"));
    assert_eq!(additional(&m), glue(1, "multi"));
    // Two named ports: each port name its own records, the bare name both.
    let port_records = |port: u16| -> Vec<String> {
        sorted(
            (1..=12)
                .map(|i| format!("30 SRV 0 4 {port} m-{i}.pair.default.svc.cluster.local."))
                .collect(),
        )
    };
    for (name, want) in [
        (
            "_grpc._tcp.pair.default.svc.cluster.local.",
            srv(8080, "pair"),
        ),
        (
            "_admin._udp.pair.default.svc.cluster.local.",
            srv(8081, "pair"),
        ),
    ] {
        let m = tcp(s.addr, &query(name, RecordType::SRV)).await;
        assert_eq!(records(&m.answers), want, "{name}");
        assert_eq!(additional(&m), glue(2, "pair"), "{name}");
    }
    let m = tcp(
        s.addr,
        &query("pair.default.svc.cluster.local.", RecordType::SRV),
    )
    .await;
    let mut both = port_records(8080);
    both.extend(port_records(8081));
    assert_eq!(records(&m.answers), sorted(both));
    assert_eq!(additional(&m), glue(2, "pair"));
    s.stop().await;
}
