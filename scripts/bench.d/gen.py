#!/usr/bin/env python3
"""Synthetic clusters, zone files and dnsperf query files for scripts/bench (stdlib only).

  gen.py cluster --services N --endpoints M --out DIR [--namespaces K]
      DIR/manifests/<ns>.yaml (Services + StatefulSets/Deployments) and DIR/services.json.
      Service i: i % 4 in {0, 1} -> headless StatefulSet (M replicas, per-pod names),
                 i % 4 == 2      -> headless Deployment (M replicas, no hostnames),
                 i % 4 == 3      -> ClusterIP service in front of a Deployment (M replicas).
  gen.py zones --records RECORDS --out DIR
      splits `podns get records` output into one zone file per apex (by SOA), for NSD/Knot.
  gen.py queries --records RECORDS --meta services.json --count C --out FILE [--mix realistic|headless]
      realistic: ~68 % NXDOMAIN search-path misses, 15 % AAAA NODATA, 15 % positive A, 2 % SRV.
      headless:  only A queries for headless service names (answer size = endpoints per service).
"""
import argparse
import json
import os
import random
import sys

ZONE = "cluster.local"
APPS = [
    ("redis", "redis", 6379), ("postgres", "postgres", 5432), ("mysql", "mysql", 3306),
    ("kafka", "kafka", 9092), ("zookeeper", "client", 2181), ("cassandra", "cql", 9042),
    ("etcd", "client", 2379), ("consul", "http", 8500), ("elastic", "http", 9200),
    ("mongo", "mongo", 27017), ("rabbitmq", "amqp", 5672), ("nats", "client", 4222),
    ("web", "http", 80), ("api", "http", 8080), ("auth", "grpc", 9090), ("cart", "http", 8080),
    ("search", "http", 8080), ("billing", "grpc", 9090), ("gateway", "https", 443),
    ("metrics", "metrics", 9100),
]


