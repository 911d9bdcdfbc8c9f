//! Minimal DNS message parsing for the query path: header, the one question, and an OPT scan.
//!
//! This module is responsible for reading exactly what [`crate::query`] needs from a request and
//! for rejecting everything malformed, without allocating: the question name is lower-cased into
//! a caller-provided `[u8; 255]`, and every failure is a small `Copy` enum.
//!
//! Why hand-written instead of `hickory-proto`: this runs once per query on the hot path, where
//! a full `Message` decode allocates (names, record vectors) and costs far more than the lookup
//! itself (see `benches/query.rs`). We parse only the header, one question and the OPT record,
//! and skip the rest. `hickory-proto` stays the oracle: the tests build requests and parse every
//! response with it.
//!
//! | rule | source |
//! |---|---|
//! | header layout, 12 octets | RFC 1035 §4.1.1 |
//! | labels ≤ 63, names ≤ 255 octets | RFC 1035 §2.3.4 |
//! | no compression pointers in the question (a lone question never needs one, so loops and forward pointers cannot occur) | RFC 1035 §4.1.4 permits them; we refuse them with FORMERR |
//! | at most one OPT, owned by the root, in the additional section | RFC 6891 §6.1.1; BIND answers an OPT elsewhere with FORMERR too |
//! | OPT: CLASS = UDP payload size, TTL = extended RCODE, VERSION, DO | RFC 6891 §6.1.2, §6.1.3 |

use podns_zone::{MAX_LABEL_LEN, MAX_NAME_LEN, RType};

/// Length of the fixed header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;

/// The fixed header of a message (RFC 1035 §4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Query ID.
    pub id: u16,
    /// The 16 flag bits: QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE.
    pub flags: u16,
    /// Number of questions.
    pub qdcount: u16,
    /// Number of answer records.
    pub ancount: u16,
    /// Number of authority records.
    pub nscount: u16,
    /// Number of additional records.
    pub arcount: u16,
}

/// Header flag bits and field masks (RFC 1035 §4.1.1, RFC 2535 for AD/CD).
pub mod flags {
    /// Response.
    pub const QR: u16 = 0x8000;
    /// Operation code mask.
    pub const OPCODE_MASK: u16 = 0x7800;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired.
    pub const RD: u16 = 0x0100;
    /// Recursion available.
    pub const RA: u16 = 0x0080;
    /// Response code mask (low 4 bits; EDNS extends it in OPT).
    pub const RCODE_MASK: u16 = 0x000F;
}

// === impl Header ===

impl Header {
    /// Reads the header; `None` when the message is shorter than 12 octets.
    pub fn parse(msg: &[u8]) -> Option<Self> {
        let h = msg.get(..HEADER_LEN)?;
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(Self {
            id: word(0),
            flags: word(2),
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        })
    }

    /// Whether QR is set (the message is a response).
    pub fn is_response(&self) -> bool {
        self.flags & flags::QR != 0
    }

    /// The OPCODE (0 = QUERY).
    pub fn opcode(&self) -> u8 {
        ((self.flags & flags::OPCODE_MASK) >> 11) as u8
    }
}

/// The question of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question {
    /// Wire length of the name (the lower-cased copy is `name_buf[..name_len]`).
    pub name_len: usize,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Offset of the first octet after the question.
    pub end: usize,
}

/// Why a question could not be read (all answered with FORMERR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuestionError {
    /// The message ends inside the question.
    #[error("question truncated")]
    Truncated,
    /// A label is longer than 63 octets, or uses the reserved 0x40/0x80 label types.
    #[error("bad label")]
    BadLabel,
    /// The name is longer than 255 octets.
    #[error("name too long")]
    NameTooLong,
    /// The question name uses a compression pointer.
    #[error("compression pointer in question")]
    Pointer,
}

