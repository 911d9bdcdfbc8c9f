//! `DiscoverServices` under tower's own power-of-two-choices balancer: every endpoint of the set
//! gets traffic, and endpoints that leave stop getting it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podns_client::{Discovery, Endpoint, RefreshConfig, Resolution, Source};
use tower::balance::p2c::Balance;
use tower::load::Constant;
use tower::{Service, ServiceExt};

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 80))
}

/// A source whose endpoints the test sets.
#[derive(Clone)]
struct Settable(Arc<Mutex<Vec<u8>>>);

impl Source for Settable {
    async fn resolve(&self) -> podns_client::Result<Resolution> {
        let ips = self.0.lock().unwrap().clone();
        Ok(Resolution {
            endpoints: ips.into_iter().map(|i| Endpoint::new(addr(i))).collect(),
            ttl: Some(Duration::from_secs(300)),
            exists: true,
            name: "web.default.svc.cluster.local.".into(),
        })
    }
}

#[tokio::test]
async fn tower_p2c_balances_over_discovered_endpoints() {
    let source = Settable(Arc::new(Mutex::new(vec![1, 2, 3])));
    let discovery = Discovery::from_source(source.clone(), "web", RefreshConfig::default());
    discovery.ready().await;
    let services = discovery.discover_services(|endpoint: &Endpoint| {
        let addr = endpoint.addr;
        Constant::new(
            tower::service_fn(move |()| async move { Ok::<_, Infallible>(addr) }),
            1,
        )
    });
    let mut balance = Balance::new(services);
    let mut served: HashMap<SocketAddr, usize> = HashMap::new();
    for _ in 0..300 {
        let addr = balance.ready().await.unwrap().call(()).await.unwrap();
        *served.entry(addr).or_default() += 1;
    }
    assert_eq!(served.len(), 3, "{served:?}");
    assert!(served.values().all(|n| *n > 50), "{served:?}");

    *source.0.lock().unwrap() = vec![3];
    discovery.refresh();
    let mut rx = discovery.watch();
    rx.wait_for(|set| set.len() == 1).await.unwrap();
    // The balancer polls discovery when it is polled for readiness.
    let mut after: HashMap<SocketAddr, usize> = HashMap::new();
    for _ in 0..50 {
        let addr = balance.ready().await.unwrap().call(()).await.unwrap();
        *after.entry(addr).or_default() += 1;
    }
    assert_eq!(after.keys().copied().collect::<Vec<_>>(), [addr(3)]);
}
