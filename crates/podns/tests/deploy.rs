//! The deployment manifests in `deploy/` keep their promises (SECURITY.md §6): RBAC is
//! list/watch on exactly what the source reads, the pod runs unprivileged, the probes hit the
//! admin port podns is told to listen on, and the shipped ConfigMap is a config podns accepts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

/// Every document of a YAML file, as JSON values.
fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy(file)).expect("read deploy file");
    text.split("\n---")
        .filter(|doc| {
            doc.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .map(|doc| serde_saphyr::from_str(doc).expect("valid YAML"))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn rbac_is_list_and_watch_on_what_the_source_reads() {
    let docs = documents("clusterrole.yaml");
    let role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("a ClusterRole");
    let mut granted = Vec::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert_eq!(strings(&rule["verbs"]), ["list", "watch"], "{rule}");
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                granted.push(format!("{group}/{resource}"));
            }
        }
    }
    granted.sort();
    assert_eq!(
        granted,
        [
            "/namespaces",
            "/services",
            "discovery.k8s.io/endpointslices"
        ]
    );
    let binding = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .expect("a binding");
    assert_eq!(binding["roleRef"]["name"], "podns");
    assert_eq!(binding["subjects"][0]["name"], "podns");

    // Pods only in the optional role, and only list/watch there too.
    let pods = documents("clusterrole-pods.yaml");
    let rules = pods[0]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(strings(&rules[0]["resources"]), ["pods"]);
    assert_eq!(strings(&rules[0]["verbs"]), ["list", "watch"]);
}

#[test]
fn the_pod_runs_unprivileged_with_probes_on_the_admin_port() {
    let deployment = &documents("deployment.yaml")[0];
    let spec = &deployment["spec"]["template"]["spec"];
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["dnsPolicy"], "Default",
        "podns must not resolve through itself"
    );
    let container = &spec["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(
        strings(&security["capabilities"]["add"]),
        ["NET_BIND_SERVICE"]
    );
    assert!(
        !spec["affinity"]["podAntiAffinity"].is_null(),
        "replicas spread over nodes"
    );

    let args = strings(&container["args"]);
    let admin_port = args
        .iter()
        .find_map(|a| a.strip_prefix("--admin-listen="))
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|port| port.parse::<u64>().ok())
        .expect("--admin-listen=ADDR:PORT in the args");
    for (probe, path) in [("livenessProbe", "/health"), ("readinessProbe", "/ready")] {
        assert_eq!(container[probe]["httpGet"]["path"], path);
        assert_eq!(container[probe]["httpGet"]["port"], admin_port, "{probe}");
    }
    assert!(
        !container["resources"]["limits"]["memory"].is_null(),
        "a memory limit"
    );

    // The Service the kubelets point at selects these pods.
    let service = &documents("service.yaml")[0];
    let selector = service["spec"]["selector"].as_object().expect("selector");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in selector {
        assert_eq!(&labels[key], value, "pod label {key}");
    }
    let pdb = &documents("pdb.yaml")[0];
    assert_eq!(pdb["spec"]["minAvailable"], 1);
}

#[test]
fn the_shipped_config_map_is_a_config_podns_accepts() {
    let config_map = &documents("configmap.yaml")[0];
    let text = config_map["data"]["podns.yaml"]
        .as_str()
        .expect("data.podns.yaml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podns.yaml");
    // The pod reads the node's resolv.conf; here no query may leave the machine.
    std::fs::write(&path, text.replace("/etc/resolv.conf", "127.0.0.1:9")).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_podns"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "none"])
        .arg("--config")
        .arg(&path)
        .arg("--manifests")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/redis-statefulset"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn podns");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = Vec::new();
    let started = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let listening = line.contains("listening on");
                log.push(line);
                if listening {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "podns rejected the ConfigMap:\n{}", log.join("\n"));
}
