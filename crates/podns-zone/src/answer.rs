//! Prepared answers: the wire bytes of an answer, computed when the zone is built.
//!
//! This module is responsible for encoding RRsets for one known question name so that the query
//! path only copies bytes (design decision 4). A [`PreparedAnswer`] belongs to one (name, type):
//!
//! - the answer section's owner is always the question name, written as the compression pointer
//!   `0xC00C` (the question name starts right after the 12-byte header, RFC 1035 §4.1.4);
//! - other names (additional owners, CNAME/PTR/NS/SOA RDATA) are compressed against label-aligned
//!   suffixes of the question name only. Every pointer therefore targets the question, whose
//!   offsets are fixed, so records can be copied in any order (rotation) and any may be dropped
//!   (truncation) without fixing up offsets;
//! - SRV targets are never compressed (RFC 2782: "name compression is not to be used for this
//!   field"; RFC 3597 §4).
//!
//! Negative answers share one [`Negative`] per zone: the SOA record, whose owner (and the part of
//! MNAME and RNAME in the zone) the query path writes as pointers to where the zone's apex
//! starts inside the question, and whose RNAME may point into its MNAME.

use crate::names::{Name, suffix_offset};
use crate::records::{RData, RRset, RType};

/// The question name starts at offset 12 (RFC 1035 §4.1.1: the header is 12 octets).
const QUESTION_OFFSET: usize = 12;
/// The most record bytes one answer may hold: a TCP message is at most 65,535 octets (RFC 1035
/// §4.2.2), less the header, the longest question (255 + 4) and an OPT record (11).
const MAX_PREPARED_LEN: usize = 65535 - 12 - 259 - 11;
/// RFC 1035 §3.2.4: class IN.
const CLASS_IN: u16 = 1;
/// The first byte of a single-record answer: its owner is the pointer `0xC00C`.
pub(crate) const SINGLE: u8 = 0xC0;

/// The length of the prepared answer `bytes` starts with (either form, [`PreparedAnswer`]).
#[inline(always)]
pub(crate) fn stored_len(bytes: &[u8]) -> usize {
    let u16_at = |i: usize| match bytes.get(i..i + 2) {
        Some(&[high, low]) => usize::from(u16::from_be_bytes([high, low])),
        _ => 0,
    };
    match bytes.first() {
        // Owner pointer, TYPE, CLASS, TTL, RDLENGTH, then RDATA.
        Some(&SINGLE) => 12 + u16_at(10),
        _ => {
            let records = u16_at(2);
            2 * (3 + records) + u16_at(2 * (2 + records))
        }
    }
}

/// The answer and additional records of one (name, type), in wire form.
///
/// A borrowed view over bytes that live inside the snapshot's per-name node (`snapshot.rs`
/// keeps each name's node, with its type table and every prepared answer back to back, in its
/// shard's one buffer, which is most of what makes the snapshot compact). Two forms, told
/// apart by the first byte:
///
/// - *single*: one answer record and nothing additional (a pod's A, a PTR: most answers of a
///   zone) is the record alone. It starts with the owner pointer `0xC00C` (`SINGLE` is its
///   first byte); its counts and bounds would have been 8 bytes on a 16-byte A record;
/// - *general*: `answers: u16`, `records: u16`, `records + 1` record bounds (`u16`, relative
///   to the first record, the last one being the total length), then the records. Integers are
///   big-endian, so the first byte is the high byte of a count below `0x40` (an answer holds
///   fewer than 5,500 records, `MAX_PREPARED_LEN`).
///
/// Either way an answer's length follows from its first bytes (`stored_len`). A `Copy` pair
/// of pointer and length, so handing one out costs what a `&[u8]` costs, without any `unsafe`
/// cast.
///
/// An answer may be stored once for two question names (`snapshot.rs`: the SRV answer of
/// `<svc>` is the one of `_<port>._<proto>.<svc>` when they hold the same records): `shift` is
/// then how many bytes longer the asked name is than the one the answer was prepared for (here
/// negative), and every compression pointer of an additional owner moves by that much
/// ([`PreparedAnswer::write_additional`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PreparedAnswer<'a> {
    bytes: &'a [u8],
    shift: i16,
}

