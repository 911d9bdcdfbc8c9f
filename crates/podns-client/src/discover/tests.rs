//! Tests of the refresh loop with a scripted [`Source`] (not a DNS server: the DNS path is
//! tested end to end against `podns serve` in the binary crate) and a paused Tokio clock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tower::discover::{Change, Discover};

use super::*;
use crate::Error;

/// Answers from a script; repeats the last answer once the script runs out.
#[derive(Clone)]
struct Script {
    answers: Arc<Mutex<VecDeque<Result<Resolution>>>>,
    last: Arc<Mutex<Option<Result<Resolution>>>>,
    calls: Arc<AtomicUsize>,
}

impl Script {
    fn new(answers: impl IntoIterator<Item = Result<Resolution>>) -> Self {
        Self {
            answers: Arc::new(Mutex::new(answers.into_iter().collect())),
            last: Arc::new(Mutex::new(None)),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn push(&self, answer: Result<Resolution>) {
        self.answers.lock().unwrap().push_back(answer);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Source for Script {
    async fn resolve(&self) -> Result<Resolution> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let next = self.answers.lock().unwrap().pop_front();
        let mut last = self.last.lock().unwrap();
        if let Some(next) = next {
            *last = Some(next);
        }
        last.clone().expect("script has at least one answer")
    }
}

fn ep(i: u8) -> Endpoint {
    Endpoint::new(SocketAddr::from(([10, 0, 0, i], 6379)))
}

fn found(ips: &[u8], ttl: u64) -> Result<Resolution> {
    Ok(Resolution {
        endpoints: ips.iter().map(|i| ep(*i)).collect(),
        ttl: Some(Duration::from_secs(ttl)),
        exists: true,
        name: "redis-headless.default.svc.cluster.local.".into(),
    })
}

fn nxdomain(ttl: u64) -> Result<Resolution> {
    Ok(Resolution {
        endpoints: vec![],
        ttl: Some(Duration::from_secs(ttl)),
        exists: false,
        name: "redis-headless.default.svc.cluster.local.".into(),
    })
}

fn servfail() -> Result<Resolution> {
    Err(Error::Lookup {
        name: "redis-headless.default.svc.cluster.local.".into(),
        rtype: "A",
        reason: "SERVFAIL".into(),
    })
}

fn addrs(set: &EndpointSet) -> Vec<u8> {
    set.endpoints()
        .iter()
        .map(|e| match e.addr.ip() {
            std::net::IpAddr::V4(ip) => ip.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        })
        .collect()
}

fn spawn(script: &Script) -> Discovery {
    Discovery::from_source(script.clone(), "test", RefreshConfig::default())
}

#[tokio::test(start_paused = true)]
async fn refreshes_within_the_ttl() {
    let script = Script::new([found(&[1, 2], 30), found(&[1, 2, 3], 30)]);
    let discovery = spawn(&script);
    assert!(discovery.current().is_pending());
    assert_eq!(addrs(&*discovery.ready().await), [1, 2]);
    let start = Instant::now();
    let mut rx = discovery.watch();
    rx.changed().await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(27) && waited <= Duration::from_secs(30),
        "refreshed after {waited:?}, TTL 30 s with 10% jitter"
    );
    assert_eq!(addrs(&discovery.current()), [1, 2, 3]);
    assert_eq!(discovery.current().version(), 2);
}

#[tokio::test(start_paused = true)]
async fn unchanged_answers_publish_nothing() {
    let script = Script::new([found(&[2, 1], 5), found(&[1, 2], 5)]);
    let discovery = spawn(&script);
    discovery.ready().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        script.calls() >= 10,
        "refreshed every ≤5 s: {}",
        script.calls()
    );
    assert_eq!(discovery.current().version(), 1, "rotation is not a change");
    let stats = discovery.stats();
    assert_eq!(stats.changes, 1);
    assert_eq!(stats.last_ttl, Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn failed_lookups_keep_the_last_good_set() {
    let script = Script::new([found(&[1, 2], 10), servfail(), servfail(), servfail()]);
    let discovery = spawn(&script);
    discovery.ready().await;
    // 10 s TTL, then failures retried after 1, 2, 4 s…
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert_eq!(addrs(&discovery.current()), [1, 2]);
    let stats = discovery.stats();
    assert!(stats.failures >= 2, "{stats:?}");
    assert_eq!(stats.consecutive_failures as u64, stats.failures);
    assert!(stats.last_error.as_deref().unwrap().contains("SERVFAIL"));
    // Backing off: about 1 + 2 + 4 + … s apart, so few lookups in a minute.
    let before = script.calls();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        script.calls() - before <= 5,
        "{} lookups",
        script.calls() - before
    );
    // An answer resets the count.
    script.push(found(&[1], 10));
    discovery.refresh();
    let mut rx = discovery.watch();
    rx.changed().await.unwrap();
    assert_eq!(addrs(&discovery.current()), [1]);
    assert_eq!(discovery.stats().consecutive_failures, 0);
    assert_eq!(discovery.stats().last_error, None);
}

#[tokio::test(start_paused = true)]
async fn a_failed_first_lookup_stays_pending() {
    let script = Script::new([servfail()]);
    let discovery = spawn(&script);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(discovery.current().is_pending());
    assert!(discovery.stats().failures >= 2);
}

#[tokio::test(start_paused = true)]
async fn nxdomain_empties_the_set() {
    let script = Script::new([found(&[1, 2], 5), nxdomain(5), found(&[3], 5)]);
    let discovery = spawn(&script);
    let mut updates = discovery.updates();
    assert_eq!(
        updates.next().await,
        Some(Update::Reset(vec![ep(1), ep(2)]))
    );
    assert_eq!(updates.next().await, Some(Update::DoesNotExist));
    assert_eq!(discovery.current().state(), SetState::DoesNotExist);
    assert!(discovery.current().is_empty());
    assert_eq!(updates.next().await, Some(Update::Reset(vec![ep(3)])));
}

#[tokio::test(start_paused = true)]
async fn updates_are_diffs() {
    let script = Script::new([found(&[1, 2], 5), found(&[2, 3], 5)]);
    let discovery = spawn(&script);
    let mut updates = discovery.updates();
    assert_eq!(
        updates.next().await,
        Some(Update::Reset(vec![ep(1), ep(2)]))
    );
    assert_eq!(updates.next().await, Some(Update::Remove(vec![ep(1)])));
    assert_eq!(updates.next().await, Some(Update::Add(vec![ep(3)])));
    // A late subscriber starts from the current set.
    let mut late = discovery.updates();
    assert_eq!(late.next().await, Some(Update::Reset(vec![ep(2), ep(3)])));
}

#[tokio::test(start_paused = true)]
async fn failure_reports_refresh_early_but_rate_limited() {
    let script = Script::new([found(&[1, 2], 30), found(&[1], 30)]);
    let discovery = spawn(&script);
    discovery.ready().await;
    let start = Instant::now();
    for _ in 0..10 {
        discovery.report_failure(ep(2).addr);
    }
    let mut rx = discovery.watch();
    rx.changed().await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited <= Duration::from_secs(1),
        "re-resolved {waited:?} after the failure"
    );
    assert_eq!(addrs(&discovery.current()), [1]);
    assert_eq!(script.calls(), 2, "ten reports, one lookup");
    // Reports right after a lookup wait for the rate limit.
    let start = Instant::now();
    discovery.report_failure(ep(1).addr);
    let calls = script.calls();
    while script.calls() == calls {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(990) && waited <= Duration::from_millis(1100),
        "{waited:?}"
    );
    let stats = discovery.stats();
    assert_eq!(stats.failure_reports, 11);
    assert_eq!(stats.failure_refreshes, 2);
}

#[tokio::test(start_paused = true)]
async fn refresh_on_demand_is_immediate() {
    let script = Script::new([found(&[1], 300)]);
    let discovery = spawn(&script);
    discovery.ready().await;
    script.push(found(&[1, 2], 300));
    let start = Instant::now();
    discovery.refresh();
    let mut rx = discovery.watch();
    rx.changed().await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(10));
    assert_eq!(addrs(&discovery.current()), [1, 2]);
    assert_eq!(discovery.stats().on_demand_refreshes, 1);
}

