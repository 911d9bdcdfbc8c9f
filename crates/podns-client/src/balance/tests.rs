//! Tests of the policies (order and distribution), of ejection and panic mode in picks, and of
//! `Balancer::call` (retries, backoff, budget), over fixed endpoint sets.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;

use tokio::time::Instant;

use super::*;
use crate::{BudgetConfig, Classify, Discovery, RefreshConfig, Resolution, Source};

fn addr(i: u32) -> SocketAddr {
    let [a, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
    SocketAddr::from(([a, b, c, d], 80))
}

fn endpoints(n: u32) -> Vec<Endpoint> {
    (1..=n).map(|i| Endpoint::new(addr(i))).collect()
}

fn pods(n: u32) -> Vec<Endpoint> {
    (0..n)
        .map(|i| Endpoint::new(addr(i + 1)).with_hostname(&format!("redis-{i}")))
        .collect()
}

fn balancer<P: Policy>(eps: Vec<Endpoint>, policy: P) -> Balancer<P> {
    Balancer::new(Discovery::fixed(eps), policy)
}

fn firsts<P: Policy>(
    b: &Balancer<P>,
    route: Route<'_>,
    picks: usize,
) -> HashMap<SocketAddr, usize> {
    let mut counts = HashMap::new();
    for _ in 0..picks {
        let first = b.pick(route).next().expect("a candidate");
        *counts.entry(first.endpoint().addr).or_default() += 1;
    }
    counts
}

fn order<P: Policy>(b: &Balancer<P>, route: Route<'_>) -> Vec<SocketAddr> {
    b.pick(route).map(|c| c.endpoint().addr).collect()
}

// --- Candidates ---

#[test]
fn candidates_walk_and_skip_preferred() {
    assert_eq!(Candidates::walk(4, 1).collect::<Vec<_>>(), [1, 2, 3, 0]);
    assert_eq!(Candidates::walk(4, 9).collect::<Vec<_>>(), [1, 2, 3, 0]);
    assert_eq!(Candidates::walk(0, 0).count(), 0);
    assert_eq!(Candidates::none().count(), 0);
    let c = Candidates::prefer(3).then_prefer(1).then_walk(5, 3);
    assert_eq!(c.collect::<Vec<_>>(), [3, 1, 4, 0, 2]);
    let c = Candidates::prefer(2)
        .then_prefer(2)
        .then_prefer(0)
        .then_prefer(4);
    assert_eq!(
        c.collect::<Vec<_>>(),
        [2, 0],
        "two preferred at most, no repeats"
    );
    let c = Candidates::none()
        .then_walk_list(Arc::from(vec![5, 6, 7]), 1)
        .then_walk_list(Arc::from(vec![0]), 0);
    assert_eq!(c.collect::<Vec<_>>(), [6, 7, 5, 0]);
}

// --- First ---

#[test]
fn first_is_always_first() {
    let b = balancer(endpoints(3), First);
    assert_eq!(firsts(&b, Route::new(), 100)[&addr(1)], 100);
    assert_eq!(order(&b, Route::new()), [addr(1), addr(2), addr(3)]);
}

// --- RoundRobin ---

#[test]
fn round_robin_is_exactly_even() {
    for n in [1, 3, 7] {
        let b = balancer(endpoints(n), RoundRobin::new());
        let picks = 30_000 - 30_000 % n as usize;
        let counts = firsts(&b, Route::new(), picks);
        assert_eq!(counts.len(), n as usize);
        for (a, c) in counts {
            assert_eq!(c, picks / n as usize, "{a}");
        }
    }
    let b = balancer(endpoints(3), RoundRobin::new());
    b.pick(Route::new());
    assert_eq!(
        order(&b, Route::new()),
        [addr(2), addr(3), addr(1)],
        "retries walk on"
    );
}

// --- Random ---

#[test]
fn random_is_uniform_within_three_percent() {
    // 30,000 picks on 3 endpoints: σ ≈ 82 per endpoint; ±300 is > 3.6σ, and the seed is fixed.
    let b = balancer(endpoints(3), Random::with_seed(42));
    let counts = firsts(&b, Route::new(), 30_000);
    assert_eq!(counts.len(), 3);
    for (a, c) in counts {
        assert!((9_700..=10_300).contains(&c), "{a}: {c}");
    }
    let all: HashSet<_> = order(&b, Route::new()).into_iter().collect();
    assert_eq!(all.len(), 3, "retries cover every endpoint once");
}

// --- P2c ---

#[test]
fn p2c_avoids_the_loaded_endpoint() {
    let b = balancer(endpoints(3), P2c::with_seed(7));
    let busy: Vec<InFlight> = (0..5)
        .map(|_| {
            b.pick(Route::new())
                .find(|c| c.endpoint().addr == addr(1))
                .unwrap()
                .start()
        })
        .collect();
    assert_eq!(b.status()[0].in_flight, 5);
    let counts = firsts(&b, Route::new(), 3_000);
    assert_eq!(
        counts.get(&addr(1)),
        None,
        "always paired with an idle endpoint"
    );
    for a in [addr(2), addr(3)] {
        assert!((1_350..=1_650).contains(&counts[&a]), "{a}: {}", counts[&a]);
    }
    drop(busy);
    assert_eq!(b.status()[0].in_flight, 0, "guards decrement on drop");
    let counts = firsts(&b, Route::new(), 3_000);
    assert!(counts[&addr(1)] > 800, "idle again: {counts:?}");
}

#[test]
fn p2c_retries_cover_everything() {
    let b = balancer(endpoints(5), P2c::with_seed(1));
    for _ in 0..50 {
        let o = order(&b, Route::new());
        assert_eq!(o.len(), 5);
        assert_eq!(o.iter().collect::<HashSet<_>>().len(), 5);
    }
    let one = balancer(endpoints(1), P2c::new());
    assert_eq!(order(&one, Route::new()), [addr(1)]);
}

// --- ConsistentHash ---

fn owners(eps: Vec<Endpoint>, keys: usize) -> Vec<SocketAddr> {
    let b = balancer(eps, ConsistentHash::new());
    (0..keys)
        .map(|k| {
            let key = format!("user:{k}");
            b.pick(Route::key(&key)).next().unwrap().endpoint().addr
        })
        .collect()
}

#[test]
fn consistent_hash_is_sticky_and_spread() {
    let a = owners(endpoints(10), 10_000);
    let b = owners(endpoints(10).into_iter().rev().collect(), 10_000);
    assert_eq!(a, b, "the owner depends on addresses, not on answer order");
    let mut counts: HashMap<SocketAddr, usize> = HashMap::new();
    for o in &a {
        *counts.entry(*o).or_default() += 1;
    }
    assert_eq!(counts.len(), 10);
    for (addr, c) in counts {
        assert!((600..=1_500).contains(&c), "{addr}: {c} of 10,000");
    }
}

#[test]
fn consistent_hash_scaling_moves_about_one_nth() {
    for (n, epsilon) in [(3u32, 0.05), (10, 0.03)] {
        let before = owners(endpoints(n), 10_000);
        let after = owners(endpoints(n + 1), 10_000);
        let moved: Vec<_> = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b != a)
            .map(|(_, a)| *a)
            .collect();
        let share = moved.len() as f64 / 10_000.0;
        let ideal = 1.0 / f64::from(n + 1);
        assert!(
            share <= ideal + epsilon,
            "{n}→{}: moved {share:.3}, ideal {ideal:.3}",
            n + 1
        );
        assert!(
            share >= ideal / 2.0,
            "the new endpoint takes its share: {share:.3}"
        );
        assert!(
            moved.iter().all(|a| *a == addr(n + 1)),
            "keys only move to the new endpoint"
        );
        // Scaling back down moves exactly those keys back.
        assert_eq!(owners(endpoints(n), 10_000), before);
    }
}

