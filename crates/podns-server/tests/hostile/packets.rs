//! Malformed and hostile messages over UDP and TCP: each gets a well-formed answer or nothing.
//!
//! Truncations at every length, question counts other than one, compression pointers that
//! loop or point forward, labels and names at and past their limits, OPT records out of place
//! or of an unknown version, QR=1 messages, every opcode other than QUERY, ANY, AXFR/IXFR,
//! and a few thousand seeded mutations of real queries.

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use crate::support::*;
use crate::{PROMPT, SILENCE, assert_answers, assert_header, frame, frames, rcode, tcp_session};

/// RCODEs as they appear in the header.
const FORMERR: u8 = 1;
const NXDOMAIN: u8 = 3;
const NOTIMP: u8 = 4;
const REFUSED: u8 = 5;

/// Sends every request from one socket and asserts that no response at all comes back.
async fn assert_silent_udp(addr: std::net::SocketAddr, requests: &[Vec<u8>], what: &str) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for r in requests {
        socket.send_to(r, addr).await.unwrap();
    }
    let mut buf = [0u8; 2048];
    let got = tokio::time::timeout(SILENCE, socket.recv_from(&mut buf)).await;
    assert!(
        got.is_err(),
        "{what}: a response came: {:?}",
        got.map(|r| buf[..r.unwrap().0].to_vec())
    );
}

/// Writes `bytes`, half-closes the connection, and reads until the server closes it.
async fn tcp_half_closed(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        let _ = stream.read_to_end(&mut received).await;
    })
    .await
    .expect("the server closes a half-closed connection once it has answered");
    frames(&received)
}