#[tokio::test(start_paused = true)]
async fn the_task_stops_with_the_last_handle() {
    let script = Script::new([found(&[1], 1)]);
    let discovery = spawn(&script);
    discovery.ready().await;
    let updates = discovery.updates();
    drop(discovery);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let calls = script.calls();
    assert!(calls >= 5, "still running while a stream holds it: {calls}");
    drop(updates);
    tokio::time::sleep(Duration::from_secs(10)).await;
    tokio::task::yield_now().await;
    assert!(script.calls() <= calls + 1, "stopped");
}

#[tokio::test]
async fn tower_discover_follows_the_set() {
    let script = Script::new([found(&[1, 2], 300)]);
    let discovery = spawn(&script);
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    let mut services = discovery.discover_services(move |e: &Endpoint| {
        counter.fetch_add(1, Ordering::SeqCst);
        format!("svc-{}", e.addr)
    });
    async fn next_change<D: Discover + Unpin>(d: &mut D) -> Change<D::Key, D::Service>
    where
        D::Error: std::fmt::Debug,
    {
        std::future::poll_fn(|cx| Pin::new(&mut *d).poll_discover(cx))
            .await
            .unwrap()
            .unwrap()
    }
    let mut inserted = vec![];
    for _ in 0..2 {
        match next_change(&mut services).await {
            Change::Insert(addr, svc) => {
                assert_eq!(svc, format!("svc-{addr}"));
                inserted.push(addr);
            }
            Change::Remove(addr) => panic!("unexpected remove of {addr}"),
        }
    }
    assert_eq!(inserted, [ep(1).addr, ep(2).addr]);
    script.push(found(&[2, 3], 300));
    discovery.refresh();
    assert!(matches!(next_change(&mut services).await, Change::Remove(a) if a == ep(1).addr));
    assert!(matches!(next_change(&mut services).await, Change::Insert(a, _) if a == ep(3).addr));
    script.push(nxdomain(5));
    discovery.refresh();
    let mut removed = vec![
        next_change(&mut services).await,
        next_change(&mut services).await,
    ]
    .into_iter()
    .map(|c| match c {
        Change::Remove(a) => a,
        Change::Insert(a, _) => panic!("unexpected insert of {a}"),
    })
    .collect::<Vec<_>>();
    removed.sort();
    assert_eq!(removed, [ep(2).addr, ep(3).addr]);
    assert_eq!(made.load(Ordering::SeqCst), 3);
}

