//! The query path: one request in, one response (or nothing) out, without I/O or allocation.
//!
//! This module is responsible for every decision about a single message: whether to answer,
//! with which RCODE and flags, which prepared records, in which rotation, and how much fits.
//! It owns no state and does no I/O (sans-IO, like quandary's `Server::handle_message`): the
//! UDP and TCP loops call [`answer`] with a reused output buffer, so once that buffer has its
//! capacity (65,535 octets) nothing on this path allocates. `benches/query.rs` measures it.
//!
//! | case | response | source |
//! |---|---|---|
//! | < 12 octets, or QR = 1 | dropped (no reflection loops) | RFC 1035 §4.1.1 |
//! | OPCODE ≠ QUERY | NOTIMP | RFC 1035 §4.1.1 |
//! | QDCOUNT ≠ 1, bad question, bad records, trailing bytes | FORMERR | RFC 1035 §4.1.1 |
//! | UDP datagram longer than the receive buffer (4 KiB in the batched loop), so cut short | FORMERR, question echoed ([`formerr_truncated`]) | RFC 1035 §4.1.1 |
//! | two OPT records, OPT not owned by root, OPT outside the additional section | FORMERR | RFC 6891 §6.1.1, §6.1.2 |
//! | EDNS version > 0 | BADVERS (16, via OPT) | RFC 6891 §6.1.3 |
//! | QCLASS not IN or ANY; AXFR/IXFR | REFUSED | RFC 1035, RFC 5936 §4.2 |
//! | name outside the served zones; NXDOMAIN in a `fallthrough` zone | `Forward` (REFUSED / NXDOMAIN in `out` when nothing forwards) | CoreDNS `forward`, `fallthrough` |
//! | QTYPE ANY | one RRset | RFC 8482 §4.1 |
//! | `pods insecure` name (`1-2-3-4.<ns>.pod.<zone>`) | one A/AAAA written here, owner `0xC00C` | CoreDNS `pods insecure` |
//! | answer does not fit | TC = 1, no answer records | RFC 1035 §4.2.1, RFC 2181 §9 |
//! | additional records do not fit | dropped, TC not set | RFC 2181 §9 |
//! | request has OPT | our OPT, payload = our maximum | RFC 6891 §6.2.3, §7 |

use std::net::IpAddr;

use podns_zone::{Lookup, Negative, PreparedAnswer, RType, ZoneSnapshot};

use crate::wire::{self, Edns, HEADER_LEN, Header, flags};

/// RFC 1035 §4.2.1: UDP messages are limited to 512 octets without EDNS, and EDNS payload
/// sizes below 512 are treated as 512 (RFC 6891 §6.2.3).
pub const MIN_UDP_PAYLOAD: u16 = 512;
/// Default maximum UDP payload we send and advertise: 1232 (DNS Flag Day 2020), which fits
/// the IPv6 minimum MTU of 1280 without fragmentation. Min 512, max 65,535.
pub const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;
/// RFC 1035 §4.2.2: TCP messages carry a 16-bit length.
const MAX_TCP_MESSAGE: usize = 65535;
/// Length of the OPT record we add: root owner, TYPE, CLASS, TTL, RDLENGTH (RFC 6891 §6.1.2).
const OPT_LEN: usize = 11;

/// Response codes (RFC 1035 §4.1.1, RFC 6891 §9 for BADVERS).
pub mod rcode {
    /// No error.
    pub const NOERROR: u16 = 0;
    /// Format error.
    pub const FORMERR: u16 = 1;
    /// Server failure.
    pub const SERVFAIL: u16 = 2;
    /// Name error.
    pub const NXDOMAIN: u16 = 3;
    /// Not implemented.
    pub const NOTIMP: u16 = 4;
    /// Refused.
    pub const REFUSED: u16 = 5;
    /// Bad OPT version (extended RCODE).
    pub const BADVERS: u16 = 16;
}

/// RFC 1035 §3.2.4: class IN; §3.2.5: QCLASS `*` (ANY).
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;

/// The transport a request came over: it sets the size limit of the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 octets, or the EDNS payload size (clamped to our maximum).
    Udp,
    /// TCP: 65,535 octets (RFC 7766 §8).
    Tcp,
}

