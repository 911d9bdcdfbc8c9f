//! Outlier ejection and re-admission, after Istio's `outlierDetection` (Envoy's consecutive
//! errors detector).
//!
//! This module owns [`OutlierConfig`] and the per-endpoint health record ([`EndpointHealth`]:
//! in-flight count, consecutive failures, ejection deadline). It is responsible for deciding when
//! an endpoint is ejected and for how long; the balancer asks whether an endpoint is ejected when
//! walking candidates. Nothing runs in the background: an ejection ends when its deadline passes,
//! checked lazily, so no sweeper task is needed.
//!
//! | Istio field               | here                                   | rule                                   |
//! |---------------------------|----------------------------------------|----------------------------------------|
//! | `consecutive5xxErrors`    | [`OutlierConfig::consecutive_failures`] | eject on the N-th failure in a row    |
//! | `baseEjectionTime`        | [`OutlierConfig::base_ejection_time`]   | ejected for base × times ejected      |
//! | `maxEjectionTime` (Envoy) | [`OutlierConfig::max_ejection_time`]    | cap on one ejection                   |
//! | `interval`                | [`OutlierConfig::interval`]             | each interval spent healthy forgives one past ejection |
//! | `maxEjectionPercent`      | [`OutlierConfig::max_ejection_percent`] | never eject more; at least one may be (as Envoy) |
//!
//! Times come from `tokio::time::Instant`, so tests drive them with `tokio::time::pause`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// When to eject an endpoint, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlierConfig {
    /// Failures in a row that eject an endpoint; 0 disables ejection. Default 5 (Istio's
    /// `consecutive5xxErrors` default).
    pub consecutive_failures: u32,
    /// Each full interval an endpoint spends un-ejected forgives one past ejection, so the next
    /// ejection is shorter. Default 10 s (Istio's default).
    pub interval: Duration,
    /// One ejection lasts this × the number of times the endpoint was ejected. Default 30 s.
    pub base_ejection_time: Duration,
    /// Cap on one ejection (at least `base_ejection_time`). Default 300 s (Envoy's default).
    pub max_ejection_time: Duration,
    /// At most this share of the endpoints is ejected at once, rounded down but at least one
    /// (as Envoy); 0 disables ejection. Default 10 (Istio's default).
    pub max_ejection_percent: u8,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

// === impl OutlierConfig ===

impl OutlierConfig {
    /// Never eject.
    pub fn disabled() -> Self {
        Self {
            consecutive_failures: 0,
            ..Self::default()
        }
    }

    fn enabled(&self) -> bool {
        self.consecutive_failures > 0 && self.max_ejection_percent > 0
    }

    /// How many of `total` endpoints may be ejected at once.
    fn max_ejected(&self, total: usize) -> usize {
        let pct = usize::from(self.max_ejection_percent.min(100));
        (total * pct / 100).max(1).min(total)
    }
}

/// The health of one endpoint, shared by every pick that chose it. Kept across endpoint-set
/// changes for as long as the address stays in the set.
#[derive(Debug, Default)]
pub struct EndpointHealth {
    /// Requests started and not finished ([`InFlight`](crate::InFlight) guards alive).
    in_flight: AtomicU32,
    /// Failures since the last success or ejection.
    consecutive: AtomicU32,
    /// Clock reading (ns, see [`Clock`]) at which the current ejection ends; 0 when never ejected.
    ejected_until: AtomicU64,
    /// Times ejected, less those forgiven by healthy intervals.
    ejections: AtomicU32,
    /// Requests that succeeded.
    successes: AtomicU64,
    /// Requests that failed (endpoint failures only).
    failures: AtomicU64,
}

// === impl EndpointHealth ===

impl EndpointHealth {
    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Failures in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive.load(Ordering::Relaxed)
    }

    /// Times ejected (less those forgiven).
    pub fn ejections(&self) -> u32 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// Successes and failures recorded.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.successes.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }

    /// Whether the endpoint is ejected at clock reading `now` (see [`Clock::now`]).
    pub(crate) fn is_ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }

    /// How much longer the ejection lasts, if ejected.
    pub(crate) fn ejected_for(&self, now: u64) -> Option<Duration> {
        let until = self.ejected_until.load(Ordering::Relaxed);
        (until > now).then(|| Duration::from_nanos(until - now))
    }

    pub(crate) fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finish(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn record_success(&self) {
        self.successes.fetch_add(1, Ordering::Relaxed);
        // Avoid writing the shared cache line on the common path.
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failure; returns the failures in a row.
    fn record_failure(&self) -> u32 {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.consecutive
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// Ejects the endpoint from `now`; returns for how long.
    fn eject(&self, config: &OutlierConfig, now: u64) -> Duration {
        let previous_end = self.ejected_until.load(Ordering::Relaxed);
        let mut ejections = self.ejections.load(Ordering::Relaxed);
        let interval = config.interval.as_nanos().max(1);
        if previous_end != 0 && now > previous_end {
            let healthy_intervals = u128::from(now - previous_end) / interval;
            ejections =
                ejections.saturating_sub(u32::try_from(healthy_intervals).unwrap_or(u32::MAX));
        }
        ejections = ejections.saturating_add(1);
        let cap = config.max_ejection_time.max(config.base_ejection_time);
        let duration = config.base_ejection_time.saturating_mul(ejections).min(cap);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.ejections.store(ejections, Ordering::Relaxed);
        self.ejected_until
            .store(now.saturating_add(nanos), Ordering::Relaxed);
        self.consecutive.store(0, Ordering::Relaxed);
        duration
    }
}

/// A monotonic clock in nanoseconds since its creation, plus one (so 0 can mean "never").
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }
}

/// The ejection decisions of one balancer.
#[derive(Debug)]
pub(crate) struct Outliers {
    config: OutlierConfig,
    clock: Clock,
    /// Serialises ejections, so the max-percent check and the ejection are one step.
    eject_lock: Mutex<()>,
    /// The latest end of any ejection (clock reading); 0 while nothing was ever ejected, which
    /// lets picks skip the clock and the per-endpoint checks.
    latest_end: AtomicU64,
}

impl Outliers {
    pub(crate) fn new(config: OutlierConfig) -> Self {
        Self {
            config,
            clock: Clock::new(),
            eject_lock: Mutex::new(()),
            latest_end: AtomicU64::new(0),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Whether some endpoint may be ejected now: `None` when certainly not (no clock read),
    /// else the clock reading to check endpoints against.
    pub(crate) fn ejection_clock(&self) -> Option<u64> {
        let latest = self.latest_end.load(Ordering::Relaxed);
        if latest == 0 {
            return None;
        }
        let now = self.now();
        (latest > now).then_some(now)
    }

    /// Records a failure of `members[index]`; ejects it when the rules say so and returns the
    /// ejection time.
    pub(crate) fn on_failure(
        &self,
        index: usize,
        members: &[Arc<EndpointHealth>],
    ) -> Option<Duration> {
        let health = members.get(index)?;
        let in_a_row = health.record_failure();
        if !self.config.enabled() || in_a_row < self.config.consecutive_failures {
            return None;
        }
        let _guard = self
            .eject_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = self.now();
        if health.is_ejected(now) {
            return None;
        }
        let ejected = members.iter().filter(|h| h.is_ejected(now)).count();
        if ejected >= self.config.max_ejected(members.len()) {
            return None;
        }
        let duration = health.eject(&self.config, now);
        let end = now.saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
        self.latest_end.fetch_max(end, Ordering::Relaxed);
        Some(duration)
    }
}

#[cfg(test)]
mod tests;
