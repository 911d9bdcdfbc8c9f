//! Response-rate limiting (RRL): a token bucket per client prefix, for UDP only.
//!
//! This module is responsible for deciding, per UDP response, whether to send it, drop it or
//! *slip* it (send a tiny TC=1 answer instead), so that podns cannot be used to flood a
//! spoofed victim with answers. It leaves the wire to [`crate::query`] and the socket to
//! [`crate::udp`]; TCP is never limited (a TCP client has completed a handshake, so its source
//! address is real, and TCP is where a slipped client goes).
//!
//! Design (after BIND's and NSD's RRL):
//! - **Per prefix, not per address**: clients are grouped by their /24 (IPv4) or /56 (IPv6),
//!   [`DEFAULT_IPV4_PREFIX`] and [`DEFAULT_IPV6_PREFIX`], so an attacker spoofing many
//!   addresses of one victim network shares one bucket. IPv4-mapped IPv6 sources count as IPv4.
//! - **A fixed-size table per UDP worker**: [`TABLE_ENTRIES`] slots, allocated once when the
//!   worker starts; [`RateLimiter::check`] never allocates and takes no lock. SO_REUSEPORT
//!   hashes a client's address and port to one worker, so a client's queries meet one table;
//!   the price is that a prefix spreading its queries over many source ports can reach up to
//!   `workers × responses_per_second`.
//! - **Two-way set associative, keyed by a per-process random hash** (SipHash from
//!   [`std::hash::RandomState`]), so which prefixes collide cannot be predicted from outside.
//!   A new prefix takes the less recently used slot of its pair and starts with a full
//!   bucket: under a flood of more prefixes than slots the limiter forgets some, and then
//!   errs on the side of answering.
//! - **Token bucket**: `responses_per_second` tokens per second, at most one second's worth
//!   (the burst); each response takes one token.
//! - **Slip**: of the responses suppressed for a prefix, every `slip`-th is sent as header +
//!   question with TC=1 (no larger than the query), so a real client behind a limited prefix
//!   retries over TCP and is served there; the others are dropped. `slip = 0` never slips,
//!   `1` slips every suppressed response. BIND's and NSD's default is 2.
//!
//! Off by default (`responses_per_second = 0`): pods are individually addressed and reach the
//! cluster DNS from inside the cluster, where a spoofed source is rare, and CoreDNS (what
//! podns replaces) has no RRL; a default limit would throttle legitimate heavy clients such
//! as a node-local cache or a busy batch pod. Turn it on where podns is reachable from
//! networks you do not control.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::time::Instant;

use crate::wire::HEADER_LEN;

/// Slots in each worker's table (two-way sets; 40 octets each, so 320 KiB per worker).
pub const TABLE_ENTRIES: usize = 8192;
/// IPv4 clients are grouped by this prefix length (BIND's `ipv4-prefix-length` default).
pub const DEFAULT_IPV4_PREFIX: u8 = 24;
/// IPv6 clients are grouped by this prefix length (BIND's `ipv6-prefix-length` default).
pub const DEFAULT_IPV6_PREFIX: u8 = 56;
/// Suppressed responses per slipped one by default (BIND's and NSD's `slip` default).
pub const DEFAULT_SLIP: u32 = 2;

/// Thousandths of a token: the bucket's unit, so slow rates refill smoothly.
const MILLI: u64 = 1000;

/// Response-rate limiting settings (UDP only); see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Responses per second per client prefix, and the burst (one second's worth). 0 turns
    /// rate limiting off, the default.
    pub responses_per_second: u32,
    /// Every `slip`-th suppressed response is sent as a tiny TC=1 answer; 0 never slips.
    /// Default 2.
    pub slip: u32,
    /// IPv4 prefix length clients are grouped by (0..=32). Default 24.
    pub ipv4_prefix: u8,
    /// IPv6 prefix length clients are grouped by (0..=128). Default 56.
    pub ipv6_prefix: u8,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            responses_per_second: 0,
            slip: DEFAULT_SLIP,
            ipv4_prefix: DEFAULT_IPV4_PREFIX,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }
}

impl RateLimitConfig {
    /// Whether rate limiting is on.
    pub fn enabled(&self) -> bool {
        self.responses_per_second > 0
    }
}

/// What to do with one UDP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: send it.
    Send,
    /// Over the rate: send a TC=1 answer with no records instead ([`slip`]).
    Slip,
    /// Over the rate: send nothing.
    Drop,
}