/// Per-query behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryConfig {
    /// Rotate multi-record answers by the per-query rotation (like CoreDNS's `loadbalance`,
    /// which kubeadm's Corefile enables). Default on.
    pub rotate: bool,
    /// Largest UDP response we send and the payload size our OPT advertises. Default 1232;
    /// values below 512 act as 512.
    pub max_udp_payload: u16,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            rotate: true,
            max_udp_payload: DEFAULT_MAX_UDP_PAYLOAD,
        }
    }
}

/// What the caller does with `out` after [`answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send `out`.
    Respond {
        /// The response's (possibly extended) RCODE, for metrics and logs.
        rcode: u16,
        /// Whether TC was set.
        truncated: bool,
        /// The question, when it parsed (for metrics).
        asked: Option<Asked>,
    },
    /// Not podns's to answer: a name outside every served zone, or an NXDOMAIN in a zone
    /// that falls through (CoreDNS `fallthrough`). A forwarder should answer it; without one,
    /// send `out`, which holds podns's own answer (REFUSED or NXDOMAIN).
    Forward {
        /// The question.
        asked: Asked,
        /// The RCODE of the answer in `out`.
        rcode: u16,
        /// The largest response the client takes over this transport (RFC 1035 §4.2.1,
        /// RFC 6891 §6.2.5), which the forwarder must fit its answer into.
        max_len: usize,
    },
    /// Send nothing (not a query we may answer at all); on TCP, close the connection.
    Drop,
}

/// The parsed question, as the caller needs it after [`answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asked {
    /// QTYPE.
    pub qtype: u16,
    /// Wire length of QNAME, which starts right after the header (offset 12).
    pub qname_len: usize,
}

impl Asked {
    /// QNAME in `request` (as received: the client's case, never compressed).
    pub fn qname<'a>(&self, request: &'a [u8]) -> &'a [u8] {
        request
            .get(HEADER_LEN..HEADER_LEN + self.qname_len)
            .unwrap_or_default()
    }
}

/// Writes a SERVFAIL for `request` into `out` (header and question echoed), for a query that
/// could not be answered at all (e.g. too many forwarded queries in flight). Returns `false`
/// (and leaves `out` empty) when `request` is not a query to answer.
pub fn servfail(request: &[u8], out: &mut Vec<u8>) -> bool {
    error_only(request, rcode::SERVFAIL, out) != Outcome::Drop
}

/// Writes a FORMERR for `request` into `out` (header and question echoed when they parse), for
/// a UDP datagram that was larger than the receive buffer and so arrived cut short: whatever
/// follows the question is unknown, so it is not answered. Returns [`Outcome::Drop`] (and
/// leaves `out` empty) when `request` is not a query to answer.
pub fn formerr_truncated(request: &[u8], out: &mut Vec<u8>) -> Outcome {
    error_only(request, rcode::FORMERR, out)
}

/// A response with `rcode`, the header and (when it parses) the question echoed, no OPT.
fn error_only(request: &[u8], rcode: u16, out: &mut Vec<u8>) -> Outcome {
    out.clear();
    let Some(header) = Header::parse(request) else {
        return Outcome::Drop;
    };
    if header.is_response() {
        return Outcome::Drop;
    }
    let mut name_buf = [0u8; podns_zone::MAX_NAME_LEN];
    let question = match header.qdcount {
        1 => wire::parse_question(request, &mut name_buf).ok(),
        _ => None,
    };
    let w = Writer {
        out,
        header,
        question: question.map(|q| &request[HEADER_LEN..q.end]),
        edns: None,
        asked: question.map(|q| Asked {
            qtype: q.qtype,
            qname_len: q.name_len,
        }),
    };
    w.error(rcode)
}

/// The RCODE in a response's header (the low 4 bits; extended RCODEs live in OPT).
pub fn response_rcode(response: &[u8]) -> u16 {
    response
        .get(3)
        .map_or(rcode::SERVFAIL, |b| u16::from(b & 0x0F))
}

