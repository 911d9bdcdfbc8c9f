//! The bytes of forwarding: reading the client's query, writing the upstream query, checking
//! the upstream's response, and writing the response the client gets.
//!
//! This module is responsible for every octet that crosses the forwarder and does no I/O.
//! Upstream bytes are untrusted: [`parse_reply`] walks every record with bounds checks before
//! anything is kept, names are skipped and never decompressed (so pointers cannot loop), and
//! every failure is a value, never a panic. We do not decode into a DNS crate's `Message`: the
//! forwarder only needs offsets (TTLs, sections, OPT), and keeping the upstream's bytes keeps
//! its compression as it was. `hickory-proto` is the test oracle.
//!
//! | rule | source |
//! |---|---|
//! | response must match our ID and question (case-insensitive), else ignored | RFC 5452 §4.1, §9.1 |
//! | TC over UDP → same question over TCP, 2-octet length prefix | RFC 7766 §5, §8 |
//! | client without OPT gets no OPT; client with OPT gets ours | RFC 6891 §6.1.1, §7 |
//! | OPT options (cookies, ECS) are hop-by-hop: not forwarded, not cached | RFC 7873 §5, RFC 7871 §7.3 |
//! | TTLs decremented by the time held; the response's TTLs never exceed the cache's | RFC 1035 §3.2.1, RFC 2181 §8 |
//! | negative TTL = min(SOA TTL, SOA MINIMUM) | RFC 2308 §3, §5 |
//! | does not fit: drop additional records first (no TC), then TC with no records | RFC 2181 §9, RFC 1035 §4.2.1 |
//! | AD only to clients that set AD or DO | RFC 6840 §5.7 |

/// Length of the fixed header (RFC 1035 §4.1.1).
pub(crate) const HEADER_LEN: usize = 12;
/// Length of an OPT record with no options: root owner, TYPE, CLASS, TTL, RDLENGTH.
pub(crate) const OPT_LEN: usize = 11;
/// RFC 1035 §4.2.2: a TCP message carries a 16-bit length, so no message is longer.
pub(crate) const MAX_MESSAGE: usize = 65535;

const TYPE_SOA: u16 = 6;
const TYPE_OPT: u16 = 41;
/// SOA RDATA ends with SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM (RFC 1035 §3.3.13): 20 octets
/// after two names of at least one octet each.
const SOA_MIN_RDLEN: usize = 22;

/// Header flag bits (RFC 1035 §4.1.1; AD, CD: RFC 4035 §3.2).
pub(crate) mod flags {
    pub(crate) const QR: u16 = 0x8000;
    pub(crate) const OPCODE_MASK: u16 = 0x7800;
    pub(crate) const TC: u16 = 0x0200;
    pub(crate) const RD: u16 = 0x0100;
    pub(crate) const RA: u16 = 0x0080;
    pub(crate) const AD: u16 = 0x0020;
    pub(crate) const CD: u16 = 0x0010;
    pub(crate) const RCODE_MASK: u16 = 0x000F;
}

/// Response codes we act on (RFC 1035 §4.1.1).
pub(crate) mod rcode {
    pub(crate) const NOERROR: u16 = 0;
    pub(crate) const FORMERR: u16 = 1;
    pub(crate) const SERVFAIL: u16 = 2;
    pub(crate) const NXDOMAIN: u16 = 3;
}

fn word(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(msg.get(at..at + 2)?.try_into().ok()?))
}

fn set_word(msg: &mut [u8], at: usize, v: u16) {
    if let Some(b) = msg.get_mut(at..at + 2) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// What the forwarder needs of the client's query.
#[derive(Clone, Debug)]
pub(crate) struct ClientQuery<'a> {
    /// The client's message ID.
    pub(crate) id: u16,
    /// The client's header flags (RD, AD, CD are passed on).
    pub(crate) flags: u16,
    /// The question exactly as received: name (original case), QTYPE, QCLASS.
    pub(crate) question: &'a [u8],
    /// The client's OPT, if it sent one.
    pub(crate) edns: Option<ClientEdns>,
}