impl std::fmt::Debug for PreparedAnswer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedAnswer")
            .field("answers", &self.answer_count())
            .field("additional", &self.additional_count())
            .field("len", &self.records().len())
            .finish()
    }
}

// === impl PreparedAnswer ===

impl<'a> PreparedAnswer<'a> {
    /// Views bytes written by [`PreparedAnswer::prepare`] as a prepared answer.
    pub(crate) fn from_bytes(bytes: &'a [u8]) -> Self {
        debug_assert_eq!(bytes.len(), stored_len(bytes), "one whole prepared answer");
        Self { bytes, shift: 0 }
    }

    /// This answer, for a question name with `shift` more bytes of labels in front of the
    /// name it was prepared for (fewer, when negative).
    pub(crate) fn shifted(self, shift: i16) -> Self {
        Self { shift, ..self }
    }

    /// The prepared bytes as [`PreparedAnswer::prepare`] would have written them for the
    /// asked name (the shift applied): what a shared answer is checked against when built.
    pub(crate) fn write_prepared(&self, out: &mut Vec<u8>) {
        let head = self.bytes.len() - self.records().len();
        out.extend_from_slice(&self.bytes[..head]);
        out.extend_from_slice(&self.records()[..self.answer_len()]);
        for i in 0..self.additional_count() {
            self.write_additional(i, out);
        }
    }

    /// Bytes of the records as stored (the rest is their counts and bounds).
    pub(crate) fn stored_records_len(&self) -> usize {
        self.records().len()
    }

    fn is_single(&self) -> bool {
        self.bytes[0] == SINGLE
    }

    /// The general form's `i`-th integer.
    fn u16_at(&self, i: usize) -> usize {
        u16::from_be_bytes([self.bytes[2 * i], self.bytes[2 * i + 1]]) as usize
    }

    /// Total number of records (answer and additional).
    fn record_count(&self) -> usize {
        if self.is_single() { 1 } else { self.u16_at(1) }
    }

    /// Start of record `i` (or the end, for `i == record_count()`) within `records()`.
    fn bound(&self, i: usize) -> usize {
        match (self.is_single(), i) {
            (true, 0) => 0,
            (true, _) => self.bytes.len(),
            (false, _) => self.u16_at(2 + i),
        }
    }

