//! The Kubernetes DNS spec (1.1.0) as a resolver sees it: dig over UDP and TCP against the
//! real binary. The record rules are covered in depth by podns-zone's and podns-server's own
//! tests; these check that the whole pipeline, from manifests to packets, honours them.

use crate::harness::{Server, example, in_both_modes, pod_ips};

in_both_modes! {
    fn schema_version_soa_and_ns(mode) {
        let server = Server::start_in(mode, &[&example("redis-statefulset")], &[]);
        for transport in ["+notcp", "+tcp"] {
            let txt = server.dig(&[transport, "TXT", "dns-version.cluster.local"]);
            txt.assert_answers("TXT", 1, 30);
            assert_eq!(txt.answer[0].data, "\"1.1.0\"");
            // Other types at dns-version: the name exists, so NODATA.
            server
                .dig(&[transport, "A", "dns-version.cluster.local"])
                .assert_negative("NOERROR", "cluster.local.");

            let soa = server.dig(&[transport, "SOA", "cluster.local"]);
            soa.assert_answers("SOA", 1, 30);
            assert!(
                soa.answer[0]
                    .data
                    .starts_with("ns.dns.cluster.local. hostmaster.cluster.local. "),
                "{}",
                soa.text
            );
            let ns = server.dig(&[transport, "NS", "cluster.local"]);
            ns.assert_answers("NS", 1, 30);
            assert_eq!(ns.answer[0].data, "ns.dns.cluster.local.");
            // The nameserver name resolves to where podns listens.
            let glue = server.dig(&[transport, "A", "ns.dns.cluster.local"]);
            assert_eq!(glue.data("A"), ["127.0.0.1"]);
        }
    }

    fn negative_answers_distinguish_nxdomain_from_nodata(mode) {
        let server = Server::start_in(mode, &[&example("redis-statefulset")], &[]);
        for transport in ["+notcp", "+tcp"] {
            // Search-path misses, the most common query in a cluster.
            for name in [
                "redis-headless.default.svc.cluster.local.default.svc.cluster.local",
                "redis-headless.svc.cluster.local",
                "nope.default.svc.cluster.local",
                "redis-9.redis-headless.default.svc.cluster.local",
                "x.redis-0.redis-headless.default.svc.cluster.local",
            ] {
                server
                    .dig(&[transport, name])
                    .assert_negative("NXDOMAIN", "cluster.local.");
            }
            // Names that exist without the asked type, and empty non-terminals.
            for (qtype, name) in [
                ("AAAA", "redis-headless.default.svc.cluster.local"),
                ("AAAA", "redis-0.redis-headless.default.svc.cluster.local"),
                ("TXT", "redis-headless.default.svc.cluster.local"),
                ("A", "default.svc.cluster.local"),
                ("A", "svc.cluster.local"),
                ("A", "_tcp.redis-headless.default.svc.cluster.local"),
                ("A", "_redis._tcp.redis-headless.default.svc.cluster.local"),
            ] {
                server
                    .dig(&[transport, qtype, name])
                    .assert_negative("NOERROR", "cluster.local.");
            }
            // The SOA of a negative answer carries the negative TTL (RFC 2308).
            let nx = server.dig(&[transport, "nope.default.svc.cluster.local"]);
            assert_eq!(nx.authority[0].ttl, 30);
        }
    }

    fn names_are_case_insensitive_and_the_question_is_echoed(mode) {
        let server = Server::start_in(mode, &[&example("redis-statefulset")], &[]);
        let dig = server.dig(&["Redis-0.REDIS-Headless.Default.SVC.cluster.LOCAL"]);
        dig.assert_answers("A", 1, 30);
        assert_eq!(
            dig.question,
            ["Redis-0.REDIS-Headless.Default.SVC.cluster.LOCAL. IN A"]
        );
    }

    fn ptr_records_for_vips_and_hostnamed_endpoints(mode) {
        let dir = example("nginx-deployment");
        let server = Server::start_in(mode, &[&dir, &example("redis-statefulset")], &[]);
        let vip = server.dig_short(&["nginx-clusterip.default.svc.cluster.local"]);
        let ptr = server.dig(&["-x", &vip[0]]);
        ptr.assert_answers("PTR", 1, 30);
        assert_eq!(
            ptr.answer[0].data,
            "nginx-clusterip.default.svc.cluster.local."
        );

        let ips = pod_ips(&example("redis-statefulset"), &[]);
        let ptr = server.dig(&["-x", &ips["redis-1"]]);
        ptr.assert_answers("PTR", 1, 30);
        assert_eq!(
            ptr.answer[0].data,
            "redis-1.redis-headless.default.svc.cluster.local."
        );

        // An address nobody has, inside the served reverse zone: NXDOMAIN with that zone's SOA.
        server
            .dig(&["-x", "192.0.2.77"])
            .assert_negative("NXDOMAIN", "in-addr.arpa.");
    }

    fn names_outside_the_zone_are_refused(mode) {
        let server = Server::start_in(mode, &[&example("redis-statefulset")], &[]);
        let dig = server.dig(&["example.com"]);
        assert_eq!(dig.status, "REFUSED", "{}", dig.text);
        assert!(dig.answer.is_empty());
    }

    fn rotation_spreads_the_first_address(mode) {
        let server = Server::start_in(mode, &[&example("redis-statefulset")], &[]);
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..12 {
            let ips = server.dig_short(&["redis-headless.default.svc.cluster.local"]);
            assert_eq!(ips.len(), 3);
            firsts.insert(ips[0].clone());
        }
        assert_eq!(
            firsts.len(),
            3,
            "every address came first at least once: {firsts:?}"
        );

        let fixed = Server::start_in(mode, &[&example("redis-statefulset")], &["--rotate=false"]);
        let first = fixed.dig_short(&["redis-headless.default.svc.cluster.local"]);
        for _ in 0..5 {
            assert_eq!(
                fixed.dig_short(&["redis-headless.default.svc.cluster.local"]),
                first
            );
        }
    }

    fn large_answers_truncate_over_udp_and_complete_over_tcp(mode) {
        // 100 pods × 3 named ports: 300 SRV records cannot fit in 512 or 1232 bytes.
        let dir = tempfile::tempdir().unwrap();
        let manifest = std::fs::read_to_string(example("cassandra").join("cassandra.yaml"))
            .unwrap()
            .replace("replicas: 3", "replicas: 100");
        std::fs::write(dir.path().join("big.yaml"), manifest).unwrap();
        let server = Server::start_in(mode, &[dir.path()], &[]);

        let udp = server.dig(&["+ignore", "+noedns", "cassandra.default.svc.cluster.local"]);
        assert!(udp.flags.iter().any(|f| f == "tc"), "{}", udp.text);
        let udp = server.dig(&[
            "+ignore",
            "+bufsize=1232",
            "SRV",
            "cassandra.default.svc.cluster.local",
        ]);
        assert!(udp.flags.iter().any(|f| f == "tc"), "{}", udp.text);
        assert_eq!(udp.edns_udp, Some(1232));

        // dig retries over TCP on TC, as a stub resolver does.
        let full = server.dig(&["SRV", "cassandra.default.svc.cluster.local"]);
        full.assert_answers("SRV", 300, 30);
        let tcp = server.dig(&["+tcp", "cassandra.default.svc.cluster.local"]);
        tcp.assert_answers("A", 100, 30);
        // A client with a big enough EDNS buffer gets 100 A records (1.6 kB) over UDP.
        let big = server.dig(&[
            "+ignore",
            "+bufsize=4096",
            "cassandra.default.svc.cluster.local",
        ]);
        assert!(
            big.flags.iter().any(|f| f == "tc"),
            "our UDP limit is 1232 by default"
        );
        let bigger = Server::start_in(mode, &[dir.path()], &["--max-udp-payload", "4096"]);
        let big = bigger.dig(&[
            "+ignore",
            "+bufsize=4096",
            "cassandra.default.svc.cluster.local",
        ]);
        assert!(!big.flags.iter().any(|f| f == "tc"), "{}", big.text);
        big.assert_answers("A", 100, 30);
    }

    fn dual_stack_answers_a_and_aaaa(mode) {
        let flags = [
            "--pod-cidr",
            "10.244.0.0/16",
            "--pod-cidr",
            "fd00:10:244::/64",
            "--service-cidr",
            "10.96.0.0/12",
            "--service-cidr",
            "fd00:10:96::/112",
        ];
        let server = Server::start_in(mode, &[&example("dual-stack")], &flags);
        let a = server.dig(&["etcd-0.etcd.default.svc.cluster.local"]);
        a.assert_answers("A", 1, 30);
        let aaaa = server.dig(&["AAAA", "etcd-0.etcd.default.svc.cluster.local"]);
        aaaa.assert_answers("AAAA", 1, 30);
        assert!(
            aaaa.answer[0].data.starts_with("fd00:10:244:"),
            "{}",
            aaaa.text
        );
        server
            .dig(&["AAAA", "etcd.default.svc.cluster.local"])
            .assert_answers("AAAA", 3, 30);
        let vip6 = server.dig(&["AAAA", "etcd-client.default.svc.cluster.local"]);
        vip6.assert_answers("AAAA", 1, 30);
        assert!(
            vip6.answer[0].data.starts_with("fd00:10:96::"),
            "{}",
            vip6.text
        );
        // ip6.arpa PTR for the pod's IPv6 address (spec 1.1.0).
        let ptr = server.dig(&["-x", &aaaa.answer[0].data]);
        ptr.assert_answers("PTR", 1, 30);
        assert_eq!(ptr.answer[0].data, "etcd-0.etcd.default.svc.cluster.local.");
    }
}
