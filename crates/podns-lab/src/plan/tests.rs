use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use podns_cluster::{ClusterStore, ControllerConfig};

use super::*;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn redis_lab() -> (Vec<Object>, Network, Vec<LabPod>) {
    let objects = podns_cluster::load(&[example("redis-lab")]).expect("example loads");
    let mut store = ClusterStore::default();
    store.resync(objects.clone());
    let config = ControllerConfig::default();
    let derived = podns_cluster::derive(&store, &config).expect("derives");
    let (network, pods) =
        plan(&objects, &derived, &config.pod_cidrs, "cluster.local").expect("plans");
    (objects, network, pods)
}

#[test]
fn statefulset_pods_start_in_ordinal_order_after_the_rest() {
    let (_, _, pods) = redis_lab();
    let stages: Vec<Vec<&str>> = start_stages(&pods)
        .into_iter()
        .map(|s| s.into_iter().map(|i| pods[i].name.as_str()).collect())
        .collect();
    assert_eq!(
        stages,
        [
            vec!["multitool"],
            vec!["redis-0"],
            vec!["redis-1"],
            vec!["redis-2"]
        ]
    );
}

#[test]
fn pods_get_identity_command_and_port() {
    let (_, network, pods) = redis_lab();
    let redis1 = pods.iter().find(|p| p.name == "redis-1").unwrap();
    assert_eq!(redis1.hostname, "redis-1");
    assert_eq!(
        redis1.fqdn.as_deref(),
        Some("redis-1.redis-headless.default.svc.cluster.local")
    );
    assert_eq!(redis1.port, Some(6379));
    assert_eq!(redis1.command[..2], ["sh", "-c"]);
    assert_eq!(
        redis1.owner,
        Owner::StatefulSet {
            set: "redis".to_owned(),
            ordinal: 1,
            parallel: false
        }
    );
    let multitool = pods.iter().find(|p| p.name == "multitool").unwrap();
    assert_eq!(multitool.owner, Owner::Bare);
    assert_eq!(multitool.fqdn, None);
    assert_eq!(
        multitool.dns_name("cluster.local"),
        None,
        "no headless Service selects it"
    );
    assert_eq!(redis1.dns_name("cluster.local"), redis1.fqdn);
    let mut anonymous = redis1.clone();
    anonymous.fqdn = None;
    let dashed = redis1.ip.to_string().replace('.', "-");
    assert_eq!(
        anonymous.dns_name("cluster.local"),
        Some(format!("{dashed}.redis-headless.default.svc.cluster.local"))
    );
    assert_eq!(multitool.port, None);
    assert!(
        pods.iter()
            .all(|p| network.cidr.contains(&p.ip) && p.ip != network.bridge_ip)
    );
    assert_eq!(network.bridge_ip, Ipv4Addr::new(10, 244, 0, 1));
}

#[test]
fn bridge_takes_the_first_address_no_pod_has() {
    let (objects, _, mut pods) = redis_lab();
    pods[0].object.status.as_mut().unwrap().pod_ip = Some("10.244.0.1".to_owned());
    pods[0].object.status.as_mut().unwrap().pod_ips = None;
    let derived = DerivedCluster {
        pods: pods.iter().map(|p| p.object.clone()).collect(),
        ..DerivedCluster::default()
    };
    let cidrs = ["10.244.0.0/16".parse().unwrap()];
    let (network, _) = plan(&objects, &derived, &cidrs, "cluster.local").unwrap();
    assert_eq!(network.bridge_ip, Ipv4Addr::new(10, 244, 0, 2));
}

#[test]
fn replacements_follow_the_owner() {
    let (_, network, mut pods) = redis_lab();
    let redis1 = pods.iter().find(|p| p.name == "redis-1").unwrap();
    assert_eq!(
        replacement(redis1, &network, &pods, 0),
        Some((redis1.name.clone(), redis1.ip))
    );
    let bare = pods.iter().find(|p| p.name == "multitool").unwrap();
    assert_eq!(replacement(bare, &network, &pods, 0), None);

    pods[0].owner = Owner::Controller {
        owner_kind: "ReplicaSet".to_owned(),
        owner_name: "web-55d7bb4b86".to_owned(),
    };
    let (name, ip) = replacement(&pods[0], &network, &pods, 0).unwrap();
    assert!(name.starts_with("web-55d7bb4b86-") && name.len() == "web-55d7bb4b86-".len() + 5);
    assert!(network.cidr.contains(&ip) && ip != network.bridge_ip);
    assert!(pods.iter().all(|p| p.ip != ip && p.name != name));
    let again = replacement(&pods[0], &network, &pods, 1).unwrap();
    assert_ne!(again.0, name, "each generation gets a new name");
}

/// What the lab serves must be manifests podns reads back: the explicit pods replace the
/// StatefulSet's, keep their addresses, and only ready ones are endpoints.
#[test]
fn served_manifests_load_back() {
    let (objects, _, mut pods) = redis_lab();
    pods.iter_mut().for_each(|p| p.ready = p.name != "redis-2");
    let dir = std::env::temp_dir().join(format!("podns-lab-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let objects_json = served_objects(&objects).unwrap();
    std::fs::write(dir.join("objects.json"), objects_json.to_string()).unwrap();
    std::fs::write(
        dir.join("pods.json"),
        served_pods(&pods).unwrap().to_string(),
    )
    .unwrap();
    let loaded = podns_cluster::load(std::slice::from_ref(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
    let loaded = loaded.expect("served manifests load");
    let mut store = ClusterStore::default();
    store.resync(loaded);
    let derived = podns_cluster::derive(&store, &ControllerConfig::default()).unwrap();
    let ips: BTreeSet<(String, String)> = derived
        .pods
        .iter()
        .map(|p| {
            let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone());
            (p.metadata.name.clone().unwrap(), ip.unwrap())
        })
        .collect();
    let want: BTreeSet<(String, String)> = pods
        .iter()
        .map(|p| (p.name.clone(), p.ip.to_string()))
        .collect();
    assert_eq!(
        ips, want,
        "the served pods keep the lab's names and addresses"
    );
    let endpoints: Vec<(Option<String>, Option<bool>)> = derived
        .endpoint_slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            (
                e.hostname.clone(),
                e.conditions.as_ref().and_then(|c| c.ready),
            )
        })
        .collect();
    assert!(
        endpoints.contains(&(Some("redis-1".to_owned()), Some(true))),
        "{endpoints:?}"
    );
    assert!(
        endpoints.contains(&(Some("redis-2".to_owned()), Some(false))),
        "{endpoints:?}"
    );
}