    fn records(&self) -> &'a [u8] {
        if self.is_single() {
            return self.bytes;
        }
        &self.bytes[2 * (3 + self.record_count())..]
    }

    /// Number of records in the answer section.
    pub fn answer_count(&self) -> usize {
        if self.is_single() { 1 } else { self.u16_at(0) }
    }

    /// Number of records for the additional section.
    pub fn additional_count(&self) -> usize {
        self.record_count() - self.answer_count()
    }

    /// Byte length of the whole answer section.
    pub fn answer_len(&self) -> usize {
        self.bound(self.answer_count())
    }

    /// The answer section rotated left by `rotation % answer_count()` records, as two slices to
    /// write one after the other. RFC 2181 §5: the order of records in an RRset carries no
    /// meaning, so any rotation is a correct answer.
    pub fn rotated_answers(&self, rotation: u32) -> (&'a [u8], &'a [u8]) {
        let n = self.answer_count();
        let end = self.answer_len();
        let records = self.records();
        if n <= 1 {
            return (&records[..end], &[]);
        }
        let split = self.bound(rotation as usize % n);
        (&records[split..end], &records[..split])
    }

    /// Additional record `i` (`i < additional_count()`) as stored; its length is what
    /// [`PreparedAnswer::write_additional`] writes.
    pub fn additional(&self, i: usize) -> &'a [u8] {
        let i = self.answer_count() + i;
        &self.records()[self.bound(i)..self.bound(i + 1)]
    }

    /// Appends additional record `i` (`i < additional_count()`): the stored bytes, with the
    /// compression pointer that ends the owner moved by the shift (no pointer, no change; the
    /// builder shares an answer only when this gives the bytes it would have prepared).
    pub fn write_additional(&self, i: usize, out: &mut Vec<u8>) {
        let record = self.additional(i);
        let at = out.len();
        out.extend_from_slice(record);
        if self.shift == 0 {
            return;
        }
        let mut p = 0;
        while let Some(&len) = record.get(p) {
            if len & 0xC0 == 0xC0 {
                let Some(&low) = record.get(p + 1) else {
                    return;
                };
                let target = (u16::from(len & 0x3F) << 8 | u16::from(low))
                    .wrapping_add_signed(self.shift)
                    & 0x3FFF;
                out[at + p..at + p + 2].copy_from_slice(&(0xC000 | target).to_be_bytes());
                return;
            }
            if len == 0 {
                return;
            }
            p += 1 + len as usize;
        }
    }

    /// Appends the prepared form of `answer` (whose owner is `qname`) and `additional` for the
    /// question `qname` to `out`.
    #[cfg(test)]
    pub(crate) fn prepare(out: &mut Vec<u8>, qname: &Name, answer: &RRset, additional: &[&RRset]) {
        Self::prepare_with(
            out,
            &mut Vec::new(),
            &mut Vec::new(),
            qname,
            answer,
            additional,
        );
    }

    /// [`PreparedAnswer::prepare`] with reused buffers for the records and their bounds
    /// (cleared first), so that preparing many answers allocates nothing once they have grown.
    pub(crate) fn prepare_with(
        out: &mut Vec<u8>,
        bytes: &mut Vec<u8>,
        bounds: &mut Vec<u16>,
        qname: &Name,
        answer: &RRset,
        additional: &[&RRset],
    ) {
        let q = qname.as_wire();
        let mut p = Preparing::new(bytes, bounds);
        for rdata in &answer.rdata {
            p.answer(|b| write_record_tail(b, answer.rtype, answer.ttl, rdata, Some(q)));
        }
        p.end_answers();
        for set in additional {
            for rdata in &set.rdata {
                p.additional(set.name.as_wire(), q, |b| {
                    write_record_tail(b, set.rtype, set.ttl, rdata, Some(q))
                });
            }
        }
        p.finish(out);
    }
}

/// One prepared answer being written, record by record: the framing and the size limit of
/// [`PreparedAnswer::prepare_with`], shared with the builder's direct encoding of a Service's
/// own names (`builder/direct.rs`), which writes RDATA from the view instead of [`RData`].
pub(crate) struct Preparing<'b> {
    bytes: &'b mut Vec<u8>,
    bounds: &'b mut Vec<u16>,
    /// Records of the answer section, once it is closed.
    answers: Option<u16>,
    /// A record did not fit: no further answer (and, in the additional section, no further
    /// record at all) is written.
    answers_full: bool,
    full: bool,
}

impl<'b> Preparing<'b> {
    /// Starts an answer in the reused buffers (cleared).
    pub(crate) fn new(bytes: &'b mut Vec<u8>, bounds: &'b mut Vec<u16>) -> Self {
        bytes.clear();
        bounds.clear();
        Self {
            bytes,
            bounds,
            answers: None,
            answers_full: false,
            full: false,
        }
    }

    /// Appends an answer record: its owner is the question, `tail` writes TYPE to RDATA.
    pub(crate) fn answer(&mut self, tail: impl FnOnce(&mut Vec<u8>)) {
        debug_assert!(self.answers.is_none());
        if self.answers_full {
            return;
        }
        self.answers_full = !self.record(|b| {
            b.extend_from_slice(&[0xC0, QUESTION_OFFSET as u8]);
            tail(b);
        });
    }

    /// Closes the answer section.
    pub(crate) fn end_answers(&mut self) {
        self.answers = Some(self.bounds.len() as u16);
    }

    /// Whether further additional records would be dropped anyway.
    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    /// Appends an additional record of owner `owner` (compressed against `qname`).
    pub(crate) fn additional(
        &mut self,
        owner: &[u8],
        qname: &[u8],
        tail: impl FnOnce(&mut Vec<u8>),
    ) {
        self.additional_compressed_with(|b| write_name(b, owner, Some(qname)), tail);
    }

    /// [`Preparing::additional`] with the owner already compressed (the caller knows which
    /// suffix of the question it shares).
    pub(crate) fn additional_compressed(&mut self, owner: &[u8], tail: impl FnOnce(&mut Vec<u8>)) {
        self.additional_compressed_with(|b| b.extend_from_slice(owner), tail);
    }