def namespaces_for(n_services, k=None):
    if k is None:
        k = max(1, min(20, n_services // 25))
    return ["default"] + [f"team-{j}" for j in range(1, k)]


def cluster(args):
    nss = namespaces_for(args.services, args.namespaces)
    mdir = os.path.join(args.out, "manifests")
    os.makedirs(mdir, exist_ok=True)
    docs = {ns: [] for ns in nss}
    meta = []
    m = args.endpoints
    for i in range(args.services):
        ns = nss[i % len(nss)]
        app, port_name, port = APPS[i % len(APPS)]
        kind = ("sts", "sts", "deploy", "clusterip")[i % 4]
        base = f"{app}-{i}"
        svc = f"{base}-headless" if kind != "clusterip" else base
        headless = "  clusterIP: None\n" if kind != "clusterip" else ""
        docs[ns].append(
            f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {svc}\n  namespace: {ns}\n"
            f"spec:\n{headless}  selector:\n    app: {base}\n  ports:\n"
            f"    - name: {port_name}\n      port: {port}\n      targetPort: {port}\n"
        )
        if kind == "sts":
            workload = (
                f"apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {base}\n  namespace: {ns}\n"
                f"spec:\n  serviceName: {svc}\n  replicas: {m}\n"
            )
        else:
            workload = (
                f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {base}\n  namespace: {ns}\n"
                f"spec:\n  replicas: {m}\n"
            )
        workload += (
            f"  selector:\n    matchLabels:\n      app: {base}\n  template:\n    metadata:\n"
            f"      labels:\n        app: {base}\n    spec:\n      containers:\n"
            f"        - name: {app}\n          image: {app}:latest\n          ports:\n"
            f"            - name: {port_name}\n              containerPort: {port}\n"
        )
        docs[ns].append(workload)
        meta.append({"name": svc, "ns": ns, "kind": kind, "port": port_name, "workload": base})
    for ns, ds in docs.items():
        with open(os.path.join(mdir, f"{ns}.yaml"), "w") as f:
            f.write("---\n".join(ds))
    with open(os.path.join(args.out, "services.json"), "w") as f:
        json.dump({"zone": ZONE, "namespaces": nss, "endpoints": m, "services": meta}, f)


def read_records(path):
    """Yields (name, ttl, type, data) from `podns get records` output."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            parts = line.split(None, 4)
            if len(parts) < 5 or parts[2] != "IN":
                continue
            yield parts[0].lower(), parts[1], parts[3].upper(), parts[4]


def zones(args):
    recs = list(read_records(args.records))
    apexes = sorted({n for n, _, t, _ in recs if t == "SOA"}, key=len, reverse=True)
    if not apexes:
        sys.exit("gen.py zones: no SOA in records")
    os.makedirs(args.out, exist_ok=True)
    out = {a: [] for a in apexes}
    for n, ttl, t, d in recs:
        for a in apexes:
            if n == a or n.endswith("." + a):
                out[a].append(f"{n} {ttl} IN {t} {d}\n")
                break
        else:
            print(f"gen.py zones: record outside every zone: {n}", file=sys.stderr)
    listing = []
    for a in apexes:
        fname = (a.rstrip(".") or "root") + ".zone"
        with open(os.path.join(args.out, fname), "w") as f:
            f.write(f"$ORIGIN {a}\n")
            # SOA first (zone file convention; NSD and Knot expect it at the apex).
            f.writelines(sorted(out[a], key=lambda l: 0 if l.split()[3] == "SOA" else 1))
        listing.append({"zone": a, "file": fname, "records": len(out[a])})
    json.dump(listing, open(os.path.join(args.out, "zones.json"), "w"))


def queries(args):
    rnd = random.Random(args.seed)
    meta = json.load(open(args.meta))
    z = meta["zone"]
    by_type = {}
    for n, _, t, _ in read_records(args.records):
        by_type.setdefault(t, set()).add(n)
    a_names = by_type.get("A", set())
    aaaa_names = by_type.get("AAAA", set())
    srv_names = sorted(n for n in by_type.get("SRV", set()) if n.startswith("_"))
    svcs = meta["services"]
    headless = [s for s in svcs if s["kind"] != "clusterip"]
    cip = [s for s in svcs if s["kind"] == "clusterip"]
    fq = lambda s: f"{s['name']}.{s['ns']}.svc.{z}."
    pods = sorted(n for n in a_names if n.count(".") == 6 and n.endswith(f".svc.{z}."))
    if args.mix == "headless":
        names = [fq(s) for s in headless if fq(s) in a_names]
        with open(args.out, "w") as f:
            for _ in range(args.count):
                f.write(f"{rnd.choice(names)} A\n")
        return
    nss = meta["namespaces"]
    externals = ["api.github.com", "www.google.com", "s3.amazonaws.com", "registry-1.docker.io",
                 "sentry.io", "pypi.org", "login.microsoftonline.com", "hooks.slack.com"]

    def miss():
        # A pod in namespace `me` resolving `short` with ndots:5 walks the search list
        # <me>.svc.z, svc.z, z before the name itself: every step that is not the answer is NXDOMAIN.
        me = rnd.choice(nss)
        s = rnd.choice(svcs)
        r = rnd.random()
        if r < 0.35:   # FQDN without the trailing dot: all three search steps miss
            short = fq(s).rstrip(".")
            suffix = rnd.choice([f"{me}.svc.{z}", f"svc.{z}", z])
        elif r < 0.55:  # <svc>.<ns> from another namespace: first step misses
            short = f"{s['name']}.{s['ns']}"
            suffix = f"{me}.svc.{z}"
        elif r < 0.75:  # <svc> alone: the svc.z and z steps miss after a hit... (or miss all if other ns)
            short = s["name"]
            suffix = rnd.choice([f"svc.{z}", z] + ([f"{me}.svc.{z}"] if me != s["ns"] else []))
        else:          # external names: every in-cluster step misses
            short = rnd.choice(externals)
            suffix = rnd.choice([f"{me}.svc.{z}", f"svc.{z}", z])
        name = f"{short}.{suffix}."
        return name, ("A" if rnd.random() < 0.5 else "AAAA")

    def nodata():
        # AAAA for names that exist with A only (single-stack IPv4 cluster).
        r = rnd.random()
        if r < 0.5 or not pods:
            return fq(rnd.choice(svcs)), "AAAA"
        return rnd.choice(pods), "AAAA"

    def positive():
        r = rnd.random()
        if r < 0.4 and headless:
            return fq(rnd.choice(headless)), "A"
        if r < 0.7 and pods:
            return rnd.choice(pods), "A"
        return fq(rnd.choice(cip or svcs)), "A"

    def srv():
        return rnd.choice(srv_names), "SRV"

    mix = [(0.68, miss), (0.15, nodata), (0.15, positive), (0.02, srv)]
    if not srv_names:
        mix = [(0.68, miss), (0.16, nodata), (0.16, positive)]
    stats = {}
    with open(args.out, "w") as f:
        for _ in range(args.count):
            r = rnd.random()
            acc = 0.0
            for p, g in mix:
                acc += p
                if r < acc:
                    break
            name, t = g()
            # A miss may accidentally hit (e.g. <svc>.svc.z never exists; fine). Check and re-class.
            if g is miss and (name in a_names or name in aaaa_names):
                name, t = f"nx{rnd.randrange(10**6)}.{name}", t
            stats[g.__name__] = stats.get(g.__name__, 0) + 1
            f.write(f"{name} {t}\n")
    print(json.dumps({k: round(v / args.count, 3) for k, v in sorted(stats.items())}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cluster")
    c.add_argument("--services", type=int, required=True)
    c.add_argument("--endpoints", type=int, required=True)
    c.add_argument("--namespaces", type=int)
    c.add_argument("--out", required=True)
    zp = sub.add_parser("zones")
    zp.add_argument("--records", required=True)
    zp.add_argument("--out", required=True)
    q = sub.add_parser("queries")
    q.add_argument("--records", required=True)
    q.add_argument("--meta", required=True)
    q.add_argument("--count", type=int, default=100000)
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--mix", choices=["realistic", "headless"], default="realistic")
    q.add_argument("--out", required=True)
    a = p.parse_args()
    {"cluster": cluster, "zones": zones, "queries": queries}[a.cmd](a)


if __name__ == "__main__":
    main()