/// Reads the question starting at offset 12, lower-casing its name into `name_buf`
/// (RFC 4343: ASCII case only).
pub fn parse_question(
    msg: &[u8],
    name_buf: &mut [u8; MAX_NAME_LEN],
) -> Result<Question, QuestionError> {
    let mut pos = HEADER_LEN;
    let mut len = 0;
    loop {
        let label = *msg.get(pos).ok_or(QuestionError::Truncated)? as usize;
        match label {
            0 => {
                if len + 1 > MAX_NAME_LEN {
                    return Err(QuestionError::NameTooLong);
                }
                name_buf[len] = 0;
                len += 1;
                pos += 1;
                break;
            }
            l if l & 0xC0 == 0xC0 => return Err(QuestionError::Pointer),
            l if l > MAX_LABEL_LEN => return Err(QuestionError::BadLabel),
            l => {
                let bytes = msg.get(pos..pos + 1 + l).ok_or(QuestionError::Truncated)?;
                // Keep room for the root label.
                if len + 1 + l + 1 > MAX_NAME_LEN {
                    return Err(QuestionError::NameTooLong);
                }
                for (dst, src) in name_buf[len..len + 1 + l].iter_mut().zip(bytes) {
                    *dst = src.to_ascii_lowercase();
                }
                len += 1 + l;
                pos += 1 + l;
            }
        }
    }
    let fixed = msg.get(pos..pos + 4).ok_or(QuestionError::Truncated)?;
    Ok(Question {
        name_len: len,
        qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
        end: pos + 4,
    })
}

/// What the request's OPT record says (RFC 6891 §6.1.2, §6.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size (values below 512 are treated as 512 by the caller).
    pub udp_payload: u16,
    /// EDNS version.
    pub version: u8,
    /// DNSSEC OK.
    pub dnssec_ok: bool,
}

/// Why the records after the question could not be read (FORMERR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The message ends inside a record, or bytes follow the last counted record.
    #[error("records truncated or trailing bytes")]
    Malformed,
    /// More than one OPT record (RFC 6891 §6.1.1: "MUST be treated as FORMERR").
    #[error("more than one OPT record")]
    MultipleOpt,
    /// An OPT record not owned by the root name (RFC 6891 §6.1.2: "MUST be 0 (root domain)").
    #[error("OPT not owned by the root")]
    OptOwner,
    /// An OPT record in the answer or authority section (RFC 6891 §6.1.1: it "MAY be placed
    /// anywhere within the additional data section"). Ignoring it would be the alternative;
    /// refusing it, as BIND does, keeps a misplaced OPT from ever counting as EDNS.
    #[error("OPT outside the additional section")]
    OptOutsideAdditional,
}

/// Walks the answer, authority and additional records after the question (ending at `start`)
/// and returns the OPT record's contents, if any. Names there may be compressed; they are only
/// skipped, never followed, so pointers cannot loop.
pub fn scan_records(
    msg: &[u8],
    start: usize,
    header: &Header,
) -> Result<Option<Edns>, RecordsError> {
    let mut pos = start;
    let mut edns = None;
    let total = header.ancount as usize + header.nscount as usize + header.arcount as usize;
    let additional_from = header.ancount as usize + header.nscount as usize;
    for i in 0..total {
        let owner_start = pos;
        pos = skip_name(msg, pos)?;
        let fixed = msg.get(pos..pos + 10).ok_or(RecordsError::Malformed)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        pos += 10;
        if msg.len() < pos + rdlen {
            return Err(RecordsError::Malformed);
        }
        pos += rdlen;
        if rtype == RType::OPT.0 && i < additional_from {
            return Err(RecordsError::OptOutsideAdditional);
        }
        if rtype == RType::OPT.0 {
            if edns.is_some() {
                return Err(RecordsError::MultipleOpt);
            }
            if pos - rdlen - 10 - owner_start != 1 || msg[owner_start] != 0 {
                return Err(RecordsError::OptOwner);
            }
            // RFC 6891 §6.1.3: TTL = EXTENDED-RCODE (8) | VERSION (8) | DO (1) | Z (15).
            edns = Some(Edns {
                udp_payload: class,
                version: (ttl >> 16) as u8,
                dnssec_ok: ttl & 0x8000 != 0,
            });
        }
    }
    if pos != msg.len() {
        return Err(RecordsError::Malformed);
    }
    Ok(edns)
}

