//! Retries: which errors to retry, how long to wait, and how many retries the budget allows.
//!
//! This module owns [`Classify`] (an error says whether it is retryable and whether it counts
//! against the endpoint), [`RetryPolicy`] with its jittered exponential [`Backoff`], and
//! [`RetryBudget`], which caps retries at a share of requests over a sliding window (plus a
//! floor of retries per second), as Finagle's and linkerd's budgets do, so retries cannot turn a
//! partial outage into a full one. [`Balancer::call`](crate::Balancer::call) applies them.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Whether an error is worth another attempt, and whose fault it is.
pub trait Classify {
    /// Another attempt (on the next candidate) may succeed: connection refused or reset, a
    /// timeout, a 503. A 400 or a parse error is not.
    fn is_retryable(&self) -> bool;

    /// The error says the endpoint is unhealthy, so it counts toward ejection and makes
    /// discovery re-resolve. Defaults to [`is_retryable`](Self::is_retryable).
    fn is_endpoint_failure(&self) -> bool {
        self.is_retryable()
    }
}

impl Classify for io::Error {
    fn is_retryable(&self) -> bool {
        use io::ErrorKind::*;
        matches!(
            self.kind(),
            ConnectionRefused
                | ConnectionReset
                | ConnectionAborted
                | NotConnected
                | BrokenPipe
                | TimedOut
                | UnexpectedEof
                | AddrNotAvailable
                | HostUnreachable
                | NetworkUnreachable
                | NetworkDown
                | Interrupted
        )
    }
}

impl Classify for tokio::time::error::Elapsed {
    fn is_retryable(&self) -> bool {
        true
    }
}

impl Classify for crate::Error {
    fn is_retryable(&self) -> bool {
        Self::is_retryable(self)
    }
}

/// How [`Balancer::call`](crate::Balancer::call) retries.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 disables retries. Default 3.
    pub max_attempts: u32,
    /// The wait before each retry.
    pub backoff: Backoff,
    /// The cap on retries across all calls of one balancer.
    pub budget: BudgetConfig,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::default(),
            budget: BudgetConfig::default(),
        }
    }
}

// === impl RetryPolicy ===

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// Exponential backoff with "equal jitter": the n-th retry waits a random time in
/// `[d/2, d]` where `d = min(max, base × 2^(n−1))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry's ceiling. Default 25 ms.
    pub base: Duration,
    /// The ceiling of any retry. Default 1 s.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(25),
            max: Duration::from_secs(1),
        }
    }
}

// === impl Backoff ===

impl Backoff {
    /// The wait before retry number `retry` (1 for the first retry), for a random draw `unit`
    /// in `[0, 1)`.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exp = retry.saturating_sub(1).min(31);
        let ceiling = self
            .base
            .saturating_mul(1 << exp)
            .min(self.max.max(self.base));
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ceiling / 2 + (ceiling / 2).mul_f64(unit)
    }
}

/// The retry budget's rule: retries in the window ≤ `min_per_sec × window + ratio × requests in
/// the window`.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed per request, e.g. 0.2 = 20 %. Default 0.2.
    pub ratio: f64,
    /// Retries allowed per second regardless of traffic, so a quiet client can still retry.
    /// Default 10.
    pub min_per_sec: u32,
    /// The sliding window. Default 10 s.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_sec: 10,
            window: Duration::from_secs(10),
        }
    }
}

/// Number of slots the window is cut into.
const SLOTS: usize = 10;

/// A sliding-window retry budget, shared by every call of one balancer.
#[derive(Debug)]
pub struct RetryBudget {
    config: BudgetConfig,
    /// When slot 0 started.
    start: Instant,
    /// Per slot: (slot number, requests, retries); a slot with an old number is empty.
    slots: Mutex<[(u64, u64, u64); SLOTS]>,
}

// === impl RetryBudget ===

impl RetryBudget {
    /// An empty budget.
    pub fn new(config: BudgetConfig) -> Self {
        Self {
            config,
            start: Instant::now(),
            slots: Mutex::new([(u64::MAX, 0, 0); SLOTS]),
        }
    }

    /// Records one original request (it earns `ratio` retries).
    pub fn deposit(&self) {
        self.with_current(|slot| slot.1 += 1);
    }

    /// Takes one retry from the budget; `false` if the budget is spent.
    pub fn try_withdraw(&self) -> bool {
        let (requests, retries) = self.totals();
        let window = self.config.window.as_secs_f64();
        let allowed = f64::from(self.config.min_per_sec) * window
            + self.config.ratio.max(0.0) * requests as f64;
        if (retries + 1) as f64 > allowed {
            return false;
        }
        self.with_current(|slot| slot.2 += 1);
        true
    }

    /// Requests and retries in the window.
    pub fn totals(&self) -> (u64, u64) {
        let now = self.slot_number();
        let slots = self.lock();
        slots
            .iter()
            .filter(|(n, _, _)| *n != u64::MAX && now.saturating_sub(*n) < SLOTS as u64)
            .fold((0, 0), |(a, b), (_, req, ret)| (a + req, b + ret))
    }

    fn slot_number(&self) -> u64 {
        let slot = (self.config.window / SLOTS as u32).max(Duration::from_millis(1));
        u64::try_from(self.start.elapsed().as_nanos() / slot.as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn with_current(&self, f: impl FnOnce(&mut (u64, u64, u64))) {
        let now = self.slot_number();
        let mut slots = self.lock();
        let slot = &mut slots[(now % SLOTS as u64) as usize];
        if slot.0 != now {
            *slot = (now, 0, 0);
        }
        f(slot);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [(u64, u64, u64); SLOTS]> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_bounds() {
        let b = Backoff::default();
        for retry in 1..=8 {
            let ceiling =
                (Duration::from_millis(25) * (1 << (retry - 1))).min(Duration::from_secs(1));
            for i in 0..=10 {
                let d = b.delay(retry, f64::from(i) / 10.0);
                assert!(d >= ceiling / 2 && d <= ceiling, "retry {retry}: {d:?}");
            }
        }
        assert_eq!(b.delay(1, 0.0), Duration::from_micros(12_500));
        assert_eq!(b.delay(40, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX, f64::NAN), Duration::from_millis(500));
    }

    #[test]
    fn io_errors_classify() {
        use io::ErrorKind::*;
        assert!(io::Error::from(ConnectionRefused).is_retryable());
        assert!(io::Error::from(TimedOut).is_endpoint_failure());
        assert!(!io::Error::from(InvalidData).is_retryable());
        assert!(!io::Error::from(PermissionDenied).is_endpoint_failure());
    }

    #[tokio::test(start_paused = true)]
    async fn budget_is_a_share_of_requests() {
        let budget = RetryBudget::new(BudgetConfig {
            ratio: 0.2,
            min_per_sec: 0,
            window: Duration::from_secs(10),
        });
        assert!(!budget.try_withdraw(), "no requests, no floor: no retry");
        for _ in 0..100 {
            budget.deposit();
        }
        let granted = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 20, "20% of 100 requests");
        // Half a window later, the old requests still count, the retries too.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!budget.try_withdraw());
        // After the window, it is all gone.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(budget.totals(), (0, 0));
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!((0..10).filter(|_| budget.try_withdraw()).count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn budget_floor_allows_quiet_clients_to_retry() {
        let budget = RetryBudget::new(BudgetConfig {
            ratio: 0.0,
            min_per_sec: 2,
            window: Duration::from_secs(10),
        });
        assert_eq!(
            (0..50).filter(|_| budget.try_withdraw()).count(),
            20,
            "2/s × 10 s"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(budget.try_withdraw());
    }
}
