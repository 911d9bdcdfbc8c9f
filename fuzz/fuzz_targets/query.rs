//! Fuzz target `query`: arbitrary bytes through `podns_server::answer`, over UDP and TCP.
//!
//! Every input must give either `Drop` (with nothing to send) or a response that: echoes the
//! request's ID and OPCODE with QR=1; parses with hickory-proto (the oracle for our
//! hand-written wire code); sets TC only without answer records (RFC 2181 §9); and is no
//! larger than the request is entitled to: 512 octets over UDP without EDNS, the advertised
//! payload size (at least 512, at most our maximum) with it, 65,535 over TCP. A message that
//! must never be answered (shorter than a header, or QR=1) must be dropped.
#![no_main]

use std::sync::LazyLock;

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use podns_server::{Outcome, QueryConfig, Transport, answer, wire};
use podns_zone::ZoneSnapshot;

static SNAPSHOT: LazyLock<ZoneSnapshot> = LazyLock::new(podns_fuzz::snapshot);

fuzz_target!(|data: &[u8]| {
    // Both the default maximum (1232) and a larger one, so the client's size decides more.
    let config = QueryConfig {
        rotate: true,
        max_udp_payload: if data.len() % 2 == 0 { 1232 } else { 4096 },
    };
    let mut out = Vec::with_capacity(65535);
    for transport in [Transport::Udp, Transport::Tcp] {
        let rotation = data.len() as u32;
        match answer(data, transport, &config, &SNAPSHOT, rotation, &mut out) {
            Outcome::Drop => assert!(out.is_empty(), "Drop with a response written"),
            Outcome::Respond { truncated, .. } => {
                let m = check(data, &out, transport, &config);
                assert_eq!(
                    truncated, m.metadata.truncation,
                    "Outcome::truncated is the TC bit"
                );
            }
            Outcome::Forward { max_len, .. } => {
                check(data, &out, transport, &config);
                assert_eq!(
                    max_len,
                    limit(data, &out, transport, &config),
                    "forward limit"
                );
            }
        }
    }
});

fn check(request: &[u8], response: &[u8], transport: Transport, config: &QueryConfig) -> Message {
    assert!(request.len() >= 12, "answered a runt");
    assert_eq!(request[2] & 0x80, 0, "answered a message with QR=1");
    assert!(response.len() >= 12, "response shorter than a header");
    assert_eq!(response[..2], request[..2], "ID not echoed");
    assert_ne!(response[2] & 0x80, 0, "QR not set");
    assert_eq!(response[2] & 0x78, request[2] & 0x78, "OPCODE not echoed");
    let max = limit(request, response, transport, config);
    assert!(
        response.len() <= max,
        "{} octets, entitled to {max}",
        response.len()
    );
    let m = Message::from_vec(response)
        .unwrap_or_else(|e| panic!("response does not parse: {e}: {response:02x?}"));
    if m.metadata.truncation {
        assert!(m.answers.is_empty(), "TC with a partial answer");
    }
    m
}

/// The largest response `request` is entitled to over `transport`.
fn limit(request: &[u8], response: &[u8], transport: Transport, config: &QueryConfig) -> usize {
    if transport == Transport::Tcp {
        return 65535;
    }
    // Our response carries an OPT exactly when the request had a valid one (RFC 6891 §7);
    // without it the limit is 512 (RFC 1035 §4.2.1).
    let response_has_opt = Message::from_vec(response).is_ok_and(|m| m.edns.is_some());
    if !response_has_opt {
        return 512;
    }
    let header = wire::Header::parse(request).expect("a header");
    let mut name = [0u8; 255];
    let question = wire::parse_question(request, &mut name).expect("an OPT only after a question");
    let edns = wire::scan_records(request, question.end, &header)
        .expect("an OPT only after valid records")
        .expect("an OPT in the response only for one in the request");
    edns.udp_payload
        .max(512)
        .min(config.max_udp_payload.max(512)) as usize
}