#[test]
fn consistent_hash_retries_go_to_the_next_owner() {
    let b = balancer(endpoints(4), ConsistentHash::new());
    let o = order(&b, Route::key("session-17"));
    assert_eq!(o.len(), 4);
    assert_eq!(o.iter().collect::<HashSet<_>>().len(), 4);
    // Without its owner, the key goes where the ring said the first retry would.
    let without: Vec<Endpoint> = endpoints(4)
        .into_iter()
        .filter(|e| e.addr != o[0])
        .collect();
    let b2 = balancer(without, ConsistentHash::new());
    assert_eq!(order(&b2, Route::key("session-17"))[0], o[1]);
    // No key: spread like round-robin.
    let counts = firsts(&b, Route::new(), 400);
    assert!(counts.values().all(|c| *c == 100), "{counts:?}");
}

// --- Ordinal ---

#[test]
fn ordinal_writes_only_to_the_primary() {
    let b = balancer(pods(3), Ordinal::new());
    for _ in 0..1_000 {
        assert_eq!(
            order(&b, Route::write()),
            [addr(1)],
            "only redis-0, no retry elsewhere"
        );
    }
}

#[test]
fn ordinal_reads_spread_over_replicas_then_fall_back() {
    let b = balancer(pods(3), Ordinal::new());
    let counts = firsts(&b, Route::read(), 1_000);
    assert_eq!(
        counts.get(&addr(1)),
        None,
        "the primary serves no read while replicas exist"
    );
    assert_eq!((counts[&addr(2)], counts[&addr(3)]), (500, 500));
    assert_eq!(
        *order(&b, Route::read()).last().unwrap(),
        addr(1),
        "primary is the last resort"
    );
    // No replica: reads go to the primary.
    let solo = balancer(pods(1), Ordinal::new());
    assert_eq!(order(&solo, Route::read()), [addr(1)]);
    // No primary: writes have no candidate.
    let replicas: Vec<_> = pods(3).into_iter().skip(1).collect();
    let headless = balancer(replicas, Ordinal::new());
    assert_eq!(order(&headless, Route::write()), []);
    // Endpoints without an ordinal (A/AAAA discovery) get no traffic.
    let mut mixed = pods(2);
    mixed.push(Endpoint::new(addr(9)));
    let b = balancer(mixed, Ordinal::new());
    assert!(!order(&b, Route::read()).contains(&addr(9)));
}