#[test]
fn transitions() {
    let pending = EndpointSet::pending();
    let a = EndpointSet::new([ep(1), ep(2)]);
    let b = EndpointSet::new([ep(2), ep(3).with_hostname("redis-3")]);
    let gone = EndpointSet::does_not_exist();
    let empty = EndpointSet::new([]);
    assert_eq!(updates_between(None, &pending), []);
    assert_eq!(
        updates_between(None, &a),
        [Update::Reset(vec![ep(1), ep(2)])]
    );
    assert_eq!(updates_between(None, &gone), [Update::DoesNotExist]);
    assert_eq!(updates_between(Some(&a), &a), []);
    assert_eq!(
        updates_between(Some(&a), &b),
        [
            Update::Remove(vec![ep(1)]),
            Update::Add(vec![ep(3).with_hostname("redis-3")])
        ]
    );
    assert_eq!(updates_between(Some(&a), &gone), [Update::DoesNotExist]);
    assert_eq!(updates_between(Some(&gone), &gone), []);
    assert_eq!(
        updates_between(Some(&gone), &a),
        [Update::Reset(vec![ep(1), ep(2)])]
    );
    assert_eq!(
        updates_between(Some(&a), &empty),
        [Update::Remove(vec![ep(1), ep(2)])],
        "NODATA: the name exists with no address"
    );
}

#[test]
fn fixed_sets_need_no_runtime() {
    let d = Discovery::fixed([ep(2), ep(1)]);
    assert_eq!(addrs(&d.current()), [1, 2]);
    assert_eq!(d.current().state(), SetState::Exists);
    assert_eq!(d.label(), "fixed");
}