/// Answers `request` from `snapshot` into `out` (cleared first, capacity kept).
///
/// `rotation` picks the first record of multi-record answers (the caller counts queries);
/// it is used only when `config.rotate` is set.
pub fn answer(
    request: &[u8],
    transport: Transport,
    config: &QueryConfig,
    snapshot: &ZoneSnapshot,
    rotation: u32,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    let Some(header) = Header::parse(request) else {
        return Outcome::Drop;
    };
    if header.is_response() {
        return Outcome::Drop;
    }
    let mut name_buf = [0u8; podns_zone::MAX_NAME_LEN];
    let question = match header.qdcount {
        1 => wire::parse_question(request, &mut name_buf).ok(),
        _ => None,
    };
    let records = question.map(|q| wire::scan_records(request, q.end, &header));
    let mut w = Writer {
        out,
        header,
        question: question.map(|q| &request[HEADER_LEN..q.end]),
        edns: None,
        asked: question.map(|q| Asked {
            qtype: q.qtype,
            qname_len: q.name_len,
        }),
    };
    let edns = match records {
        Some(Ok(edns)) => edns,
        _ => None,
    };
    if header.opcode() != 0 {
        w.edns = edns;
        return w.error(rcode::NOTIMP);
    }
    let (Some(q), Some(Ok(_))) = (question, records) else {
        // Bad question count, question or records: no OPT in a FORMERR we cannot trust; the
        // question is echoed only when it parsed.
        return w.error(rcode::FORMERR);
    };
    w.edns = edns;
    if let Some(e) = edns
        && e.version > 0
    {
        // RFC 6891 §6.1.3: "If a responder does not implement the VERSION level of the
        // request, then it MUST respond with RCODE=BADVERS".
        return w.error(rcode::BADVERS);
    }
    if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        return w.error(rcode::REFUSED);
    }
    if q.qtype == RType::AXFR.0 || q.qtype == RType::IXFR.0 {
        // No zone transfers (RFC 5936 §4.2: a server may refuse them).
        return w.error(rcode::REFUSED);
    }
    let limit = match transport {
        Transport::Udp => match edns {
            None => MIN_UDP_PAYLOAD as usize,
            Some(e) => e
                .udp_payload
                .max(MIN_UDP_PAYLOAD)
                .min(config.max_udp_payload.max(MIN_UDP_PAYLOAD)) as usize,
        },
        Transport::Tcp => MAX_TCP_MESSAGE,
    };
    let rotation = if config.rotate { rotation } else { 0 };
    let asked = Asked {
        qtype: q.qtype,
        qname_len: q.name_len,
    };
    let forward = |outcome: Outcome| match outcome {
        Outcome::Respond { rcode, .. } => Outcome::Forward {
            asked,
            rcode,
            max_len: limit,
        },
        other => other,
    };
    match snapshot.lookup(&name_buf[..q.name_len], q.qtype) {
        Lookup::NotServed => forward(w.error(rcode::REFUSED)),
        Lookup::Answer(prepared) => w.positive(prepared, rotation, limit, config),
        Lookup::NoData(negative) => w.negative(rcode::NOERROR, negative, q.name_len, limit, config),
        Lookup::NxDomain(negative) => {
            let outcome = w.negative(rcode::NXDOMAIN, negative, q.name_len, limit, config);
            if negative.falls_through() {
                forward(outcome)
            } else {
                outcome
            }
        }
        Lookup::PodAddress { ip, ttl } => w.pod_address(ip, ttl, limit, config),
    }
}

/// Writes one response into the output buffer.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
    header: Header,
    /// The question exactly as received (name in its original case), if it parsed.
    question: Option<&'a [u8]>,
    /// The request's OPT, if valid: then the response carries ours.
    edns: Option<Edns>,
    /// The question, once parsed, reported in the outcome.
    asked: Option<Asked>,
}

// === impl Writer ===