/// One client prefix's bucket.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    /// The masked prefix (IPv4 as IPv4-mapped IPv6); meaningful only when `used`.
    key: u128,
    /// When the bucket was last refilled, in nanoseconds since the limiter's epoch.
    last: u64,
    /// Tokens left, in thousandths.
    tokens: u64,
    /// Responses suppressed so far (for the slip count).
    suppressed: u32,
    /// Whether the slot holds a prefix.
    used: bool,
}

/// One UDP worker's rate limiter: a fixed table of token buckets; see the module docs.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    /// Most tokens a bucket holds, in thousandths (one second's worth).
    capacity: u64,
    table: Box<[Entry]>,
    hasher: RandomState,
    epoch: Instant,
}

// === impl RateLimiter ===

impl RateLimiter {
    /// A limiter with an empty table; `None` when `config` turns rate limiting off.
    pub fn new(config: RateLimitConfig) -> Option<Self> {
        if !config.enabled() {
            return None;
        }
        Some(Self {
            config,
            capacity: u64::from(config.responses_per_second) * MILLI,
            table: vec![Entry::default(); TABLE_ENTRIES].into_boxed_slice(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
        })
    }

    /// Decides about one response to `client` at `now`, and counts it. No allocation, no lock.
    pub fn check(&mut self, client: IpAddr, now: Instant) -> Verdict {
        let key = self.prefix_key(client);
        let now =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let set = (self.hasher.hash_one(key) as usize % TABLE_ENTRIES) & !1;
        let slot = match (self.table[set], self.table[set + 1]) {
            (a, _) if a.used && a.key == key => set,
            (_, b) if b.used && b.key == key => set + 1,
            (a, b) => {
                // A new prefix: replace the empty or the less recently used slot.
                let victim = if !a.used || (b.used && a.last <= b.last) {
                    set
                } else {
                    set + 1
                };
                self.table[victim] = Entry {
                    key,
                    last: now,
                    tokens: self.capacity,
                    suppressed: 0,
                    used: true,
                };
                victim
            }
        };
        let rate = u64::from(self.config.responses_per_second);
        let entry = &mut self.table[slot];
        // Refill: `rate` tokens per second = rate × 1000 thousandths per 10⁹ ns. The update
        // of `last` waits until at least one thousandth has accrued, so nothing is lost to
        // rounding when responses come faster than that.
        let elapsed = u128::from(now.saturating_sub(entry.last));
        let accrued = elapsed * u128::from(rate) / 1_000_000;
        if accrued > 0 {
            let tokens = u128::from(entry.tokens) + accrued;
            entry.tokens = tokens.min(u128::from(self.capacity)) as u64;
            entry.last = now;
        }
        if entry.tokens >= MILLI {
            entry.tokens -= MILLI;
            return Verdict::Send;
        }
        entry.suppressed = entry.suppressed.wrapping_add(1);
        match self.config.slip {
            0 => Verdict::Drop,
            n if entry.suppressed.is_multiple_of(n) => Verdict::Slip,
            _ => Verdict::Drop,
        }
    }

    /// `client` masked to its prefix, as an IPv6 number (IPv4 and IPv4-mapped IPv6 as
    /// `::ffff:a.b.c.0`, so the two forms of one IPv4 client share a bucket).
    fn prefix_key(&self, client: IpAddr) -> u128 {
        match client.to_canonical() {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4) & mask32(self.config.ipv4_prefix);
                (0xFFFF_u128 << 32) | u128::from(bits)
            }
            IpAddr::V6(v6) => u128::from(v6) & mask128(self.config.ipv6_prefix),
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

fn mask128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

/// Turns the response in `out` into a slip: header and question only, TC=1, the RCODE kept,
/// no answer, authority or additional records (so not even an OPT: the answer is never
/// larger than the query it answers). `question_len` is the question's wire length (QNAME,
/// QTYPE, QCLASS) when the response echoes one.
pub fn slip(out: &mut Vec<u8>, question_len: Option<usize>) {
    if out.len() < HEADER_LEN {
        return;
    }
    let qd = question_len.is_some_and(|len| HEADER_LEN + len <= out.len());
    let len = HEADER_LEN + if qd { question_len.unwrap_or(0) } else { 0 };
    out.truncate(len);
    // TC is bit 9 of the flags word: bit 1 of octet 2 (RFC 1035 §4.1.1).
    out[2] |= 0x02;
    out[4..6].copy_from_slice(&u16::from(qd).to_be_bytes());
    out[6..12].fill(0);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(rate: u32, slip: u32) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            responses_per_second: rate,
            slip,
            ..RateLimitConfig::default()
        })
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn off_by_default() {
        assert!(!RateLimitConfig::default().enabled());
        assert!(RateLimiter::new(RateLimitConfig::default()).is_none());
    }