#[test]
fn ordinal_dual_stack_primary_has_both_addresses() {
    let v6: SocketAddr = "[fd00::1]:6379".parse().unwrap();
    let mut eps = pods(2);
    eps.push(Endpoint::new(v6).with_hostname("redis-0"));
    let b = balancer(eps, Ordinal::new());
    let w = order(&b, Route::write());
    assert_eq!(w.len(), 2);
    assert!(w.contains(&addr(1)) && w.contains(&v6));
}

// --- Ejection in picks ---

fn eager() -> OutlierConfig {
    OutlierConfig {
        consecutive_failures: 2,
        max_ejection_percent: 100,
        ..OutlierConfig::default()
    }
}

fn fail_first<P: Policy>(b: &Balancer<P>, target: SocketAddr, times: usize) {
    for _ in 0..times {
        b.pick(Route::new())
            .find(|c| c.endpoint().addr == target)
            .expect("target is a candidate")
            .start()
            .failure();
    }
}

#[tokio::test(start_paused = true)]
async fn ejected_endpoints_are_skipped_then_return() {
    let b = Balancer::builder(Discovery::fixed(endpoints(3)), RoundRobin::new())
        .outlier(eager())
        .build();
    fail_first(&b, addr(2), 2);
    assert_eq!(b.ejected(), [addr(2)]);
    assert_eq!(b.stats().ejections, 1);
    let counts = firsts(&b, Route::new(), 300);
    assert_eq!(counts.get(&addr(2)), None);
    assert_eq!(
        (counts[&addr(1)], counts[&addr(3)]),
        (150, 150),
        "its share spreads evenly"
    );
    assert!(
        !order(&b, Route::new()).contains(&addr(2)),
        "not even as a retry"
    );
    let status = &b.status()[1];
    assert_eq!(status.ejected_for, Some(Duration::from_secs(30)));
    assert_eq!(status.failures, 2);
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(b.ejected(), []);
    assert_eq!(firsts(&b, Route::new(), 300)[&addr(2)], 100);
}