    fn additional_compressed_with(
        &mut self,
        owner: impl FnOnce(&mut Vec<u8>),
        tail: impl FnOnce(&mut Vec<u8>),
    ) {
        debug_assert!(self.answers.is_some());
        if self.full {
            return;
        }
        self.full = !self.record(|b| {
            owner(b);
            tail(b);
        });
    }

    /// Appends the record `write` writes, unless the answer would then be too long; whether
    /// it was kept.
    fn record(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        let start = self.bytes.len();
        write(self.bytes);
        if self.bytes.len() > MAX_PREPARED_LEN {
            // Not even TCP could carry more (RFC 1035 §4.2.2: 16-bit length); the records
            // that fit are still a correct, if partial, answer.
            self.bytes.truncate(start);
            return false;
        }
        self.bounds.push(start as u16);
        true
    }

    /// Appends the prepared answer to `out`.
    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        let answers = self.answers.unwrap_or(self.bounds.len() as u16);
        let records = self.bounds.len() as u16;
        if (answers, records) == (1, 1) {
            // The single form: the answer record (its first byte is `SINGLE`).
            out.extend_from_slice(self.bytes);
            return;
        }
        self.bounds.push(self.bytes.len() as u16);
        out.reserve(4 + 2 * self.bounds.len() + self.bytes.len());
        out.extend_from_slice(&answers.to_be_bytes());
        out.extend_from_slice(&records.to_be_bytes());
        for b in self.bounds.iter() {
            out.extend_from_slice(&b.to_be_bytes());
        }
        out.extend_from_slice(self.bytes);
    }
}

/// The authority section of a negative answer in one zone: its SOA record (RFC 2308 §3: "the
/// authority section ... SHOULD contain the SOA record of the zone"; §5: its TTL is the minimum
/// of the SOA's TTL and MINIMUM field).
///
/// The SOA's names are compressed as NSD and Knot compress them (RFC 1035 §4.1.4 allows it in
/// SOA RDATA): the owner, and the part of MNAME and RNAME that lies in the zone, point at the
/// apex inside the question; RNAME's other labels may point into MNAME. Those pointers depend on
/// the question's length, so they are written per query. A negative answer in the cluster zone
/// is 26 octets shorter than with the names in full, and negative answers are most of what a
/// cluster's resolvers get (search-path misses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negative {
    /// Type, class, TTL, RDLENGTH and RDATA of the SOA record, with a placeholder where each
    /// of [`Negative::pointers`] goes.
    tail: Box<[u8]>,
    /// The compression pointers inside `tail` (at most two: MNAME's and RNAME's); entries
    /// past `pointer_count` are unused.
    pointers: [SoaPointer; 2],
    pointer_count: u8,
    /// Wire length of the zone apex name.
    apex_len: usize,
    /// NXDOMAIN here may go to upstream resolvers instead (CoreDNS `fallthrough`).
    falls_through: bool,
}

/// One compression pointer of a [`Negative`]'s SOA record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SoaPointer {
    /// Where in the tail the pointer goes.
    at: u16,
    /// What it points at: this many bytes into the apex inside the question, or (`in_tail`)
    /// into the tail itself (MNAME's labels).
    offset: u16,
    in_tail: bool,
}

// === impl Negative ===

