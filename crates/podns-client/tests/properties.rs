//! Property tests of the pure parts, through the public API: candidate orders are
//! permutations, diffs rebuild the next set, targets and ordinals parse back, refresh waits stay
//! in bounds, and the hash ring only moves keys to an added endpoint.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use podns_client::{
    Balancer, Candidates, ConsistentHash, Discovery, Endpoint, EndpointSet, RefreshConfig, Route,
    Target, ordinal_of,
};
use proptest::prelude::*;

fn addr(i: u32) -> SocketAddr {
    let [a, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
    SocketAddr::from(([a, b, c, d], 80))
}

proptest! {
    #[test]
    fn candidates_are_a_permutation(n in 1usize..64, start in 0usize..1000, a in 0usize..64, b in 0usize..64) {
        let (a, b) = (a % n, b % n);
        let order: Vec<usize> = Candidates::prefer(a).then_prefer(b).then_walk(n, start).collect();
        prop_assert_eq!(order.len(), n);
        prop_assert_eq!(order.iter().copied().collect::<HashSet<_>>().len(), n);
        prop_assert_eq!(order[0], a);
    }

    #[test]
    fn diff_rebuilds_the_next_set(old in proptest::collection::vec(0u32..40, 0..20), new in proptest::collection::vec(0u32..40, 0..20)) {
        let old = EndpointSet::new(old.into_iter().map(|i| Endpoint::new(addr(i))));
        let new = EndpointSet::new(new.into_iter().map(|i| Endpoint::new(addr(i))));
        let (added, removed) = old.diff(&new);
        let mut rebuilt: HashSet<SocketAddr> = old.endpoints().iter().map(|e| e.addr).collect();
        for e in &removed {
            prop_assert!(rebuilt.remove(&e.addr));
        }
        for e in &added {
            prop_assert!(rebuilt.insert(e.addr));
        }
        let expected: HashSet<SocketAddr> = new.endpoints().iter().map(|e| e.addr).collect();
        prop_assert_eq!(rebuilt, expected);
    }

    #[test]
    fn host_port_targets_parse_back(name in "[a-z]([a-z0-9-]{0,20}[a-z0-9])?(\\.[a-z]([a-z0-9-]{0,10}[a-z0-9])?){0,4}", port in 0u16..) {
        let t = Target::parse(&format!("{name}:{port}")).unwrap();
        prop_assert_eq!(t.name(), name.as_str());
        prop_assert_eq!(t.port(), Some(port));
        prop_assert_eq!(Target::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn ordinals_parse_back(name in "[a-z][a-z0-9-]{0,30}", ordinal in 0u32..1_000_000) {
        prop_assert_eq!(ordinal_of(&format!("{name}-{ordinal}")), Some(ordinal));
    }

    #[test]
    fn refresh_waits_stay_in_bounds(ttl in 0u64..100_000, unit in 0.0f64..1.0) {
        let c = RefreshConfig::default();
        let d = c.refresh_after(Some(Duration::from_secs(ttl)), unit);
        let base = Duration::from_secs(ttl).clamp(c.min_refresh, c.max_refresh);
        prop_assert!(d <= base);
        prop_assert!(d >= c.min_refresh);
        prop_assert!(d >= base.mul_f64(1.0 - c.jitter) - Duration::from_nanos(1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn ring_moves_keys_only_to_the_added_endpoint(n in 1u32..12) {
        let owners = |count: u32| {
            let b = Balancer::new(Discovery::fixed((1..=count).map(|i| Endpoint::new(addr(i)))), ConsistentHash::new());
            (0..500).map(|k| b.pick(Route::key(&k.to_string())).next().unwrap().endpoint().addr).collect::<Vec<_>>()
        };
        let before = owners(n);
        let after = owners(n + 1);
        for (b, a) in before.iter().zip(&after) {
            prop_assert!(b == a || *a == addr(n + 1));
        }
    }
}
