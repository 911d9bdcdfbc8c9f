//! Refresh timing: when discovery asks DNS again.
//!
//! This module owns [`RefreshConfig`] and the two pure functions the discovery loop calls:
//! [`RefreshConfig::refresh_after`] (after an answer: follow its TTL, clamped to a floor and a
//! ceiling, minus jitter) and [`RefreshConfig::retry_after`] (after a failed lookup: back off
//! exponentially from the floor). Both take the random draw as an argument so tests can check
//! the bounds exactly; the loop passes `rand::random()`.
//!
//! Jitter only ever shortens the wait: a client never holds an answer longer than its TTL (unless
//! the TTL is below the floor), and clients that started together spread their refreshes over
//! `[ttl × (1 − jitter), ttl]`.

use std::time::Duration;

/// How often discovery re-resolves.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshConfig {
    /// Floor: never re-resolve sooner than this after a lookup, whatever the TTL (a TTL of 0 must
    /// not become a query loop). Default 1 s.
    pub min_refresh: Duration,
    /// Ceiling: re-resolve at least this often, whatever the TTL. Default 60 s.
    pub max_refresh: Duration,
    /// Fraction of the wait removed at random, in `[0, 1]`. Default 0.1.
    pub jitter: f64,
    /// Rate limit on re-resolving because a connection failed: at most one such lookup per this
    /// interval. Default 1 s.
    pub failure_refresh_interval: Duration,
    /// Wait after NXDOMAIN or NODATA when the answer carries no SOA (no negative TTL).
    /// Default 5 s.
    pub negative_refresh: Duration,
}

// === impl RefreshConfig ===

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            min_refresh: Duration::from_secs(1),
            max_refresh: Duration::from_secs(60),
            jitter: 0.1,
            failure_refresh_interval: Duration::from_secs(1),
            negative_refresh: Duration::from_secs(5),
        }
    }
}

impl RefreshConfig {
    /// The wait after an answer with this TTL (`None`: an answer without TTL, e.g. an IP
    /// literal, or a negative answer without SOA, which uses
    /// [`negative_refresh`](Self::negative_refresh)). `unit` is a random draw in `[0, 1)`.
    ///
    /// The result is in `[max(floor, base × (1 − jitter)), base]` where
    /// `base = clamp(ttl, floor, ceiling)`.
    pub fn refresh_after(&self, ttl: Option<Duration>, unit: f64) -> Duration {
        let base = ttl.unwrap_or(self.negative_refresh);
        self.jittered(self.clamp(base), unit)
    }

    /// The wait after the `consecutive_failures`-th failed lookup in a row (1 for the first):
    /// `floor × 2^(n−1)`, capped at the ceiling, then jittered like
    /// [`refresh_after`](Self::refresh_after).
    pub fn retry_after(&self, consecutive_failures: u32, unit: f64) -> Duration {
        let exp = consecutive_failures.saturating_sub(1).min(30);
        let base = self.min_refresh.saturating_mul(1 << exp);
        self.jittered(self.clamp(base), unit)
    }

    fn clamp(&self, d: Duration) -> Duration {
        let ceiling = self.max_refresh.max(self.min_refresh);
        d.clamp(self.min_refresh, ceiling)
    }

    fn jittered(&self, base: Duration, unit: f64) -> Duration {
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base.mul_f64(1.0 - jitter * unit).max(self.min_refresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn follows_ttl_within_floor_and_ceiling() {
        let c = RefreshConfig {
            jitter: 0.0,
            ..RefreshConfig::default()
        };
        assert_eq!(c.refresh_after(Some(S(30)), 0.5), S(30));
        assert_eq!(c.refresh_after(Some(S(0)), 0.5), S(1), "floor");
        assert_eq!(c.refresh_after(Some(S(3600)), 0.5), S(60), "ceiling");
        assert_eq!(
            c.refresh_after(None, 0.5),
            S(5),
            "negative answer without SOA"
        );
    }

    #[test]
    fn jitter_only_shortens_and_stays_in_bounds() {
        let c = RefreshConfig::default();
        for i in 0..=100 {
            let unit = f64::from(i) / 100.0;
            let d = c.refresh_after(Some(S(30)), unit);
            assert!(d <= S(30) && d >= S(27), "{d:?} for unit {unit}");
            let d = c.refresh_after(Some(S(1)), unit);
            assert_eq!(d, S(1), "jitter never goes below the floor");
        }
        assert_eq!(c.refresh_after(Some(S(30)), 0.0), S(30));
        assert_eq!(c.refresh_after(Some(S(30)), 1.0), S(27));
    }

    #[test]
    fn odd_configs_do_not_panic() {
        let c = RefreshConfig {
            min_refresh: S(10),
            max_refresh: S(1),
            jitter: f64::NAN,
            ..RefreshConfig::default()
        };
        assert_eq!(c.refresh_after(Some(S(5)), 0.3), S(10));
        assert_eq!(c.refresh_after(Some(S(5)), f64::INFINITY), S(10));
        let c = RefreshConfig {
            jitter: 7.0,
            ..RefreshConfig::default()
        };
        assert_eq!(
            c.refresh_after(Some(S(30)), 0.99),
            S(1),
            "jitter capped at 100%, floored"
        );
    }

    #[test]
    fn failures_back_off_exponentially_to_the_ceiling() {
        let c = RefreshConfig {
            jitter: 0.0,
            ..RefreshConfig::default()
        };
        let waits: Vec<_> = (1..=8).map(|n| c.retry_after(n, 0.0).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(c.retry_after(u32::MAX, 0.0), S(60));
    }
}
