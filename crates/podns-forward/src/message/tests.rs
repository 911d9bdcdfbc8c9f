use super::*;

/// `www.example.com. A IN` as the client wrote it (mixed case).
const QUESTION: &[u8] = b"\x03WwW\x07eXample\x03com\x00\x00\x01\x00\x01";

fn client(edns: Option<bool>) -> Vec<u8> {
    let mut m = vec![
        0xBE,
        0xEF,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(edns.is_some()),
    ];
    m.extend_from_slice(QUESTION);
    if let Some(d) = edns {
        push_opt(&mut m, 4096, d);
    }
    m
}

/// A response to `id` with `records` (each: TYPE, TTL, RDATA; owner = pointer to the question).
fn reply(
    id: u16,
    fl: u16,
    an: &[(u16, u32, &[u8])],
    ns: &[(u16, u32, &[u8])],
    opt: bool,
) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&(fl | flags::QR).to_be_bytes());
    for n in [1, an.len(), ns.len(), usize::from(opt)] {
        m.extend_from_slice(&(n as u16).to_be_bytes());
    }
    m.extend_from_slice(&QUESTION.to_ascii_lowercase());
    for (t, ttl, rdata) in an.iter().chain(ns) {
        m.extend_from_slice(&[0xC0, 12]);
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    }
    if opt {
        push_opt(&mut m, 1232, false);
    }
    m
}

fn soa(minimum: u32) -> Vec<u8> {
    let mut r = vec![0, 0]; // mname and rname: root
    r.extend_from_slice(&[0; 16]);
    r.extend_from_slice(&minimum.to_be_bytes());
    r
}

#[test]
fn client_query_and_upstream_query() {
    let m = client(Some(true));
    let q = ClientQuery::parse(&m).unwrap();
    assert_eq!((q.id, q.question, q.dnssec_ok()), (0xBEEF, QUESTION, true));
    assert_eq!(q.type_class(), (1, 1));
    assert_eq!(&*q.lower_name(), b"\x03www\x07example\x03com\x00");
    let up = upstream_query(&q, 0x1234, 1232);
    assert_eq!(&up[..4], &[0x12, 0x34, 0x01, 0x00]);
    assert_eq!(
        &up[up.len() - OPT_LEN..],
        &[0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 0]
    );
    assert_eq!(ClientQuery::parse(&m[..5]).unwrap_err(), BadQuery::Drop);
    assert_eq!(
        ClientQuery::parse(&m[..20]).unwrap_err(),
        BadQuery::Malformed
    );
}

#[test]
fn reply_matching() {
    let q = QUESTION;
    let ok = reply(7, 0, &[(1, 300, &[10, 0, 0, 1])], &[], true);
    assert!(matches!(parse_reply(&ok, 7, q), Reply::Usable(_)));
    assert!(matches!(parse_reply(&ok, 8, q), Reply::NotOurs));
    let mut other = ok.clone();
    other[14] = b'x'; // a different name
    assert!(matches!(parse_reply(&other, 7, q), Reply::NotOurs));
    assert!(matches!(parse_reply(&ok[..11], 7, q), Reply::NotOurs));
    let tc = reply(7, flags::TC, &[], &[], false);
    assert!(matches!(parse_reply(&tc, 7, q), Reply::Truncated));
    let sf = reply(7, rcode::SERVFAIL, &[], &[], false);
    assert!(matches!(
        parse_reply(&sf, 7, q),
        Reply::Failed(Failure::Rcode(2))
    ));
}

#[test]
fn malformed_replies_fail_without_panic() {
    let q = QUESTION;
    let ok = reply(
        7,
        0,
        &[(1, 300, &[10, 0, 0, 1])],
        &[(6, 60, &soa(30))],
        true,
    );
    // Every prefix that still holds the question is ours and malformed.
    for cut in HEADER_LEN + q.len()..ok.len() {
        assert!(
            matches!(
                parse_reply(&ok[..cut], 7, q),
                Reply::Failed(Failure::Malformed)
            ),
            "cut at {cut}"
        );
    }
    let mut trailing = ok.clone();
    trailing.push(0);
    assert!(matches!(
        parse_reply(&trailing, 7, q),
        Reply::Failed(Failure::Malformed)
    ));
    let mut forward_ptr = ok.clone();
    let owner = HEADER_LEN + q.len();
    forward_ptr[owner + 1] = 0xFF;
    assert!(matches!(
        parse_reply(&forward_ptr, 7, q),
        Reply::Failed(Failure::Malformed)
    ));
    // Every byte value at every position: no panic.
    for at in 0..ok.len() {
        for v in [0u8, 0x3F, 0x40, 0xC0, 0xFF] {
            let mut m = ok.clone();
            m[at] = v;
            let _ = parse_reply(&m, 7, q);
        }
    }
}

#[test]
fn response_offsets_and_negative_ttl() {
    let nx = reply(7, rcode::NXDOMAIN, &[], &[(6, 3600, &soa(60))], true);
    let Reply::Usable(r) = parse_reply(&nx, 7, QUESTION) else {
        panic!("usable")
    };
    assert_eq!(
        (r.rcode, r.soa_negative_ttl, r.min_ttl),
        (3, Some(60), Some(3600))
    );
    assert_eq!(r.msg.len(), nx.len() - OPT_LEN, "OPT stripped");
    assert_eq!(&r.msg[10..12], &[0, 0], "ARCOUNT without OPT");
    assert_eq!(r.ttl_offsets.len(), 1);
}

#[test]
fn render_patches_id_question_ttl_and_opt() {
    let m = reply(
        7,
        flags::RD | flags::RA | flags::AD,
        &[(1, 300, &[10, 0, 0, 1])],
        &[],
        true,
    );
    let Reply::Usable(r) = parse_reply(&m, 7, QUESTION) else {
        panic!("usable")
    };
    let c = client(None);
    let q = ClientQuery::parse(&c).unwrap();
    let how = Render {
        age: 10,
        ttl_cap: 100,
        udp_payload: 1232,
        max_len: 512,
    };
    let out = render(&r, &q, how);
    assert_eq!(&out[..2], &[0xBE, 0xEF]);
    assert_eq!(&out[12..12 + QUESTION.len()], QUESTION);
    assert_eq!(word(&out, 2).unwrap() & flags::AD, 0, "no AD without AD/DO");
    assert_eq!(&out[10..12], &[0, 0], "no OPT for a client without one");
    let ttl_at = r.ttl_offsets[0] as usize;
    assert_eq!(
        &out[ttl_at..ttl_at + 4],
        &90u32.to_be_bytes(),
        "min(300, 100) - 10"
    );
    // With OPT and a limit below the answer: TC, no records, OPT kept.
    let c = client(Some(false));
    let q = ClientQuery::parse(&c).unwrap();
    let out = render(&r, &q, Render { max_len: 40, ..how });
    assert_ne!(word(&out, 2).unwrap() & flags::TC, 0);
    assert_eq!(&out[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
    assert_eq!(out.len(), HEADER_LEN + QUESTION.len() + OPT_LEN);
}