/// The part of the client's OPT that survives forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientEdns {
    /// DNSSEC OK (RFC 3225).
    pub(crate) dnssec_ok: bool,
}

/// The client's query could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadQuery {
    /// Shorter than a header, or a response: drop it (no reflection loops).
    Drop,
    /// Header readable, the rest not: FORMERR.
    Malformed,
}

// === impl ClientQuery ===

impl<'a> ClientQuery<'a> {
    /// Reads header, the one question and the OPT. The caller has validated the message; this
    /// checks again only so that nothing here can panic or misbehave on a caller's mistake.
    pub(crate) fn parse(msg: &'a [u8]) -> Result<Self, BadQuery> {
        let (Some(id), Some(fl)) = (word(msg, 0), word(msg, 2)) else {
            return Err(BadQuery::Drop);
        };
        if msg.len() < HEADER_LEN || fl & flags::QR != 0 {
            return Err(BadQuery::Drop);
        }
        let count = |i: usize| word(msg, 4 + 2 * i).unwrap_or(0) as usize;
        if count(0) != 1 || fl & flags::OPCODE_MASK != 0 {
            return Err(BadQuery::Malformed);
        }
        let end = question_end(msg).ok_or(BadQuery::Malformed)?;
        let mut edns = None;
        let mut pos = end;
        let (an, ns, ar) = (count(1), count(2), count(3));
        for i in 0..an + ns + ar {
            let rr = Rr::read(msg, pos, false).ok_or(BadQuery::Malformed)?;
            if rr.rtype == TYPE_OPT && i >= an + ns {
                edns = Some(ClientEdns {
                    dnssec_ok: rr.ttl & 0x8000 != 0,
                });
            }
            pos = rr.end;
        }
        Ok(Self {
            id,
            flags: fl,
            question: &msg[HEADER_LEN..end],
            edns,
        })
    }

    /// Whether DNSSEC OK is set.
    pub(crate) fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|e| e.dnssec_ok)
    }

    /// QTYPE and QCLASS.
    pub(crate) fn type_class(&self) -> (u16, u16) {
        let n = self.question.len();
        (
            word(self.question, n - 4).unwrap_or(0),
            word(self.question, n - 2).unwrap_or(0),
        )
    }

    /// The question name, lower-cased (RFC 4343: ASCII only), for the cache key.
    pub(crate) fn lower_name(&self) -> Box<[u8]> {
        self.question[..self.question.len() - 4]
            .iter()
            .map(u8::to_ascii_lowercase)
            .collect()
    }
}

/// Offset after the question at offset 12 (uncompressed name, ≤ 255 octets, QTYPE, QCLASS).
fn question_end(msg: &[u8]) -> Option<usize> {
    let mut pos = HEADER_LEN;
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            pos += 1;
            break;
        }
        // Pointers (0xC0) and the reserved label types (0x40, 0x80) are refused in a question.
        if len > 63 {
            return None;
        }
        pos += 1 + len;
        if pos - HEADER_LEN > 255 {
            return None;
        }
    }
    (msg.len() >= pos + 4).then_some(pos + 4)
}

/// One resource record's fixed fields, as offsets into the message.
struct Rr {
    rtype: u16,
    ttl_at: usize,
    ttl: u32,
    rdata: usize,
    end: usize,
}

// === impl Rr ===

impl Rr {
    /// Reads the record at `pos`. With `strict`, compression pointers must point backwards
    /// (RFC 1035 §4.1.4 "a prior occurrence"), so nothing we pass on has forward pointers.
    fn read(msg: &[u8], pos: usize, strict: bool) -> Option<Self> {
        let pos = skip_name(msg, pos, strict)?;
        let fixed = msg.get(pos..pos + 10)?;
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        let end = pos + 10 + rdlen;
        if msg.len() < end {
            return None;
        }
        Some(Self {
            rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
            ttl_at: pos + 4,
            ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            rdata: pos + 10,
            end,
        })
    }
}