impl Writer<'_> {
    /// Header and question; counts are patched by [`Writer::finish`].
    fn start(&mut self, rcode: u16, aa: bool) {
        // Copy ID, OPCODE and RD; set QR; RA = 0 (no recursion here).
        let mut f = flags::QR | (self.header.flags & (flags::OPCODE_MASK | flags::RD));
        if aa {
            f |= flags::AA;
        }
        f |= rcode & flags::RCODE_MASK;
        self.out.extend_from_slice(&self.header.id.to_be_bytes());
        self.out.extend_from_slice(&f.to_be_bytes());
        self.out.extend_from_slice(&[0; 8]);
        if let Some(q) = self.question {
            self.out.extend_from_slice(q);
        }
    }

    fn opt_len(&self) -> usize {
        if self.edns.is_some() { OPT_LEN } else { 0 }
    }

    /// Appends our OPT (if the request had one) and writes the section counts.
    fn finish(self, rcode: u16, counts: [u16; 3], config: Option<&QueryConfig>) -> Outcome {
        let mut arcount = counts[2];
        if self.edns.is_some() {
            let payload = config.map_or(DEFAULT_MAX_UDP_PAYLOAD, |c| {
                c.max_udp_payload.max(MIN_UDP_PAYLOAD)
            });
            // RFC 6891 §6.1.2/§6.1.3: root owner, TYPE 41, CLASS = our payload size, TTL =
            // EXTENDED-RCODE | VERSION 0 | DO clear | Z, RDLENGTH 0.
            self.out.push(0);
            self.out.extend_from_slice(&RType::OPT.0.to_be_bytes());
            self.out.extend_from_slice(&payload.to_be_bytes());
            self.out
                .extend_from_slice(&[(rcode >> 4) as u8, 0, 0, 0, 0, 0]);
            arcount += 1;
        }
        let qd = u16::from(self.question.is_some());
        for (i, n) in [qd, counts[0], counts[1], arcount].into_iter().enumerate() {
            self.out[4 + 2 * i..6 + 2 * i].copy_from_slice(&n.to_be_bytes());
        }
        let truncated = self.out[2] & (flags::TC >> 8) as u8 != 0;
        Outcome::Respond {
            rcode,
            truncated,
            asked: self.asked,
        }
    }

    /// A response with no records (FORMERR, NOTIMP, REFUSED, BADVERS).
    fn error(mut self, rcode: u16) -> Outcome {
        self.start(rcode, false);
        self.finish(rcode, [0; 3], None)
    }

    fn set_tc(&mut self) {
        self.out[2] |= (flags::TC >> 8) as u8;
    }

    fn positive(
        mut self,
        prepared: PreparedAnswer<'_>,
        rotation: u32,
        limit: usize,
        config: &QueryConfig,
    ) -> Outcome {
        self.start(rcode::NOERROR, true);
        let reserved = self.opt_len();
        if self.out.len() + prepared.answer_len() + reserved > limit {
            // RFC 2181 §9: the answer RRset does not fit; set TC and send no partial RRset,
            // so the client retries over TCP.
            self.set_tc();
            return self.finish(rcode::NOERROR, [0; 3], Some(config));
        }
        let (first, second) = prepared.rotated_answers(rotation);
        self.out.extend_from_slice(first);
        self.out.extend_from_slice(second);
        let mut additional = 0;
        for i in 0..prepared.additional_count() {
            let record = prepared.additional(i);
            // RFC 2181 §9: additional data that does not fit is dropped without TC.
            if self.out.len() + record.len() + reserved > limit {
                break;
            }
            prepared.write_additional(i, self.out);
            additional += 1;
        }
        let counts = [prepared.answer_count() as u16, 0, additional];
        self.finish(rcode::NOERROR, counts, Some(config))
    }

    /// One address record for a `pods insecure` name, which no snapshot can hold in advance:
    /// owner `0xC00C` (the question, RFC 1035 §4.1.4), class IN, RDATA the address.
    fn pod_address(mut self, ip: IpAddr, ttl: u32, limit: usize, config: &QueryConfig) -> Outcome {
        self.start(rcode::NOERROR, true);
        // A stack buffer: the 16 octets of AAAA RDATA, or the first 4 for A.
        let mut octets = [0u8; 16];
        let (rtype, rdata) = match ip {
            IpAddr::V4(v4) => {
                octets[..4].copy_from_slice(&v4.octets());
                (RType::A, &octets[..4])
            }
            IpAddr::V6(v6) => {
                octets = v6.octets();
                (RType::AAAA, &octets[..])
            }
        };
        let record_len = 2 + 10 + rdata.len();
        if self.out.len() + record_len + self.opt_len() > limit {
            self.set_tc();
            return self.finish(rcode::NOERROR, [0; 3], Some(config));
        }
        self.out.extend_from_slice(&[0xC0, 0x0C]);
        self.out.extend_from_slice(&rtype.0.to_be_bytes());
        self.out.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        self.out
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.out.extend_from_slice(rdata);
        self.finish(rcode::NOERROR, [1, 0, 0], Some(config))
    }

    fn negative(
        mut self,
        rcode: u16,
        negative: &Negative,
        qname_len: usize,
        limit: usize,
        config: &QueryConfig,
    ) -> Outcome {
        // RFC 2308 §2.1/§2.2: NXDOMAIN and NODATA carry the zone's SOA in the authority section.
        self.start(rcode, true);
        if self.out.len() + negative.len() + self.opt_len() > limit {
            self.set_tc();
            return self.finish(rcode, [0; 3], Some(config));
        }
        negative.write(qname_len, self.out);
        self.finish(rcode, [0, 1, 0], Some(config))
    }
}
