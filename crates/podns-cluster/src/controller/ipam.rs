//! Deterministic address allocation within one CIDR, shared by pod and service IPs.
//!
//! An address is chosen by hashing a seed (`namespace/name`) to an offset in the range and
//! probing linearly past taken addresses. Callers allocate in a sorted order, so the same
//! objects always get the same addresses, and one new object moves nobody else's unless their
//! hashes collide. IPv4 ranges of /30 and wider skip the network and broadcast addresses; IPv6
//! ranges skip the subnet-router anycast address (offset 0).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::fnv64a;

/// `IPv4` or `IPv6`, as `spec.ipFamilies` spells them.
pub(crate) fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "IPv4",
        IpNet::V6(_) => "IPv6",
    }
}

/// The family of an address, as `spec.ipFamilies` spells it.
pub(crate) fn ip_family(ip: &IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// One range and the addresses in it that are taken.
#[derive(Debug)]
pub(crate) struct Pool {
    /// The range.
    pub(crate) net: IpNet,
    /// Addresses not to hand out (explicit ones, reserved ones, allocated ones).
    taken: HashSet<IpAddr>,
}

impl Pool {
    pub(crate) fn new(net: IpNet) -> Self {
        Self {
            net: net.trunc(),
            taken: HashSet::new(),
        }
    }

    /// Marks an address taken (addresses outside the range are ignored).
    pub(crate) fn take(&mut self, ip: IpAddr) {
        if self.net.contains(&ip) {
            self.taken.insert(ip);
        }
    }

    /// The address at `offset` from the network address.
    pub(crate) fn at(&self, offset: u128) -> IpAddr {
        match self.net {
            IpNet::V4(n) => {
                let base = u32::from(n.network());
                // Offsets stay below the range size, which fits in u32 for IPv4.
                IpAddr::V4(Ipv4Addr::from(base.wrapping_add(offset as u32)))
            }
            IpNet::V6(n) => {
                IpAddr::V6(Ipv6Addr::from(u128::from(n.network()).wrapping_add(offset)))
            }
        }
    }

    /// First usable offset and number of usable offsets.
    fn usable(&self) -> (u128, u128) {
        match self.net {
            IpNet::V4(n) => {
                let size = 1u128 << (32 - u32::from(n.prefix_len()));
                if size >= 4 { (1, size - 2) } else { (0, size) }
            }
            IpNet::V6(n) => {
                let host_bits = 128 - u32::from(n.prefix_len());
                if host_bits == 0 {
                    (0, 1)
                } else if host_bits >= 128 {
                    (1, u128::MAX)
                } else {
                    (1, (1u128 << host_bits) - 1)
                }
            }
        }
    }

    /// A free address for `seed`, marked taken; `None` when the range is full.
    pub(crate) fn allocate(&mut self, seed: &str) -> Option<IpAddr> {
        let (first, count) = self.usable();
        if count == 0 {
            return None;
        }
        let start = u128::from(fnv64a(seed.as_bytes())) % count;
        // If the range has more usable addresses than are taken, a free one is found within
        // taken+1 probes; otherwise probing the whole range proves it full.
        let probes = count.min(self.taken.len() as u128 + 1);
        for i in 0..probes {
            let ip = self.at(first + (start + i) % count);
            if self.taken.insert(ip) {
                return Some(ip);
            }
        }
        None
    }
}