#[tokio::test(start_paused = true)]
async fn all_ejected_means_try_them_anyway() {
    let b = Balancer::builder(Discovery::fixed(endpoints(2)), First)
        .outlier(eager())
        .build();
    fail_first(&b, addr(1), 2);
    fail_first(&b, addr(2), 2);
    assert_eq!(b.ejected().len(), 2);
    assert_eq!(order(&b, Route::new()), [addr(1), addr(2)], "panic mode");
}

#[tokio::test(start_paused = true)]
async fn health_survives_set_changes() {
    let script = Scripted::new(vec![endpoints(3)]);
    let discovery = Discovery::from_source(script.clone(), "t", RefreshConfig::default());
    discovery.ready().await;
    let b = Balancer::builder(discovery.clone(), First)
        .outlier(eager())
        .build();
    fail_first(&b, addr(2), 2);
    script.set(endpoints(4));
    discovery.refresh();
    discovery.watch().changed().await.unwrap();
    assert_eq!(b.pick(Route::new()).set().len(), 4);
    assert_eq!(b.ejected(), [addr(2)], "ejection kept across the change");
}

// --- call ---

#[derive(Debug)]
struct AppError {
    retryable: bool,
}

impl Classify for AppError {
    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

#[tokio::test(start_paused = true)]
async fn call_retries_on_the_next_candidate() {
    let b = Balancer::new(Discovery::fixed(endpoints(3)), First);
    let tried = Mutex::new(Vec::new());
    let start = Instant::now();
    let got = b
        .call(Route::new(), |e| {
            tried.lock().unwrap().push(e.addr);
            async move {
                if e.addr == addr(3) {
                    Ok("served")
                } else {
                    Err(io::Error::from(io::ErrorKind::ConnectionRefused))
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(got, "served");
    assert_eq!(*tried.lock().unwrap(), [addr(1), addr(2), addr(3)]);
    let waited = start.elapsed();
    // Backoff: retry 1 in [12.5, 25] ms, retry 2 in [25, 50] ms.
    assert!(
        waited >= Duration::from_micros(37_500) && waited <= Duration::from_millis(75),
        "{waited:?}"
    );
    let stats = b.stats();
    assert_eq!((stats.calls, stats.attempts, stats.retries), (1, 3, 2));
    assert_eq!(
        b.discovery().stats().failure_reports,
        2,
        "failures nudge discovery"
    );
    assert_eq!(b.status()[0].consecutive_failures, 1);
    assert_eq!(b.status()[2].successes, 1);
}

#[tokio::test(start_paused = true)]
async fn call_stops_on_a_non_retryable_error() {
    let b = Balancer::new(Discovery::fixed(endpoints(3)), First);
    let attempts = AtomicU32::new(0);
    let err = b
        .call(Route::new(), |_| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(AppError { retryable: false }) }
        })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CallError::Failed {
            attempts: 1,
            stopped: StopReason::NotRetryable,
            ..
        }
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(b.status()[0].failures, 0, "not the endpoint's fault");
}

#[tokio::test(start_paused = true)]
async fn call_respects_max_attempts_and_candidates() {
    let b = Balancer::new(Discovery::fixed(endpoints(5)), First);
    let err = b
        .call(Route::new(), |_| async {
            Err::<(), _>(AppError { retryable: true })
        })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CallError::Failed {
            attempts: 3,
            stopped: StopReason::MaxAttempts,
            ..
        }
    ));
    let two = Balancer::new(Discovery::fixed(endpoints(2)), First);
    let err = two
        .call(Route::new(), |_| async {
            Err::<(), _>(AppError { retryable: true })
        })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CallError::Failed {
            attempts: 2,
            stopped: StopReason::NoMoreCandidates,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn call_retries_stay_within_the_budget() {
    let b = Balancer::builder(Discovery::fixed(endpoints(3)), First)
        .retry(RetryPolicy {
            budget: BudgetConfig {
                ratio: 0.2,
                min_per_sec: 0,
                window: Duration::from_secs(10),
            },
            ..RetryPolicy::default()
        })
        .outlier(OutlierConfig::disabled())
        .build();
    for _ in 0..100 {
        let _ = b
            .call(Route::new(), |_| async {
                Err::<(), _>(AppError { retryable: true })
            })
            .await;
    }
    let stats = b.stats();
    assert_eq!(stats.calls, 100);
    assert_eq!(stats.retries, 20, "20% of 100 requests");
    assert!(stats.budget_exhausted >= 80);
}

#[tokio::test(start_paused = true)]
async fn a_failing_endpoint_is_ejected_by_calls_and_comes_back() {
    let b = Balancer::builder(Discovery::fixed(endpoints(3)), RoundRobin::new())
        .outlier(OutlierConfig {
            consecutive_failures: 3,
            base_ejection_time: Duration::from_secs(10),
            ..OutlierConfig::default()
        })
        .build();
    let bad = addr(2);
    async fn run(b: &Balancer<RoundRobin>, bad: SocketAddr, n: usize) {
        for _ in 0..n {
            b.call(Route::new(), |e| async move {
                if e.addr == bad {
                    Err(io::Error::from(io::ErrorKind::ConnectionReset))
                } else {
                    Ok(())
                }
            })
            .await
            .unwrap();
        }
    }
    run(&b, bad, 30).await;
    assert_eq!(b.ejected(), [bad]);
    assert_eq!(
        b.status()[1].failures,
        3,
        "three failures, then no more traffic"
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(b.ejected(), []);
    let before = b.status()[1].failures;
    run(&b, bad, 3).await;
    assert_eq!(
        b.status()[1].failures,
        before + 1,
        "tried again after its ejection time"
    );
}

#[tokio::test(start_paused = true)]
async fn call_without_endpoints() {
    let gone = Scripted::nxdomain();
    let d = Discovery::from_source(gone, "gone", RefreshConfig::default());
    d.ready().await;
    let b = Balancer::new(d, RoundRobin::new());
    let err = b
        .call(Route::new(), |_| async { Ok::<_, io::Error>(()) })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CallError::NoEndpoints {
            reason: NoEndpointsReason::NoService
        }
    ));

    let never = Scripted::never();
    let d = Discovery::from_source(never, "never", RefreshConfig::default());
    let b = Balancer::builder(d, RoundRobin::new())
        .ready_timeout(Duration::from_secs(2))
        .build();
    let start = Instant::now();
    let err = b
        .call(Route::new(), |_| async { Ok::<_, io::Error>(()) })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CallError::NoEndpoints {
            reason: NoEndpointsReason::NotResolved
        }
    ));
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    let b = Balancer::new(
        Discovery::fixed(pods(3).into_iter().skip(1)),
        Ordinal::new(),
    );
    let err = b
        .call(Route::write(), |_| async { Ok::<_, io::Error>(()) })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CallError::NoEndpoints {
            reason: NoEndpointsReason::NoCandidate
        }
    ));
    assert_eq!(b.stats().no_endpoints, 1);
}

/// A source whose answer the test sets.
#[derive(Clone)]
struct Scripted {
    answer: Arc<Mutex<Option<Resolution>>>,
}

impl Scripted {
    fn new(sets: Vec<Vec<Endpoint>>) -> Self {
        let s = Self {
            answer: Arc::new(Mutex::new(None)),
        };
        for set in sets {
            s.set(set);
        }
        s
    }

    fn set(&self, endpoints: Vec<Endpoint>) {
        *self.answer.lock().unwrap() = Some(Resolution {
            endpoints,
            ttl: Some(Duration::from_secs(300)),
            exists: true,
            name: "t.".into(),
        });
    }

    fn nxdomain() -> Self {
        let s = Self::new(vec![]);
        *s.answer.lock().unwrap() = Some(Resolution {
            endpoints: vec![],
            ttl: None,
            exists: false,
            name: "t.".into(),
        });
        s
    }

    fn never() -> Self {
        Self::new(vec![])
    }
}

impl Source for Scripted {
    async fn resolve(&self) -> crate::Result<Resolution> {
        let answer = self.answer.lock().unwrap().clone();
        match answer {
            Some(a) => Ok(a),
            None => std::future::pending().await,
        }
    }
}
