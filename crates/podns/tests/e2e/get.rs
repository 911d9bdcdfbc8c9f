//! `podns get`: kubectl-style views of what podns derived, agreeing with what it serves.

use crate::harness::{example, get_json, podns};

fn get(args: &[&str]) -> String {
    let output = podns()
        .arg("get")
        .args(args)
        .output()
        .expect("run podns get");
    assert!(
        output.status.success(),
        "podns get {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn endpointslices_are_derived_as_the_controller_does() {
    let dir = example("redis-statefulset");
    let dir = dir.to_str().unwrap();
    let table = get(&["endpointslices", "-n", "default", "--manifests", dir]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert!(row[0].starts_with("redis-headless-"), "{table}");
    assert_eq!(row[1], "IPv4");
    assert_eq!(row[2], "6379");
    assert_eq!(row[3].split(',').count(), 3, "{table}");

    // The YAML a user compares with seed 002's `kubectl get endpointslice -o yaml`.
    let yaml = get(&[
        "endpointslices",
        "-n",
        "default",
        "-o",
        "yaml",
        "--manifests",
        dir,
    ]);
    for needle in [
        "kubernetes.io/service-name: redis-headless",
        "service.kubernetes.io/headless",
        "addressType: IPv4",
        "hostname: redis-0",
        "hostname: redis-1",
        "hostname: redis-2",
        "kind: Pod",
        "name: redis",
        "port: 6379",
        "protocol: TCP",
        "ready: true",
    ] {
        assert!(yaml.contains(needle), "missing {needle:?} in:\n{yaml}");
    }

    // Deployment pods get no hostname (seed 002).
    let json = get_json(&example("nginx-deployment"), "endpointslices", &[]);
    let headless = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "nginx-headless")
        .expect("a slice for nginx-headless");
    let endpoints = headless["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2);
    assert!(endpoints.iter().all(|e| e.get("hostname").is_none()));
    assert!(endpoints.iter().all(|e| {
        e["targetRef"]["name"]
            .as_str()
            .unwrap()
            .starts_with("nginx-deployment-")
    }));
    // The named targetPort `http` resolved against the container port.
    assert_eq!(headless["ports"][0]["port"], 80);
    assert_eq!(headless["ports"][0]["name"], "http");
}

#[test]
fn services_and_pods_tables() {
    let dir = example("nginx-deployment");
    let dir = dir.to_str().unwrap();
    let services = get(&["services", "--manifests", dir]);
    let row = |name: &str| -> Vec<String> {
        services
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in:\n{services}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let clusterip = row("nginx-clusterip");
    assert_eq!(clusterip[1], "ClusterIP");
    assert!(clusterip[2].starts_with("10."), "{services}");
    assert_eq!(clusterip[4], "80/TCP");
    let headless = row("nginx-headless");
    assert_eq!(&headless[1..], ["ClusterIP", "None", "<none>", "80/TCP"]);

    let pods = get(&["pods", "-o", "wide", "--manifests", dir]);
    let nginx: Vec<&str> = pods
        .lines()
        .filter(|l| l.starts_with("nginx-deployment-"))
        .collect();
    assert_eq!(nginx.len(), 2, "{pods}");
    for line in nginx {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&f[1..4], ["1/1", "Running", "0"], "{line}");
        assert!(f[4].starts_with("10.244."), "{line}");
    }

    // -A adds the namespace column; another namespace has nothing.
    let all = get(&["services", "-A", "--manifests", dir]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );
    let none = get(&["services", "-n", "kube-system", "--manifests", dir]);
    assert_eq!(none.trim(), "No resources found in kube-system namespace.");
}

#[test]
fn records_show_the_zone() {
    let dir = example("redis-statefulset");
    let records = get(&["records", "--manifests", dir.to_str().unwrap()]);
    let has = |name: &str, rtype: &str| {
        records.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 4 && f[0] == name && f[3] == rtype
        })
    };
    assert!(
        has("redis-headless.default.svc.cluster.local.", "A"),
        "{records}"
    );
    assert!(
        has("redis-0.redis-headless.default.svc.cluster.local.", "A"),
        "{records}"
    );
    assert!(
        has(
            "_redis._tcp.redis-headless.default.svc.cluster.local.",
            "SRV"
        ),
        "{records}"
    );
    assert!(has("dns-version.cluster.local.", "TXT"), "{records}");
    assert!(has("cluster.local.", "SOA"), "{records}");
}

#[test]
fn every_example_loads() {
    let root = example("");
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if dir.is_dir() {
            let out = get(&["services", "-A", "--manifests", dir.to_str().unwrap()]);
            assert!(out.starts_with("NAMESPACE"), "{}: {out}", dir.display());
        }
    }
}
