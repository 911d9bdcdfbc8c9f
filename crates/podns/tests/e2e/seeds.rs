//! The seed texts' dig and nslookup outputs, reproduced on the matching example folders.
//! Same names, record counts, TTLs and structure; the IPs are podns's own, checked against
//! what `podns get` says it assigned.

use crate::harness::{Server, example, get_json, in_both_modes, pod_ips};

/// What `+search` means inside a pod of namespace `default` (seed 001, 002).
const SEARCH: &str = "+domain=default.svc.cluster.local";
/// The kubelet writes `ndots:5` into every pod's resolv.conf, so short names try the search list first.
const NDOTS: &str = "+ndots=5";

#[test]
fn seed_002_deployment_pods_are_named_like_kubernetes_names_them() {
    let pods = pod_ips(&example("nginx-deployment"), &[]);
    let nginx: Vec<&String> = pods
        .keys()
        .filter(|n| n.starts_with("nginx-deployment-"))
        .collect();
    assert_eq!(nginx.len(), 2);
    for name in &nginx {
        // nginx-deployment-<pod-template-hash>-<5 chars>, e.g. nginx-deployment-55d7bb4b86-vg4lt
        let rest = name.trim_start_matches("nginx-deployment-");
        let (hash, suffix) = rest.split_once('-').expect("hash-suffix");
        assert!((6..=10).contains(&hash.len()), "{name}");
        assert_eq!(suffix.len(), 5, "{name}");
        let alphabet = "bcdfghjklmnpqrstvwxz2456789";
        assert!(
            hash.chars()
                .chain(suffix.chars())
                .all(|c| alphabet.contains(c)),
            "{name}"
        );
    }
    // The multitool DaemonSet runs one pod per node.
    let three = pod_ips(
        &example("nginx-deployment"),
        &["--nodes", "worker,worker2,control-plane"],
    );
    assert_eq!(
        three.keys().filter(|n| n.starts_with("multitool-")).count(),
        3
    );
}