impl Negative {
    pub(crate) fn new(soa: &RRset, ttl: u32, falls_through: bool) -> Self {
        let apex = soa.name.as_wire();
        let mut tail = Vec::new();
        let mut pointers = [SoaPointer::default(); 2];
        let mut pointer_count = 0;
        match &soa.rdata[0] {
            RData::Soa(rdata) => write_tail_with(&mut tail, RType::SOA, ttl, |out| {
                // `out` is the tail: its length is where in the tail the next byte goes.
                let mut compressed = |out: &mut Vec<u8>, literal: &[u8], offset: usize, in_tail| {
                    out.extend_from_slice(literal);
                    pointers[pointer_count] = SoaPointer {
                        at: out.len() as u16,
                        offset: offset as u16,
                        in_tail,
                    };
                    pointer_count += 1;
                    out.extend_from_slice(&[0xC0, 0]);
                };
                let (mname, rname) = (rdata.mname.as_wire(), rdata.rname.as_wire());
                let mname_at = out.len();
                let mname_literal = match shared_suffix(mname, apex) {
                    Some((literal, into_apex)) => {
                        compressed(out, &mname[..literal], into_apex, false);
                        literal
                    }
                    None => {
                        out.extend_from_slice(mname);
                        mname.len()
                    }
                };
                // RNAME: its longest suffix that is one of the apex's, or one of MNAME's
                // written out in full above.
                let in_apex = shared_suffix(rname, apex)
                    .map(|(literal, into_apex)| (literal, into_apex, false));
                // (A shorter suffix lies further into MNAME: if the longest one starts in
                // MNAME's pointer, so do all.)
                let in_mname = shared_suffix(rname, mname)
                    .filter(|&(_, j)| j < mname_literal)
                    .map(|(literal, j)| (literal, mname_at + j, true));
                match [in_apex, in_mname]
                    .into_iter()
                    .flatten()
                    .min_by_key(|c| c.0)
                {
                    Some((literal, offset, in_tail)) => {
                        compressed(out, &rname[..literal], offset, in_tail);
                    }
                    None => out.extend_from_slice(rname),
                }
                for v in [
                    rdata.serial,
                    rdata.refresh,
                    rdata.retry,
                    rdata.expire,
                    rdata.minimum,
                ] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }),
            other => write_record_tail(&mut tail, RType::SOA, ttl, other, None),
        }
        Self {
            tail: tail.into_boxed_slice(),
            pointers,
            pointer_count: pointer_count as u8,
            apex_len: apex.len(),
            falls_through,
        }
    }

    /// Whether an NXDOMAIN with this authority may be answered by upstream resolvers instead
    /// (the zone is under a `fallthrough` name).
    pub fn falls_through(&self) -> bool {
        self.falls_through
    }

    /// Byte length of the SOA record written by [`Negative::write`].
    pub fn len(&self) -> usize {
        2 + self.tail.len()
    }

    /// Always false: an SOA record is never empty (clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the SOA record to the message in `out` (which starts with the header), right
    /// after a question name of wire length `qname_len` (which must lie in this zone) and
    /// whatever follows it.
    pub fn write(&self, qname_len: usize, out: &mut Vec<u8>) {
        let apex = QUESTION_OFFSET + qname_len - self.apex_len;
        out.extend_from_slice(&(0xC000 | apex as u16).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(&self.tail);
        for p in &self.pointers[..usize::from(self.pointer_count)] {
            let base = if p.in_tail { start } else { apex };
            let pointer = 0xC000 | (base + usize::from(p.offset)) as u16;
            let at = start + usize::from(p.at);
            out[at..at + 2].copy_from_slice(&pointer.to_be_bytes());
        }
    }
}

/// The longest label-aligned suffix of `name`, short of the root, that is also one of `other`:
/// how many bytes of `name` come before it, and where it starts inside `other`.
fn shared_suffix(name: &[u8], other: &[u8]) -> Option<(usize, usize)> {
    labels_of(name).find_map(|i| Some((i, suffix_offset(other, &name[i..])?)))
}

/// Where each label of the wire name `name` starts, from the first; the root is left out.
fn labels_of(name: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let len = usize::from(*name.get(i)?);
        if len == 0 {
            return None;
        }
        let at = i;
        i += 1 + len;
        Some(at)
    })
}

/// Writes `name`, compressed against the longest label-aligned suffix it shares with `qname`
/// (RFC 1035 §4.1.4), or uncompressed when `qname` is `None`.
pub(crate) fn write_name(out: &mut Vec<u8>, wire: &[u8], qname: Option<&[u8]>) {
    match qname.and_then(|qname| shared_suffix(wire, qname)) {
        Some((i, offset)) => {
            out.extend_from_slice(&wire[..i]);
            out.extend_from_slice(&(0xC000 | (QUESTION_OFFSET + offset) as u16).to_be_bytes());
        }
        None => out.extend_from_slice(wire),
    }
}