    #[test]
    fn burst_then_slip_every_second_then_refill() {
        let mut l = limiter(10, 2);
        let t0 = l.epoch;
        let verdicts: Vec<Verdict> = (0..16).map(|_| l.check(ip("192.0.2.1"), t0)).collect();
        assert!(
            verdicts[..10].iter().all(|v| *v == Verdict::Send),
            "{verdicts:?}"
        );
        assert_eq!(
            verdicts[10..],
            [
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip
            ]
        );
        // 10 per second: one token back after 100 ms, not before.
        assert_ne!(
            l.check(ip("192.0.2.1"), t0 + Duration::from_millis(99)),
            Verdict::Send
        );
        assert_eq!(
            l.check(ip("192.0.2.1"), t0 + Duration::from_millis(200)),
            Verdict::Send
        );
        // Refill stops at one second's worth.
        let later = t0 + Duration::from_secs(60);
        let sent = (0..30)
            .filter(|_| l.check(ip("192.0.2.1"), later) == Verdict::Send)
            .count();
        assert_eq!(sent, 10);
    }

    #[test]
    fn slow_rates_refill_without_rounding_loss() {
        let mut l = limiter(1, 0);
        let t0 = l.epoch;
        assert_eq!(l.check(ip("192.0.2.1"), t0), Verdict::Send);
        // Asked every 100 µs (less than a thousandth of a token each): still one per second.
        let mut sent = 0;
        for i in 1..=20_000u64 {
            if l.check(ip("192.0.2.1"), t0 + Duration::from_micros(100 * i)) == Verdict::Send {
                sent += 1;
            }
        }
        assert_eq!(sent, 2, "two seconds at 1/s");
    }

    #[test]
    fn prefixes_share_a_bucket_and_others_do_not() {
        let mut l = limiter(2, 0);
        let t0 = l.epoch;
        assert_eq!(l.check(ip("198.51.100.1"), t0), Verdict::Send);
        assert_eq!(l.check(ip("198.51.100.200"), t0), Verdict::Send);
        // Same /24, and the IPv4-mapped form of it.
        assert_eq!(l.check(ip("198.51.100.7"), t0), Verdict::Drop);
        assert_eq!(l.check(ip("::ffff:198.51.100.9"), t0), Verdict::Drop);
        assert_eq!(l.check(ip("198.51.101.1"), t0), Verdict::Send);
        // IPv6: one /56.
        assert_eq!(l.check(ip("2001:db8:0:ff::1"), t0), Verdict::Send);
        assert_eq!(l.check(ip("2001:db8:0:1::2"), t0), Verdict::Send);
        assert_eq!(l.check(ip("2001:db8:0:2::3"), t0), Verdict::Drop);
        assert_eq!(l.check(ip("2001:db8:0:100::1"), t0), Verdict::Send);
    }

    #[test]
    fn a_full_table_forgets_rather_than_limits_strangers() {
        let mut l = limiter(1, 0);
        let t0 = l.epoch;
        // Far more prefixes than slots: each one's first response is sent.
        for i in 0..(4 * TABLE_ENTRIES as u32) {
            let client = IpAddr::from(std::net::Ipv4Addr::from(i << 8));
            assert_eq!(l.check(client, t0), Verdict::Send);
        }
        assert_eq!(l.table.len(), TABLE_ENTRIES);
    }

    #[test]
    fn slip_keeps_header_and_question_only() {
        // ID, flags (QR, AA, NXDOMAIN), QD 1, AN 2, NS 1, AR 1; question "a." A IN; records.
        let mut out = vec![0xAB, 0xCD, 0x84, 0x03, 0, 1, 0, 2, 0, 1, 0, 1];
        out.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        out.extend_from_slice(&[0xEE; 80]);
        slip(&mut out, Some(7));
        assert_eq!(
            out,
            [
                0xAB, 0xCD, 0x86, 0x03, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1
            ]
        );
        let mut header_only = vec![0x12, 0x34, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
        slip(&mut header_only, None);
        assert_eq!(header_only[2], 0x83);
        assert_eq!(header_only.len(), HEADER_LEN);
    }
}