/// Skips a possibly compressed name; returns the offset after it. Never follows a pointer.
fn skip_name(msg: &[u8], mut pos: usize, strict: bool) -> Option<usize> {
    loop {
        let len = *msg.get(pos)? as usize;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xC0 == 0xC0 => {
                let target = (l & 0x3F) << 8 | *msg.get(pos + 1)? as usize;
                if strict && target >= pos {
                    return None;
                }
                return Some(pos + 2);
            }
            l if l > 63 => return None,
            l => pos += 1 + l,
        }
    }
}

/// The upstream query: a fresh `id`, the client's question, RD/AD/CD, and our OPT with the
/// client's DO bit. `payload` is what we accept from the upstream.
pub(crate) fn upstream_query(q: &ClientQuery<'_>, id: u16, payload: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + q.question.len() + OPT_LEN);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&(q.flags & (flags::RD | flags::AD | flags::CD)).to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend_from_slice(q.question);
    push_opt(&mut m, payload, q.dnssec_ok());
    m
}

/// An OPT record without options (RFC 6891 §6.1.2): extended RCODE 0, version 0.
fn push_opt(m: &mut Vec<u8>, payload: u16, dnssec_ok: bool) {
    m.extend_from_slice(&[0, 0, 41]);
    m.extend_from_slice(&payload.to_be_bytes());
    m.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
}

/// An upstream response that passed every check, ready to cache and to render.
#[derive(Debug)]
pub(crate) struct Response {
    /// The message with ID 0 and without the OPT (and anything after it).
    pub(crate) msg: Vec<u8>,
    /// Offsets of the TTL field of every record kept (OPT excluded).
    pub(crate) ttl_offsets: Vec<u16>,
    /// Offset after the question.
    pub(crate) question_end: u16,
    /// Offset of the additional section.
    pub(crate) additional_at: u16,
    /// The RCODE (NOERROR or NXDOMAIN; others are failures).
    pub(crate) rcode: u16,
    /// Number of answer records.
    pub(crate) ancount: u16,
    /// Smallest TTL in the answer and authority sections.
    pub(crate) min_ttl: Option<u32>,
    /// RFC 2308 §5: min(SOA TTL, SOA MINIMUM) of the SOA in the authority section.
    pub(crate) soa_negative_ttl: Option<u32>,
}

/// What one datagram or TCP message from an upstream means.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Not an answer to our query (ID, QR or question differ): ignore it, keep waiting.
    NotOurs,
    /// Ours, with TC: ask again over TCP.
    Truncated,
    /// Ours, but unusable: the upstream failed.
    Failed(Failure),
    /// Ours and usable.
    Usable(Response),
}

/// Why an upstream's answer is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Failure {
    /// Records run past the end, bad labels, forward pointers, trailing octets, OPT misplaced.
    #[error("malformed response")]
    Malformed,
    /// SERVFAIL, REFUSED, FORMERR, NOTIMP or any other RCODE but NOERROR and NXDOMAIN.
    #[error("rcode {0}")]
    Rcode(u16),
    /// TC set on a TCP response, which cannot be retried anywhere bigger.
    #[error("truncated over TCP")]
    TruncatedTcp,
}

/// Classifies `buf`, received for our query with `id` and `question` (as we sent it).
pub(crate) fn parse_reply(buf: &[u8], id: u16, question: &[u8]) -> Reply {
    let (Some(rid), Some(fl), Some(qd)) = (word(buf, 0), word(buf, 2), word(buf, 4)) else {
        return Reply::NotOurs;
    };
    if rid != id || fl & flags::QR == 0 || buf.len() < HEADER_LEN {
        return Reply::NotOurs;
    }
    let low_rcode = fl & flags::RCODE_MASK;
    if qd == 0 && low_rcode != rcode::NOERROR {
        // Some servers send FORMERR/NOTIMP without the question; the ID matched, so take it
        // as this upstream's answer rather than waiting for the timeout.
        return Reply::Failed(Failure::Rcode(low_rcode));
    }
    let end = HEADER_LEN + question.len();
    let Some(theirs) = buf.get(HEADER_LEN..end) else {
        return Reply::NotOurs;
    };
    // RFC 5452 §9.1: the question must match; names compare case-insensitively (RFC 4343).
    if qd != 1 || !theirs.eq_ignore_ascii_case(question) {
        return Reply::NotOurs;
    }
    if fl & flags::OPCODE_MASK != 0 {
        return Reply::Failed(Failure::Malformed);
    }
    if fl & flags::TC != 0 {
        return Reply::Truncated;
    }
    match walk(buf, end) {
        Ok(r) => Reply::Usable(r),
        Err(f) => Reply::Failed(f),
    }
}

