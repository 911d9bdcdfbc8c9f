//! Manifests edited under a running server: the answers follow, and a broken edit keeps the
//! last good zone serving until it is fixed.

use std::fs;

use crate::harness::{Server, example, write_redis};

const SVC: &str = "redis-headless.default.svc.cluster.local";

#[test]
fn answers_follow_edits_and_a_broken_edit_keeps_the_last_good_zone() {
    let dir = tempfile::tempdir().unwrap();
    write_redis(dir.path(), 3);
    let server = Server::start(&[dir.path()], &[]);
    assert_eq!(server.dig_short(&[SVC]).len(), 3);
    let redis_0 = server.dig_short(&["redis-0.redis-headless.default.svc.cluster.local"]);
    assert_eq!(redis_0.len(), 1);

    // Scale 3 → 5: redis-3 and redis-4 appear.
    write_redis(dir.path(), 5);
    server.eventually("5 redis pods", || server.dig_short(&[SVC]).len() == 5);
    assert_eq!(
        server
            .dig_short(&["redis-4.redis-headless.default.svc.cluster.local"])
            .len(),
        1
    );

    // Scale 5 → 2: the highest ordinals go.
    write_redis(dir.path(), 2);
    server.eventually("2 redis pods", || server.dig_short(&[SVC]).len() == 2);
    server
        .dig(&["redis-2.redis-headless.default.svc.cluster.local"])
        .assert_negative("NXDOMAIN", "cluster.local.");
    assert_eq!(
        server
            .dig_short(&["redis-1.redis-headless.default.svc.cluster.local"])
            .len(),
        1
    );

    // A pod written by hand joins the service; deleting its file removes its address.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: redis-debug\n  labels:\n    app: redis\nspec:\n  containers:\n  - name: redis\n    image: redis:7.2\nstatus:\n  phase: Running\n  podIP: 10.244.250.9\n  conditions:\n  - type: Ready\n    status: \"True\"\n";
    fs::write(dir.path().join("pod.yaml"), pod).unwrap();
    server.eventually("the hand-written pod", || {
        server
            .dig_short(&[SVC])
            .contains(&"10.244.250.9".to_owned())
    });
    fs::remove_file(dir.path().join("pod.yaml")).unwrap();
    server.eventually("the pod deleted", || server.dig_short(&[SVC]).len() == 2);
    let before = {
        let mut ips = server.dig_short(&[SVC]);
        ips.sort();
        ips
    };

    // Break the YAML: the error names the file, and the previous answers keep serving.
    fs::write(
        dir.path().join("redis.yaml"),
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: [unclosed\n",
    )
    .unwrap();
    server.wait_for_log("manifests rejected", 1);
    assert!(
        server.log().contains("redis.yaml"),
        "the error names the file:\n{}",
        server.log()
    );
    let mut during = server.dig_short(&[SVC]);
    during.sort();
    assert_eq!(during, before);
    assert_eq!(
        server
            .dig_short(&["redis-0.redis-headless.default.svc.cluster.local"])
            .len(),
        1
    );

    // A well-formed but wrong object is rejected the same way (a field of the wrong type).
    let wrong = fs::read_to_string(example("redis-statefulset").join("redis.yaml"))
        .unwrap()
        .replace("replicas: 3", "replicas: three");
    fs::write(dir.path().join("redis.yaml"), wrong).unwrap();
    server.wait_for_log("manifests rejected", 2);
    assert!(
        server.log().contains("replicas"),
        "the error names the field:\n{}",
        server.log()
    );
    assert_eq!(server.dig_short(&[SVC]).len(), 2);

    // Fix it: the new state is served.
    write_redis(dir.path(), 4);
    server.eventually("4 redis pods after the fix", || {
        server.dig_short(&[SVC]).len() == 4
    });
    // StatefulSet identities are stable: redis-0 kept its address through all of this.
    assert_eq!(
        server.dig_short(&["redis-0.redis-headless.default.svc.cluster.local"]),
        redis_0
    );
}

#[test]
fn a_broken_first_load_fails_with_the_file_object_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = fs::read_to_string(example("redis-statefulset").join("redis.yaml"))
        .unwrap()
        .replace("replicas: 3", "replicas: three");
    fs::write(dir.path().join("redis.yaml"), wrong).unwrap();
    let output = crate::harness::podns()
        .args(["serve", "--listen", "127.0.0.1:0", "--manifests"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("redis.yaml"), "{stderr}");
    assert!(stderr.contains("StatefulSet"), "{stderr}");
    assert!(stderr.contains("default/redis"), "{stderr}");
    assert!(stderr.contains("replicas"), "{stderr}");
}