/// A question for `name` (wire labels, root added), QTYPE A, QCLASS IN.
fn question(labels: &[&[u8]]) -> Vec<u8> {
    let mut q = Vec::new();
    for l in labels {
        q.push(l.len() as u8);
        q.extend_from_slice(l);
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_truncation_of_a_query_is_dropped_or_formerr() {
    let s = Server::start().await;
    let full = raw(0x0100, 1, 1, &[WEB_Q, OPT].concat());
    let (m, _) = rcode_of(s.addr, &full).await;
    assert_eq!(m.answers.len(), 3, "the uncut query is answered");
    let runts: Vec<Vec<u8>> = (0..12).map(|len| full[..len].to_vec()).collect();
    assert_silent_udp(s.addr, &runts, "shorter than a header").await;
    for len in 0..full.len() {
        let cut = &full[..len];
        if len < 12 {
            // RFC 7766 §8 and our tcp.rs: a frame shorter than a header closes the stream.
            let session = tcp_session(s.addr, &frame(cut), TIMEOUT).await;
            assert!(
                session.closed && session.responses.is_empty(),
                "len {len}: {session:?}"
            );
            continue;
        }
        let (m, bytes) = rcode_of(s.addr, cut).await;
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "len {len}");
        // Never an OPT (nor anything else) in a FORMERR for a message we could not read.
        assert!(bytes.len() <= 12 + WEB_Q.len(), "len {len}");
        let responses = tcp_half_closed(s.addr, &frame(cut)).await;
        assert_eq!(responses.len(), 1, "len {len}");
        assert_eq!(rcode(&responses[0]), FORMERR, "len {len}");
    }
    // A frame that promises more octets than ever arrive: closed unanswered at EOF.
    let mut short = frame(&full);
    short.truncate(short.len() - 5);
    assert!(tcp_half_closed(s.addr, &short).await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn question_counts_other_than_one_are_formerr_without_echo() {
    let s = Server::start().await;
    let cases = [
        ("QDCOUNT 2, one question", raw(0x0100, 2, 0, WEB_Q)),
        ("QDCOUNT 65535, one question", raw(0x0100, 0xFFFF, 0, WEB_Q)),
        ("QDCOUNT 0, a question follows", raw(0x0100, 0, 0, WEB_Q)),
        (
            "QDCOUNT 2, OPT counted",
            raw(0x0100, 2, 1, &[WEB_Q, WEB_Q, OPT].concat()),
        ),
    ];
    for (what, request) in cases {
        let (_, bytes) = rcode_of(s.addr, &request).await;
        assert_header(&request, &bytes, what);
        assert_eq!(rcode(&bytes), FORMERR, "{what}");
        // Header only: all counts zero, no question echoed.
        assert_eq!(bytes.len(), 12, "{what}");
        assert_eq!(bytes[4..12], [0; 8], "{what}");
        let responses = tcp_raw(s.addr, &[request]).await;
        assert_eq!(responses[0].len(), 12, "{what} over TCP");
    }
    s.stop().await;
}

#[tokio::test]
async fn compression_pointers_are_never_followed() {
    let s = Server::start().await;
    let qtail = [0, 1, 0, 1];
    // In the question: refused outright, whether they loop, point back, forward or outside.
    let questions: [(&str, Vec<u8>); 5] = [
        ("pointer to itself", [&[0xC0, 0x0C][..], &qtail].concat()),
        (
            "label, then back to the start",
            [&b"\x03web\xC0\x0C"[..], &qtail].concat(),
        ),
        (
            "forward pointer",
            [&[0xC0, 0x10][..], &qtail, b"\x03web\x00"].concat(),
        ),
        (
            "pointer into the header",
            [&[0xC0, 0x02][..], &qtail].concat(),
        ),
        ("pointer past the end", [&[0xFF, 0xFF][..], &qtail].concat()),
    ];
    for (what, body) in questions {
        let request = raw(0x0100, 1, 0, &body);
        let began = Instant::now();
        let (m, _) = rcode_of(s.addr, &request).await;
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{what}");
        assert!(began.elapsed() < PROMPT, "{what}");
    }
    // In the records: owner names are skipped, never followed, so loops cost nothing and the
    // query is answered.
    let owner_at = (12 + WEB_Q.len()) as u8;
    let a_record =
        |owner: [u8; 2]| [&owner[..], &[0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 1]].concat();
    let records = [
        (
            "additional record pointing to itself",
            [0, 0, 1],
            a_record([0xC0, owner_at]),
        ),
        (
            "answer record pointing past the end",
            [1, 0, 0],
            a_record([0xFF, 0xFF]),
        ),
        (
            "authority record pointing forward",
            [0, 1, 0],
            a_record([0xC0, owner_at + 2]),
        ),
    ];
    for (what, [an, ns, ar], record) in records {
        let request = raw_counts(0x0100, [1, an, ns, ar], &[WEB_Q, &record].concat());
        let (m, _) = rcode_of(s.addr, &request).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{what}");
        assert_eq!(m.answers.len(), 3, "{what}");
    }
    // An OPT owned by a pointer (even one to a root label) is not owned by the root.
    let opt_by_pointer = [&[0xC0, owner_at - 5][..], &OPT[1..]].concat();
    let (m, _) = rcode_of(
        s.addr,
        &raw(0x0100, 1, 1, &[WEB_Q, &opt_by_pointer].concat()),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // The largest TCP message, every record's owner a pointer loop: scanned in one pass.
    let record = a_record([0xC0, owner_at]);
    let n = (65535 - 12 - WEB_Q.len()) / record.len();
    let body: Vec<u8> = [WEB_Q.to_vec(), record.repeat(n)].concat();
    let request = raw_counts(0x0100, [1, 0, 0, n as u16], &body);
    let began = Instant::now();
    let responses = tcp_raw(s.addr, &[request]).await;
    assert_eq!(rcode(&responses[0]), 0);
    assert!(
        began.elapsed() < PROMPT,
        "{:?} for {n} records",
        began.elapsed()
    );
    s.stop().await;
}

#[tokio::test]
async fn labels_and_names_at_and_past_their_limits() {
    let s = Server::start().await;
    let l63 = [b'a'; 63];
    let cl: [&[u8]; 2] = [b"cluster", b"local"];
    // 63 octets is a label; the 0x40 and 0x80 label types (RFC 6891 §5, RFC 2673) are not.
    let ok = question(&[&l63, cl[0], cl[1]]);
    let (m, _) = rcode_of(s.addr, &raw(0x0100, 1, 0, &ok)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    for kind in [0x40u8, 0x41, 0x7F, 0x80, 0xBF] {
        let body = [&[kind][..], &[b'a'; 64], &[0, 0, 1, 0, 1]].concat();
        let (m, _) = rcode_of(s.addr, &raw(0x0100, 1, 0, &body)).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::FormErr,
            "label octet {kind:#x}"
        );
    }
    // 3 × 64 + 48 + 15 ("cluster.local.") = 255 octets: a name; one more octet is not.
    let l47 = [b'b'; 47];
    let l48 = [b'b'; 48];
    let max = question(&[&l63, &l63, &l63, &l47, cl[0], cl[1]]);
    assert_eq!(max.len() - 4, 255);
    let (m, bytes) = rcode_of(s.addr, &raw(0x0100, 1, 0, &max)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        bytes[12..12 + max.len()],
        max[..],
        "the question is echoed as sent"
    );
    let over = question(&[&l63, &l63, &l63, &l48, cl[0], cl[1]]);
    let (m, _) = rcode_of(s.addr, &raw(0x0100, 1, 0, &over)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    s.stop().await;
}

#[tokio::test]
async fn opt_records_out_of_place_or_of_unknown_version() {
    let s = Server::start().await;
    let a_record = [
        &[0xC0, 0x0C][..],
        &[0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 1],
    ]
    .concat();
    let formerr = [
        (
            "OPT in the answer section",
            [1, 1, 0, 0],
            [WEB_Q, OPT].concat(),
        ),
        (
            "OPT in the authority section",
            [1, 0, 1, 0],
            [WEB_Q, OPT].concat(),
        ),
        (
            "OPT RDLENGTH past the end",
            [1, 0, 0, 1],
            [WEB_Q, &OPT[..9], &[0, 8, 0, 1]].concat(),
        ),
    ];
    for (what, counts, body) in formerr {
        let request = raw_counts(0x0100, counts, &body);
        let (_, bytes) = rcode_of(s.addr, &request).await;
        assert_eq!(rcode(&bytes), FORMERR, "{what}");
        // A misplaced OPT is never EDNS: the response carries none.
        assert!(bytes.len() <= 12 + WEB_Q.len(), "{what}");
    }
    // OPT anywhere within the additional section is fine (RFC 6891 §6.1.1).
    let request = raw_counts(0x0100, [1, 0, 0, 2], &[WEB_Q, &a_record, OPT].concat());
    let (m, _) = rcode_of(s.addr, &request).await;
    assert_eq!(m.answers.len(), 3);
    assert!(m.edns.is_some());
    // EDNS version 255: BADVERS (extended RCODE 16 = upper bits 1 in our OPT, version 0), over
    // both transports, with no records.
    let mut v255 = OPT.to_vec();
    v255[6] = 255;
    let request = raw(0x0100, 1, 1, &[WEB_Q, &v255].concat());
    let (_, udp_bytes) = rcode_of(s.addr, &request).await;
    let tcp_bytes = tcp_raw(s.addr, std::slice::from_ref(&request))
        .await
        .remove(0);
    for bytes in [udp_bytes, tcp_bytes] {
        let opt = &bytes[bytes.len() - 11..];
        assert_eq!(rcode(&bytes), 0);
        assert_eq!((opt[5], opt[6]), (1, 0), "extended RCODE 1 (16), version 0");
        assert_eq!(bytes[6..10], [0; 4], "no answer or authority records");
        assert_eq!(bytes.len(), 12 + WEB_Q.len() + 11);
    }
    s.stop().await;
}

#[tokio::test]
async fn messages_with_qr_set_are_never_answered() {
    let s = Server::start().await;
    // Every opcode, with assorted other bits; and a real response, as a reflected answer from
    // another server would look.
    let mut requests: Vec<Vec<u8>> = (0..16u16)
        .map(|opcode| raw(0x8000 | opcode << 11 | 0x0583, 1, 1, &[WEB_Q, OPT].concat()))
        .collect();
    requests.push(raw(0x8000, 0, 0, &[]));
    let mut response = query("web.default.svc.cluster.local.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    let real = udp(
        s.addr,
        &query("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    response.answers = real.answers;
    let reflected = response.to_vec().unwrap();
    requests.push(reflected.clone());
    assert_silent_udp(s.addr, &requests, "QR = 1").await;
    // On TCP the connection closes at the first one, after answering what came before.
    let good = raw(0x0100, 1, 0, WEB_Q);
    let pipeline = [frame(&good), frame(&reflected), frame(&good)].concat();
    let session = tcp_session(s.addr, &pipeline, TIMEOUT).await;
    assert!(session.closed, "{session:?}");
    assert_eq!(session.responses.len(), 1, "{session:?}");
    assert_answers(&good, &session.responses[0], "before the QR=1 message");
    s.stop().await;
}

#[tokio::test]
async fn every_opcode_other_than_query_is_notimp() {
    let s = Server::start().await;
    for opcode in 1..16u16 {
        for (qd, body) in [(1, WEB_Q), (0, &[][..])] {
            let request = raw(opcode << 11 | 0x0100, qd, 0, body);
            let what = format!("opcode {opcode}, QDCOUNT {qd}");
            let (bytes, transport) = if opcode % 4 == 0 {
                (
                    tcp_raw(s.addr, std::slice::from_ref(&request))
                        .await
                        .remove(0),
                    "tcp",
                )
            } else {
                (
                    udp_raw(s.addr, &request, TIMEOUT)
                        .await
                        .expect("a response"),
                    "udp",
                )
            };
            assert_header(&request, &bytes, &what);
            assert_eq!(rcode(&bytes), NOTIMP, "{what} over {transport}");
            // The question echoed at most: never larger than the request.
            assert_eq!(bytes.len(), request.len(), "{what}");
            assert_eq!(bytes[6..12], [0; 6], "{what}: no records");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn any_is_minimal_and_zone_transfers_are_refused_on_both_transports() {
    let s = Server::start().await;
    // RFC 8482 §4.1 over TCP too: one RRset, however many types the name has.
    let m = tcp(
        s.addr,
        &query("web.default.svc.cluster.local.", RecordType::ANY),
    )
    .await;
    let types: std::collections::HashSet<RecordType> =
        m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "{m}");
    // No zone transfer, whatever the name, class or transport (RFC 5936 §4.2).
    let transfers = [
        ("cluster.local.", RecordType::AXFR, DNSClass::IN),
        ("cluster.local.", RecordType::AXFR, DNSClass::ANY),
        ("default.svc.cluster.local.", RecordType::AXFR, DNSClass::IN),
        ("cluster.local.", RecordType::IXFR, DNSClass::IN),
        ("in-addr.arpa.", RecordType::AXFR, DNSClass::IN),
    ];
    for (name, rtype, class) in transfers {
        let request = query_class(name, rtype, class).to_vec().unwrap();
        let what = format!("{rtype} {class} {name}");
        // Pipelined with a query: the connection stays usable after the refusal.
        let follow = query("web.default.svc.cluster.local.", RecordType::A)
            .to_vec()
            .unwrap();
        let responses = tcp_raw(s.addr, &[request.clone(), follow]).await;
        let udp_bytes = udp_raw(s.addr, &request, TIMEOUT)
            .await
            .expect("a response");
        for bytes in [&responses[0], &udp_bytes] {
            assert_answers(&request, bytes, &what);
            assert_eq!(rcode(bytes), REFUSED, "{what}");
            assert_eq!(bytes[6..12], [0; 6], "{what}: no records");
        }
        assert_eq!(Message::from_vec(&responses[1]).unwrap().answers.len(), 3);
    }
    s.stop().await;
}

/// A small deterministic PRNG (xorshift64*), so a failing mutation can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One mutation of `base`: flipped octets, a cut, appended junk, or rewritten counts.
fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut m = base.to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(5) {
            0 | 1 => {
                let i = rng.below(m.len().max(1));
                if let Some(b) = m.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            2 => m.truncate(rng.below(m.len() + 1)),
            3 => m.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
            _ => {
                if m.len() >= 12 {
                    let field = 4 + 2 * rng.below(4);
                    m[field..field + 2].copy_from_slice(&(rng.below(4) as u16).to_be_bytes());
                }
            }
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_queries_get_well_formed_answers_or_nothing() {
    let s = Server::start().await;
    let bases: Vec<Vec<u8>> = [
        with_edns(query("web.default.svc.cluster.local.", RecordType::A), 1232),
        query("_web._tcp.web.default.svc.cluster.local.", RecordType::SRV),
        with_edns(query("big.default.svc.cluster.local.", RecordType::A), 4096),
        query("10.1.244.10.in-addr.arpa.", RecordType::PTR),
        with_edns(
            query("nope.default.svc.cluster.local.", RecordType::AAAA),
            512,
        ),
    ]
    .iter()
    .map(|m| m.to_vec().unwrap())
    .collect();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut rng = Rng(0x0005_EED0_FD05);
    let (mut answered, mut silent) = (0, 0);
    let mut buf = vec![0u8; 65535];
    for window in 0..40u16 {
        let mut sent = std::collections::HashMap::new();
        for i in 0..64u16 {
            let id = window * 64 + i;
            let base = &bases[rng.below(bases.len())];
            let mut m = mutate(&mut rng, base);
            // Our own ID (when the mutation left one), so responses can be matched.
            if m.len() >= 2 {
                m[..2].copy_from_slice(&id.to_be_bytes());
            }
            socket.send_to(&m, s.addr).await.unwrap();
            sent.insert(id, m);
        }
        let mut seen = 0;
        while let Ok(Ok((len, _))) =
            tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buf)).await
        {
            let response = &buf[..len];
            let id = u16::from_be_bytes([response[0], response[1]]);
            let request = sent.get(&id).unwrap_or_else(|| panic!("unknown ID {id}"));
            let what = format!("mutation {request:02x?}");
            assert_header(request, response, &what);
            let has_opt = Message::from_vec(response)
                .map(|m| m.edns.is_some())
                .unwrap_or_else(|e| panic!("{what}: unparseable response {e}: {response:02x?}"));
            let limit = if has_opt { 1232 } else { 512 };
            assert!(len <= limit, "{what}: {len} octets");
            seen += 1;
        }
        answered += seen;
        silent += sent.len() - seen;
    }
    // Both kinds occur, or the mutations are not reaching the interesting paths.
    assert!(
        answered > 1000 && silent > 50,
        "answered {answered}, silent {silent}"
    );
    let m = udp(
        s.addr,
        &query("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(m.answers.len(), 3, "still serving");
    s.stop().await;
}

#[tokio::test]
async fn nxdomain_for_hostile_but_valid_names() {
    // Binary labels, dots and NULs inside labels are legal on the wire (RFC 2181 §11): they
    // are looked up like any name, and echoed unchanged.
    let s = Server::start().await;
    for label in [&b"\x00\x01\xFF"[..], b"a.b", b"\\", b"*", b"-"] {
        let q = question(&[label, b"default", b"svc", b"cluster", b"local"]);
        let (m, bytes) = rcode_of(s.addr, &raw(0x0100, 1, 0, &q)).await;
        assert_eq!(rcode(&bytes), NXDOMAIN, "{label:?}: {m}");
        assert_eq!(bytes[12..12 + q.len()], q[..], "{label:?}");
    }
    s.stop().await;
}