/// Writes TYPE, CLASS, TTL, RDLENGTH and, by `rdata`, RDATA (RFC 1035 §4.1.3).
#[inline]
pub(crate) fn write_tail_with(
    out: &mut Vec<u8>,
    rtype: RType,
    ttl: u32,
    rdata: impl FnOnce(&mut Vec<u8>),
) {
    out.extend_from_slice(&rtype.0.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    rdata(out);
    let rdlen = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

/// Writes TYPE, CLASS, TTL, RDLENGTH and RDATA (RFC 1035 §4.1.3).
fn write_record_tail(
    out: &mut Vec<u8>,
    rtype: RType,
    ttl: u32,
    rdata: &RData,
    qname: Option<&[u8]>,
) {
    write_tail_with(out, rtype, ttl, |out| match rdata {
        RData::A(ip) => out.extend_from_slice(&ip.octets()),
        RData::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
        // RFC 1035 §4.1.4 / RFC 3597 §4: compression is allowed in the RDATA of the
        // well-known types NS, CNAME, PTR and SOA.
        RData::Ns(n) | RData::Cname(n) | RData::Ptr(n) => write_name(out, n.as_wire(), qname),
        RData::Txt(text) => {
            out.push(text.len() as u8);
            out.extend_from_slice(text);
        }
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => {
            out.extend_from_slice(&priority.to_be_bytes());
            out.extend_from_slice(&weight.to_be_bytes());
            out.extend_from_slice(&port.to_be_bytes());
            // RFC 2782: "name compression is not to be used for this field".
            out.extend_from_slice(target.as_wire());
        }
        RData::Soa(soa) => {
            write_name(out, soa.mname.as_wire(), qname);
            write_name(out, soa.rname.as_wire(), qname);
            for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, rtype: RType, rdata: Vec<RData>) -> RRset {
        RRset {
            name: Name::from_dotted(name).unwrap(),
            rtype,
            ttl: 5,
            rdata,
        }
    }

    fn a(last: u8) -> RData {
        RData::A([10, 0, 0, last].into())
    }

    #[test]
    fn one_record_without_additional_is_stored_alone() {
        let q = Name::from_dotted("p.s.ns.svc.cluster.local").unwrap();
        let mut out = Vec::new();
        PreparedAnswer::prepare(
            &mut out,
            &q,
            &set("p.s.ns.svc.cluster.local", RType::A, vec![a(1)]),
            &[],
        );
        assert_eq!(out.len(), 16, "the A record alone");
        assert_eq!(out[0], SINGLE);
        assert_eq!(stored_len(&out), out.len());
        let p = PreparedAnswer::from_bytes(&out);
        assert_eq!(
            (p.answer_count(), p.additional_count(), p.answer_len()),
            (1, 0, 16)
        );
        assert_eq!(p.rotated_answers(7), (&out[..], &[][..]));
        let mut again = Vec::new();
        p.write_prepared(&mut again);
        assert_eq!(again, out);
    }

    #[test]
    fn more_records_or_additional_ones_take_the_general_form() {
        let q = Name::from_dotted("s.ns.svc.cluster.local").unwrap();
        let two = set("s.ns.svc.cluster.local", RType::A, vec![a(1), a(2)]);
        let mut out = Vec::new();
        PreparedAnswer::prepare(&mut out, &q, &two, &[]);
        assert!(out[0] < 0x40, "the high byte of the answer count");
        assert_eq!(stored_len(&out), out.len());
        let p = PreparedAnswer::from_bytes(&out);
        assert_eq!(
            (p.answer_count(), p.additional_count(), p.answer_len()),
            (2, 0, 32)
        );
        let (first, second) = p.rotated_answers(1);
        assert_eq!(
            [first, second].concat(),
            [&out[out.len() - 16..], &out[out.len() - 32..out.len() - 16]].concat()
        );

        let glue = set("t.s.ns.svc.cluster.local", RType::A, vec![a(3)]);
        let cname = set(
            "s.ns.svc.cluster.local",
            RType::CNAME,
            vec![RData::Cname(glue.name.clone())],
        );
        out.clear();
        PreparedAnswer::prepare(&mut out, &q, &cname, &[&glue]);
        assert_eq!(stored_len(&out), out.len());
        let p = PreparedAnswer::from_bytes(&out);
        assert_eq!((p.answer_count(), p.additional_count()), (1, 1));
        assert_eq!(
            p.additional(0).len(),
            2 + 2 + 10 + 4,
            "label, pointer, tail, address"
        );
    }

    /// The message a negative answer from `negative` makes for `qname`: header, question, SOA.
    fn negative_message(negative: &Negative, qname: &str) -> (Vec<u8>, hickory_proto::op::Message) {
        let q = Name::from_dotted(qname).unwrap();
        let mut out = vec![0x12, 0x34, 0x84, 0x03, 0, 1, 0, 0, 0, 1, 0, 0];
        out.extend_from_slice(q.as_wire());
        out.extend_from_slice(&[0, 1, 0, 1]);
        let before = out.len();
        negative.write(q.as_wire().len(), &mut out);
        assert_eq!(out.len() - before, negative.len());
        let message = hickory_proto::op::Message::from_vec(&out).unwrap();
        (out, message)
    }

    fn soa(apex: &str, mname: &str, rname: &str) -> RRset {
        set(
            apex,
            RType::SOA,
            vec![RData::Soa(Box::new(crate::Soa {
                mname: Name::from_dotted(mname).unwrap(),
                rname: Name::from_dotted(rname).unwrap(),
                serial: 7,
                refresh: 7200,
                retry: 1800,
                expire: 86400,
                minimum: 5,
            }))],
        )
    }

    #[test]
    fn a_negative_answer_points_its_soa_names_into_the_apex_of_the_question() {
        let set = soa(
            "cluster.local",
            "ns.dns.cluster.local",
            "hostmaster.cluster.local",
        );
        let negative = Negative::new(&set, 5, false);
        for qname in [
            "cluster.local",
            "nope.cluster.local",
            "web.default.svc.cluster.local.svc.cluster.local",
        ] {
            let (wire, message) = negative_message(&negative, qname);
            let [record] = &message.authorities[..] else {
                panic!("one SOA for {qname}: {message:?}");
            };
            assert_eq!(record.name.to_ascii(), "cluster.local.");
            assert_eq!(record.ttl, 5);
            let hickory_proto::rr::RData::SOA(got) = &record.data else {
                panic!("an SOA for {qname}: {record:?}");
            };
            assert_eq!(got.mname.to_ascii(), "ns.dns.cluster.local.");
            assert_eq!(got.rname.to_ascii(), "hostmaster.cluster.local.");
            assert_eq!((got.serial, got.minimum), (7, 5));
            // Owner pointer, 10 bytes of type to RDLENGTH, "ns.dns" and a pointer,
            // "hostmaster" and a pointer, five counters: NSD's and Knot's length.
            let q = Name::from_dotted(qname).unwrap().as_wire().len();
            assert_eq!(wire.len(), 12 + q + 4 + 2 + 10 + 9 + 13 + 20, "{qname}");
        }
    }

    #[test]
    fn soa_names_outside_the_zone_point_where_they_can() {
        // A reverse zone's primary lies in the cluster zone: MNAME goes whole, and RNAME
        // points into it when they share a suffix, or into the apex (here "arpa").
        let qname = "4.3.2.10.in-addr.arpa";
        let q = Name::from_dotted(qname).unwrap().as_wire().len();
        for (rname, rname_len) in [
            ("hostmaster.cluster.local", 11 + 2),
            ("hostmaster.arpa", 11 + 2),
            ("admin.example.org", 19),
        ] {
            let set = soa("10.in-addr.arpa", "ns.dns.cluster.local", rname);
            let negative = Negative::new(&set, 5, false);
            let (wire, message) = negative_message(&negative, qname);
            let hickory_proto::rr::RData::SOA(got) = &message.authorities[0].data else {
                panic!("an SOA: {message:?}");
            };
            assert_eq!(got.mname.to_ascii(), "ns.dns.cluster.local.");
            assert_eq!(got.rname.to_ascii(), format!("{rname}."));
            assert_eq!(
                wire.len(),
                12 + q + 4 + 2 + 10 + 22 + rname_len + 20,
                "{rname}"
            );
        }
    }
}