in_both_modes! {
    fn seed_002_clusterip_service_answers_its_vip(mode) {
        let dir = example("nginx-deployment");
        let server = Server::start_in(mode, &[&dir], &[]);
        let dig = server.dig(&[SEARCH, NDOTS, "nginx-clusterip"]);
        assert_eq!(
            dig.question,
            ["nginx-clusterip.default.svc.cluster.local. IN A"]
        );
        dig.assert_answers("A", 1, 30);
        assert_eq!(
            dig.answer[0].name,
            "nginx-clusterip.default.svc.cluster.local."
        );
        let services = get_json(&dir, "services", &[]);
        let vip = services["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["metadata"]["name"] == "nginx-clusterip")
            .and_then(|s| s["spec"]["clusterIP"].as_str())
            .expect("nginx-clusterip has a VIP")
            .to_owned();
        assert!(
            vip.starts_with("10."),
            "VIP {vip} from the default 10.96.0.0/12"
        );
        assert_eq!(dig.data("A"), [vip]);
    }

    fn seed_002_headless_deployment_answers_every_pod_ip(mode) {
        let dir = example("nginx-deployment");
        let server = Server::start_in(mode, &[&dir], &[]);
        let dig = server.dig(&[SEARCH, NDOTS, "nginx-headless"]);
        assert_eq!(
            dig.question,
            ["nginx-headless.default.svc.cluster.local. IN A"]
        );
        dig.assert_answers("A", 2, 30);
        let mut expected: Vec<String> = pod_ips(&dir, &[])
            .into_iter()
            .filter(|(name, _)| name.starts_with("nginx-deployment-"))
            .map(|(_, ip)| ip)
            .collect();
        expected.sort();
        assert_eq!(dig.data("A"), expected);
        // Deployment pods have no hostname: no per-pod names (seed 002 §4).
        let pods = pod_ips(&dir, &[]);
        let pod = pods
            .keys()
            .find(|n| n.starts_with("nginx-deployment-"))
            .unwrap();
        let pod_name = format!("{pod}.nginx-headless.default.svc.cluster.local");
        server
            .dig(&[&pod_name])
            .assert_negative("NXDOMAIN", "cluster.local.");
    }

    fn seed_002_redis_statefulset_names_every_pod(mode) {
        let dir = example("redis-statefulset");
        let server = Server::start_in(mode, &[&dir], &[]);
        let ips = pod_ips(&dir, &[]);
        assert_eq!(
            ips.keys().collect::<Vec<_>>(),
            ["redis-0", "redis-1", "redis-2"]
        );

        let dig = server.dig(&[SEARCH, NDOTS, "redis-headless"]);
        assert_eq!(
            dig.question,
            ["redis-headless.default.svc.cluster.local. IN A"]
        );
        dig.assert_answers("A", 3, 30);
        let mut all: Vec<String> = ips.values().cloned().collect();
        all.sort();
        assert_eq!(dig.data("A"), all);

        for (pod, ip) in &ips {
            let dig = server.dig(&[SEARCH, NDOTS, &format!("{pod}.redis-headless")]);
            assert_eq!(
                dig.question,
                [format!(
                    "{pod}.redis-headless.default.svc.cluster.local. IN A"
                )]
            );
            dig.assert_answers("A", 1, 30);
            assert_eq!(
                dig.answer[0].name,
                format!("{pod}.redis-headless.default.svc.cluster.local.")
            );
            assert_eq!(&dig.answer[0].data, ip);
        }

        // "use dig SRV _redis._tcp.redis-headless.default.svc.cluster.local"
        let dig = server.dig(&[
            "SRV",
            "_redis._tcp.redis-headless.default.svc.cluster.local",
        ]);
        dig.assert_answers("SRV", 3, 30);
        let mut targets: Vec<String> = dig
            .data("SRV")
            .iter()
            .map(|d| {
                let f: Vec<&str> = d.split_whitespace().collect();
                assert_eq!(f[0], "0", "priority: {d}");
                assert_eq!(f[1], "33", "weight ⌊100/3⌋: {d}");
                assert_eq!(f[2], "6379", "port: {d}");
                f[3].to_owned()
            })
            .collect();
        targets.sort();
        assert_eq!(
            targets,
            [
                "redis-0.redis-headless.default.svc.cluster.local.",
                "redis-1.redis-headless.default.svc.cluster.local.",
                "redis-2.redis-headless.default.svc.cluster.local."
            ]
        );
        // The additional section carries the targets' addresses (spec 2.4.2 "may include").
        let mut glue: Vec<String> = dig
            .additional
            .iter()
            .filter(|rr| rr.rtype == "A")
            .map(|rr| rr.data.clone())
            .collect();
        glue.sort();
        assert_eq!(glue, all);
    }

    fn seed_001_consul_srv_lists_every_named_port_of_every_pod(mode) {
        let dir = example("consul");
        let server = Server::start_in(mode, &[&dir], &[]);
        let dig = server.dig(&["consul-server", "+search", SEARCH, NDOTS]);
        assert_eq!(
            dig.question,
            ["consul-server.default.svc.cluster.local. IN A"]
        );
        dig.assert_answers("A", 3, 30);
        assert!(dig.flags.contains(&"rd".to_owned()) && !dig.flags.contains(&"ra".to_owned()));

        // `dig consul-server +search srv +short`: 15 lines "0 4 <port> consul-server-N.…": 8 ports
        // × 3 pods = 24 records (weight ⌊100/24⌋ = 4), of which TCP/UDP pairs on one port coincide.
        let mut lines = server.dig_short(&["consul-server", "+search", SEARCH, NDOTS, "srv"]);
        lines.sort();
        let mut expected = Vec::new();
        for pod in 0..3 {
            for port in [8300, 8301, 8302, 8500, 8600] {
                expected.push(format!(
                    "0 4 {port} consul-server-{pod}.consul-server.default.svc.cluster.local."
                ));
            }
        }
        expected.sort();
        assert_eq!(lines, expected);

        // Each named port also has its own SRV name, protocol label in lower case.
        let udp = server.dig(&[
            "SRV",
            "_serflan-udp._udp.consul-server.default.svc.cluster.local",
        ]);
        udp.assert_answers("SRV", 3, 30);
        assert!(
            udp.data("SRV")
                .iter()
                .all(|d| d.starts_with("0 33 8301 consul-server-"))
        );
    }

    fn seed_000_cassandra_a_and_srv(mode) {
        let dir = example("cassandra");
        let server = Server::start_in(mode, &[&dir], &[]);
        // nslookup cassandra.default.svc.cluster.local → three addresses.
        let text = server.nslookup("cassandra.default.svc.cluster.local");
        assert_eq!(
            text.matches("Name:\tcassandra.default.svc.cluster.local")
                .count(),
            3,
            "{text}"
        );
        assert_eq!(text.matches("Address: 10.244.").count(), 3, "{text}");

        // dig SRV cassandra.default.svc.cluster.local: the cql records of the seed, one per pod…
        let dig = server.dig(&["SRV", "cassandra.default.svc.cluster.local"]);
        assert_eq!(dig.status, "NOERROR");
        let cql: Vec<String> = dig
            .data("SRV")
            .into_iter()
            .filter(|d| d.contains(" 9042 "))
            .collect();
        assert_eq!(cql.len(), 3, "{}", dig.text);
        for (i, d) in cql.iter().enumerate() {
            assert!(
                d.ends_with(&format!(
                    " 9042 cassandra-{i}.cassandra.default.svc.cluster.local."
                )),
                "{d}"
            );
        }
        // …and the other two named ports too (3 ports × 3 pods, as CoreDNS answers).
        assert_eq!(dig.answer.len(), 9, "{}", dig.text);
        let per_port = server.dig(&["SRV", "_cql._tcp.cassandra.default.svc.cluster.local"]);
        per_port.assert_answers("SRV", 3, 30);
    }

    fn seed_000_statefulset_web_pods_have_stable_names(mode) {
        let server = Server::start_in(mode, &[&example("web-statefulset")], &[]);
        for i in 0..3 {
            let dig = server.dig(&[&format!(
                "web-{i}.headless-service.default.svc.cluster.local"
            )]);
            dig.assert_answers("A", 1, 30);
        }
        server
            .dig(&["web-3.headless-service.default.svc.cluster.local"])
            .assert_negative("NXDOMAIN", "cluster.local.");
        // Unnamed ports get no SRV record (spec 2.4.2).
        let srv = server.dig(&["SRV", "headless-service.default.svc.cluster.local"]);
        srv.assert_negative("NOERROR", "cluster.local.");
    }

    fn seed_003_mysql_statefulset(mode) {
        let server = Server::start_in(mode, &[&example("mysql")], &[]);
        let ips = server.dig_short(&["mysql.default.svc.cluster.local"]);
        assert_eq!(ips.len(), 3, "{ips:?}");
        for i in 0..3 {
            let ip = server.dig_short(&[&format!("mysql-{i}.mysql.default.svc.cluster.local")]);
            assert_eq!(ip.len(), 1);
            assert!(ips.contains(&ip[0]));
        }
    }

    fn seed_004_nslookup_of_a_headless_deployment(mode) {
        let dir = example("nginx-headless-service");
        let server = Server::start_in(mode, &[&dir], &[]);
        let text = server.nslookup("nginx-headless-service.default.svc.cluster.local");
        let mut addresses: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Address: "))
            .map(str::to_owned)
            .collect();
        addresses.sort();
        let mut expected: Vec<String> = pod_ips(&dir, &[]).into_values().collect();
        expected.sort();
        assert_eq!(addresses.len(), 3, "{text}");
        assert_eq!(addresses, expected);
    }

    fn seed_000_manual_endpoints_and_external_name(mode) {
        let server = Server::start_in(
            mode,
            &[&example("manual-endpoints"), &example("external-name")],
            &[],
        );
        let dig = server.dig(&["manual-endpoints.default.svc.cluster.local"]);
        dig.assert_answers("A", 3, 30);
        assert_eq!(
            dig.data("A"),
            ["192.168.1.11", "192.168.1.12", "192.168.1.13"]
        );

        for qtype in ["A", "AAAA", "SRV", "CNAME"] {
            let dig = server.dig(&[qtype, "external-db.default.svc.cluster.local"]);
            dig.assert_answers("CNAME", 1, 30);
            assert_eq!(dig.answer[0].data, "database.example.com.", "{qtype}");
        }
    }

    fn seed_003_only_ready_pods_are_in_dns(mode) {
        let server = Server::start_in(mode, &[&example("not-ready")], &[]);
        // spec 2.4.1: a headless service without ready endpoints answers NXDOMAIN.
        server
            .dig(&["api.default.svc.cluster.local"])
            .assert_negative("NXDOMAIN", "cluster.local.");
        let dig = server.dig(&["api-all.default.svc.cluster.local"]);
        dig.assert_answers("A", 2, 30);
    }
}