/// Walks every record after the question; builds the [`Response`].
fn walk(buf: &[u8], question_end: usize) -> Result<Response, Failure> {
    if buf.len() > MAX_MESSAGE {
        return Err(Failure::Malformed);
    }
    let count = |i: usize| word(buf, 4 + 2 * i).unwrap_or(0) as usize;
    let (an, ns, ar) = (count(1), count(2), count(3));
    let mut pos = question_end;
    let mut ttl_offsets = Vec::with_capacity(an + ns + ar);
    let mut min_ttl: Option<u32> = None;
    let mut soa_negative_ttl: Option<u32> = None;
    let mut additional_at = buf.len();
    // Where the OPT starts and how many additional records precede it.
    let mut opt: Option<(usize, usize)> = None;
    let mut ext_rcode = 0u16;
    for i in 0..an + ns + ar {
        if i == an + ns {
            additional_at = pos;
        }
        let rr = Rr::read(buf, pos, true).ok_or(Failure::Malformed)?;
        if rr.rtype == TYPE_OPT {
            // RFC 6891 §6.1.1: only in the additional section, at most once, owned by root.
            if i < an + ns || opt.is_some() || buf.get(pos) != Some(&0) {
                return Err(Failure::Malformed);
            }
            opt = Some((pos, i - an - ns));
            // RFC 6891 §6.1.3: the upper 8 bits of the 12-bit RCODE.
            ext_rcode = (rr.ttl >> 24) as u16;
        } else if opt.is_none() {
            ttl_offsets.push(rr.ttl_at as u16);
            if i < an + ns {
                min_ttl = Some(min_ttl.map_or(rr.ttl, |t| t.min(rr.ttl)));
            }
            if i >= an && i < an + ns && rr.rtype == TYPE_SOA {
                let rdlen = rr.end - rr.rdata;
                if rdlen < SOA_MIN_RDLEN {
                    return Err(Failure::Malformed);
                }
                let m = &buf[rr.end - 4..rr.end];
                let minimum = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
                let neg = rr.ttl.min(minimum);
                soa_negative_ttl = Some(soa_negative_ttl.map_or(neg, |t| t.min(neg)));
            }
        }
        pos = rr.end;
    }
    if pos != buf.len() {
        return Err(Failure::Malformed);
    }
    let rc = ext_rcode << 4 | word(buf, 2).unwrap_or(0) & flags::RCODE_MASK;
    if rc != rcode::NOERROR && rc != rcode::NXDOMAIN {
        return Err(Failure::Rcode(rc));
    }
    // Keep everything before the OPT. Records after it (TSIG, SIG(0): RFC 8945 §5.1 puts them
    // last) belong to that hop, and cutting at the OPT moves no name a pointer could target.
    let (cut, arcount) = match opt {
        Some((at, before)) => (at, before),
        None => (buf.len(), ar),
    };
    let mut msg = buf[..cut].to_vec();
    set_word(&mut msg, 0, 0);
    set_word(&mut msg, 10, arcount as u16);
    Ok(Response {
        msg,
        ttl_offsets,
        question_end: question_end as u16,
        additional_at: additional_at.min(cut) as u16,
        rcode: rc,
        ancount: an as u16,
        min_ttl,
        soa_negative_ttl,
    })
}

