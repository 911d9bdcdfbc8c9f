//! Tests of ejection: thresholds, growth and forgiveness of ejection time, the max-percent rule, with a paused clock.

use super::*;

fn members(n: usize) -> Vec<Arc<EndpointHealth>> {
    (0..n)
        .map(|_| Arc::new(EndpointHealth::default()))
        .collect()
}

fn fail(o: &Outliers, m: &[Arc<EndpointHealth>], i: usize, times: u32) -> Option<Duration> {
    (0..times).filter_map(|_| o.on_failure(i, m)).last()
}

#[tokio::test(start_paused = true)]
async fn ejects_after_consecutive_failures_and_readmits() {
    let o = Outliers::new(OutlierConfig::default());
    let m = members(3);
    assert_eq!(fail(&o, &m, 0, 4), None);
    assert!(!m[0].is_ejected(o.now()));
    assert_eq!(o.on_failure(0, &m), Some(Duration::from_secs(30)));
    assert!(m[0].is_ejected(o.now()));
    assert_eq!(m[0].consecutive_failures(), 0);
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(m[0].is_ejected(o.now()));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!m[0].is_ejected(o.now()), "back after base ejection time");
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_count() {
    let o = Outliers::new(OutlierConfig::default());
    let m = members(3);
    fail(&o, &m, 1, 4);
    m[1].record_success();
    assert_eq!(fail(&o, &m, 1, 4), None);
    assert!(!m[1].is_ejected(o.now()));
}

#[tokio::test(start_paused = true)]
async fn repeated_ejections_grow_then_are_forgiven() {
    let config = OutlierConfig::default();
    let o = Outliers::new(config.clone());
    let m = members(10);
    assert_eq!(fail(&o, &m, 0, 5), Some(Duration::from_secs(30)));
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(
        fail(&o, &m, 0, 5),
        Some(Duration::from_secs(60)),
        "2nd: 2 × base"
    );
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(
        fail(&o, &m, 0, 5),
        Some(Duration::from_secs(90)),
        "3rd: 3 × base"
    );
    // 90 s ejected, then 25 s healthy: two intervals forgive two ejections (3 → 1), so the
    // next is the 2nd again.
    tokio::time::advance(Duration::from_secs(90 + 25)).await;
    assert_eq!(fail(&o, &m, 0, 5), Some(Duration::from_secs(60)));
    // The cap.
    let capped = Outliers::new(OutlierConfig {
        max_ejection_time: Duration::from_secs(45),
        ..config
    });
    let m = members(10);
    assert_eq!(fail(&capped, &m, 5, 5), Some(Duration::from_secs(30)));
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(fail(&capped, &m, 5, 5), Some(Duration::from_secs(45)));
}

#[tokio::test(start_paused = true)]
async fn max_ejection_percent_allows_at_least_one() {
    let o = Outliers::new(OutlierConfig::default());
    let m = members(3);
    assert!(
        fail(&o, &m, 0, 5).is_some(),
        "10% of 3 rounds to 0, but one may go"
    );
    assert!(
        fail(&o, &m, 1, 5).is_none(),
        "a second would exceed the limit"
    );
    assert!(!m[1].is_ejected(o.now()));
    let half = Outliers::new(OutlierConfig {
        max_ejection_percent: 50,
        ..OutlierConfig::default()
    });
    let m = members(4);
    assert!(fail(&half, &m, 0, 5).is_some());
    assert!(fail(&half, &m, 1, 5).is_some());
    assert!(fail(&half, &m, 2, 5).is_none());
    // After the first two return, a third may go.
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(half.on_failure(2, &m).is_some());
}

#[tokio::test(start_paused = true)]
async fn disabled_never_ejects() {
    let o = Outliers::new(OutlierConfig::disabled());
    let m = members(2);
    assert_eq!(fail(&o, &m, 0, 100), None);
    assert_eq!(m[0].totals(), (0, 100));
}