/// Skips a possibly compressed name; returns the offset after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, RecordsError> {
    loop {
        let label = *msg.get(pos).ok_or(RecordsError::Malformed)? as usize;
        match label {
            0 => return Ok(pos + 1),
            l if l & 0xC0 == 0xC0 => {
                msg.get(pos + 1).ok_or(RecordsError::Malformed)?;
                return Ok(pos + 2);
            }
            l if l > MAX_LABEL_LEN => return Err(RecordsError::Malformed),
            l => pos += 1 + l,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend_from_slice(extra);
        m
    }

    #[test]
    fn question_is_lower_cased() {
        let m = query(b"\x03WeB\x07Cluster\x05local\x00", &[], 0);
        let mut buf = [0; 255];
        let q = parse_question(&m, &mut buf).unwrap();
        assert_eq!(&buf[..q.name_len], b"\x03web\x07cluster\x05local\x00");
        assert_eq!((q.qtype, q.qclass, q.end), (1, 1, m.len()));
    }

    #[test]
    fn question_errors() {
        let mut buf = [0; 255];
        assert_eq!(
            parse_question(&query(b"\xC0\x0C", &[], 0), &mut buf),
            Err(QuestionError::Pointer)
        );
        let mut long = vec![64];
        long.extend([b'a'; 64]);
        long.push(0);
        assert_eq!(
            parse_question(&query(&long, &[], 0), &mut buf),
            Err(QuestionError::BadLabel)
        );
        let mut too_long = Vec::new();
        for _ in 0..5 {
            too_long.push(60);
            too_long.extend([b'a'; 60]);
        }
        too_long.push(0);
        assert_eq!(
            parse_question(&query(&too_long, &[], 0), &mut buf),
            Err(QuestionError::NameTooLong)
        );
        let m = query(b"\x03web\x00", &[], 0);
        assert_eq!(
            parse_question(&m[..m.len() - 1], &mut buf),
            Err(QuestionError::Truncated)
        );
    }

    #[test]
    fn opt_scan() {
        let opt = [0, 0, 41, 0x04, 0xD0, 0, 1, 0x80, 0, 0, 0];
        let m = query(b"\x00", &opt, 1);
        let h = Header::parse(&m).unwrap();
        let mut buf = [0; 255];
        let q = parse_question(&m, &mut buf).unwrap();
        assert_eq!(
            scan_records(&m, q.end, &h),
            Ok(Some(Edns {
                udp_payload: 1232,
                version: 1,
                dnssec_ok: true
            }))
        );
        let two = [opt, opt].concat();
        let m = query(b"\x00", &two, 2);
        assert_eq!(
            scan_records(&m, q.end, &Header::parse(&m).unwrap()),
            Err(RecordsError::MultipleOpt)
        );
        let mut owned = vec![1, b'a', 0];
        owned.extend_from_slice(&opt[1..]);
        let m = query(b"\x00", &owned, 1);
        assert_eq!(
            scan_records(&m, q.end, &Header::parse(&m).unwrap()),
            Err(RecordsError::OptOwner)
        );
        let mut m = query(b"\x00", &opt, 0);
        m[7] = 1; // ANCOUNT 1: the OPT is in the answer section.
        assert_eq!(
            scan_records(&m, q.end, &Header::parse(&m).unwrap()),
            Err(RecordsError::OptOutsideAdditional)
        );
        let m = query(b"\x00", &[0xff], 0);
        assert_eq!(
            scan_records(&m, q.end, &Header::parse(&m).unwrap()),
            Err(RecordsError::Malformed)
        );
    }
}