/// How to write a [`Response`] for one client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Render {
    /// Whole seconds the response has been held (0 when fresh).
    pub(crate) age: u32,
    /// No TTL is sent above this (the cache lifetime, or the configured cap), before the age
    /// is subtracted.
    pub(crate) ttl_cap: u32,
    /// Payload size for our OPT.
    pub(crate) udp_payload: u16,
    /// The largest response the client can take.
    pub(crate) max_len: usize,
}

/// The client's response: its ID and question bytes, TTLs aged and capped, OPT as the client
/// asked, fitted to `max_len`.
pub(crate) fn render(r: &Response, q: &ClientQuery<'_>, how: Render) -> Vec<u8> {
    let qend = r.question_end as usize;
    if qend != HEADER_LEN + q.question.len() || r.msg.len() < qend {
        // Cannot happen (the cache key is the question, compared case-insensitively, so the
        // lengths are equal); answer SERVFAIL rather than write a broken message.
        return error_response(q, rcode::SERVFAIL, how.udp_payload);
    }
    let opt_len = if q.edns.is_some() { OPT_LEN } else { 0 };
    let arcount = word(&r.msg, 10).unwrap_or(0);
    let (keep, truncated) = if r.msg.len() + opt_len <= how.max_len {
        (r.msg.len(), false)
    } else if arcount > 0 && r.additional_at as usize + opt_len <= how.max_len {
        // RFC 2181 §9: additional records may be dropped without setting TC.
        (r.additional_at as usize, false)
    } else {
        (qend, true)
    };
    let mut out = Vec::with_capacity(keep + opt_len);
    out.extend_from_slice(&r.msg[..keep]);
    out[HEADER_LEN..qend].copy_from_slice(q.question);
    set_word(&mut out, 0, q.id);
    let mut fl = word(&out, 2).unwrap_or(0);
    fl = (fl & !flags::RD) | (q.flags & flags::RD);
    if q.flags & flags::AD == 0 && !q.dnssec_ok() {
        fl &= !flags::AD;
    }
    if truncated {
        // RFC 2181 §9: a partial RRset is worse than none; the client retries over TCP.
        fl |= flags::TC;
        out[6..10].fill(0);
    }
    set_word(&mut out, 2, fl);
    if keep < r.msg.len() {
        set_word(&mut out, 10, 0);
    }
    for &at in &r.ttl_offsets {
        let at = at as usize;
        let Some(b) = out.get_mut(at..at + 4) else {
            continue; // in a dropped section
        };
        let ttl = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let ttl = ttl.min(how.ttl_cap).saturating_sub(how.age);
        b.copy_from_slice(&ttl.to_be_bytes());
    }
    if let Some(e) = q.edns {
        push_opt(&mut out, how.udp_payload, e.dnssec_ok);
        let ar = word(&out, 10).unwrap_or(0);
        set_word(&mut out, 10, ar.saturating_add(1));
    }
    out
}

/// An error response with the client's ID and question (and our OPT if it sent one).
pub(crate) fn error_response(q: &ClientQuery<'_>, rc: u16, udp_payload: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + q.question.len() + OPT_LEN);
    out.extend_from_slice(&q.id.to_be_bytes());
    let fl = flags::QR | flags::RA | (q.flags & (flags::RD | flags::CD)) | rc;
    out.extend_from_slice(&fl.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(q.edns.is_some())]);
    out.extend_from_slice(q.question);
    if let Some(e) = q.edns {
        push_opt(&mut out, udp_payload, e.dnssec_ok);
    }
    out
}

/// FORMERR for a query whose header was readable but not the rest: header only (RFC 1035
/// §4.1.1 does not require echoing a question we could not read).
pub(crate) fn formerr(query: &[u8]) -> Vec<u8> {
    let mut out = query[..HEADER_LEN.min(query.len())].to_vec();
    out.resize(HEADER_LEN, 0);
    let fl = word(&out, 2).unwrap_or(0);
    let fl = flags::QR | (fl & (flags::OPCODE_MASK | flags::RD)) | rcode::FORMERR;
    set_word(&mut out, 2, fl);
    out[4..12].fill(0);
    out
}

#[cfg(test)]
mod tests;
