"""Markdown tables and PNG plots from scripts/bench's results.json."""
import json
import os
import statistics
import sys

SERVERS = ["podns", "nsd", "knot"]


def mib(kb):
    return f"{kb / 1024:.1f}"


def us(s):
    return "–" if s is None else f"{s * 1e6:.0f}"


def round_ratio(m, n, ref="nsd"):
    """Median over rounds of QPS(n) / QPS(ref) within the same round (robust to load drifting between rounds)."""
    a, b = m["rounds"][n], m["rounds"][ref]
    return statistics.median(x["qps"] / y["qps"] for x, y in zip(a, b))


def p99_round_ratio(m, n, ref="nsd"):
    """Median over latency rounds of p99(n) / p99(ref) within the same round, or None."""
    rr = m.get("latency_rounds", {})
    a, b = rr.get(n, []), rr.get(ref, [])
    ratios = [x["p99"] / y["p99"] for x, y in zip(a, b) if x.get("p99") and y.get("p99")]
    return statistics.median(ratios) if ratios else None


def wire_summary(m, ref="nsd"):
    """The latency rounds as tcpdump on lo saw them (`--wire-latency`), or None."""
    rr = m.get("latency_rounds", {})
    wire = {n: [x.get("wire") for x in rounds] for n, rounds in rr.items()}
    if not any(w for ws in wire.values() for w in ws):
        return None
    parts = []
    for n in SERVERS:
        ws = wire.get(n)
        if ws:
            parts.append(f"{n} " + " / ".join(us(w["p99"]) if w else "–" for w in ws))
    text = ("Wire latency (tcpdump on lo: query datagram to answer, no client scheduling in it), "
            "p99 µs per round: " + "; ".join(parts) + ".")
    ratios = []
    for n in SERVERS:
        if n == ref or n not in wire or ref not in wire:
            continue
        rs = [a["p99"] / b["p99"] for a, b in zip(wire[n], wire[ref]) if a and b and b["p99"]]
        if rs:
            ratios.append(f"{n} {statistics.median(rs):.2f}")
    if ratios:
        text += " Wire p99 × NSD's, median of per-round ratios: " + ", ".join(ratios) + "."
    return text


def size_table(res, mix="realistic"):
    m = res["mixes"][mix]
    med = m["qps_median"]
    nsd = med.get("nsd")
    lines = [f"**{res['services']:,} services × {res['endpoints_per_service']} endpoints "
             f"({res['endpoints']:,} endpoints, {res['records']:,} records), mix `{mix}`"
             f"{', EDNS 1232' if res.get('edns') else ''}**", "",
             "| server | QPS median | QPS per round | × NSD (medians) | × NSD (median of per-round ratios) | server CPU µs/query (user) | avg latency µs (sat.) "
             "| max latency µs (sat.) | p50 / p99 / p99.9 µs @ fixed rate | lost | peak RSS MiB | startup s |",
             "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for n in SERVERS:
        if n not in med:
            continue
        rr = m["rounds"][n]
        cpu = statistics.median(r["server_cpu_s"] / max(1, r["completed"]) * 1e6 for r in rr)
        ucpu = [r["server_user_s"] / max(1, r["completed"]) * 1e6 for r in rr if "server_user_s" in r]
        cpu_s = f"{cpu:.2f}" + (f" ({statistics.median(ucpu):.2f})" if ucpu else "")
        lat = m.get("latency", {}).get(n, {})
        pct = (f"{us(lat.get('p50'))} / {us(lat.get('p99'))} / {us(lat.get('p999'))}" if lat else "–")
        if lat.get("p99_rounds") and len(lat["p99_rounds"]) > 1:
            pct += " (p99 per round " + " / ".join(us(x) for x in lat["p99_rounds"])
            steal = lat.get("steal_rounds") or []
            if steal and all(x is not None for x in steal):
                pct += ", steal % " + " / ".join(f"{x:.1f}" for x in steal)
            pct += ")"
        mem = res["memory"][n]
        rss = mib(mem["hwm_max_kb"]) + (f" (tree Σ {mib(mem['hwm_sum_kb'])})" if mem["procs"] > 1 else "")
        lines.append(
            f"| {n} | {med[n]:,.0f} | {' / '.join('%.0fk' % (r['qps'] / 1000) for r in rr)} | "
            f"{med[n] / nsd:.2f} | {round_ratio(m, n):.2f} | {cpu_s} | {statistics.median(r['lat_avg'] for r in rr) * 1e6:.0f} | "
            f"{max(r['lat_max'] for r in rr) * 1e6:.0f} | {pct} | {sum(r['lost'] for r in rr):.0f} | {rss} | "
            f"{res['startup_s'][n]:.2f} |" if nsd else "")
    if m.get("server_cpu_budget"):
        lines += ["", f"QPS rounds with each server capped at {m['server_cpu_budget']:g} of one CPU "
                      "(`--server-cpu`, a cgroup): the server is the limit, not dnsperf; the fixed-rate "
                      "latency run is uncapped."]
    if m.get("latency_rate"):
        rounds = len(next(iter(m.get("latency_rounds", {}).values()), [None]))
        lines += ["", f"Fixed-rate latency run: {m['latency_rate']:,} QPS (half the slowest server's median), "
                  f"percentiles from dnsperf `-v` per-query times; {rounds} alternated round(s) per server, "
                  f"the median round by p99 shown."]
        ratios = [(n, p99_round_ratio(m, n)) for n in SERVERS if n != "nsd" and n in med]
        ratios = [f"{n} {r:.2f}" for n, r in ratios if r is not None]
        if ratios and rounds > 1:
            lines += ["", "p99 × NSD's, median of per-round ratios: " + ", ".join(ratios) + "."]
        wire = wire_summary(m)
        if wire:
            lines += ["", wire]
    v = m.get("verify")
    if v:
        lines += ["", f"Answer check: {v['queries']} queries asked to every server; "
                  f"**{v['differences']} differ** in rcode/TC/answer set; "
                  f"{v['section_count_differences']} differ only in authority/additional record counts. "
                  f"podns's answers: {', '.join(f'{k} {c}' for k, c in sorted(v['podns_classes'].items()))}."]
        for d in v["examples"][:5]:
            lines.append(f"  - `{d['q']}`: " + "; ".join(
                f"{n} {'timeout' if d[n] is None else d[n]['rcode'] + ('/TC' if d[n]['tc'] else '') + ' an=' + str(d[n]['ancount'])}"
                for n in SERVERS if n in d))
    return "\n".join(lines) + "\n"


def write(results, out):
    md = ["# scripts/bench results", "", f"Run {results['started']}; elapsed {results.get('elapsed_s', 0):.0f} s; "
          f"machine {json.dumps(results['machine'])}", ""]
    for r in results["sizes"]:
        md += [size_table(r), ""]
    if results["curve"]:
        md += ["## QPS vs endpoints per headless service (EDNS 1232)", "",
               "| endpoints/svc | mix | podns QPS | NSD QPS | Knot QPS | podns × NSD | Knot × NSD | podns TC share | podns RSS MiB |",
               "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["curve"]:
            for mix, m in r["mixes"].items():
                med = m["qps_median"]
                tc = sum(c for k, c in m["verify"]["podns_classes"].items() if "/TC" in k) / m["verify"]["queries"]
                md.append(f"| {r['endpoints_per_service']} | {mix} | {med['podns']:,.0f} | {med['nsd']:,.0f} | "
                          f"{med['knot']:,.0f} | {med['podns'] / med['nsd']:.2f} | {med['knot'] / med['nsd']:.2f} | "
                          f"{tc:.0%} | {mib(r['memory']['podns']['hwm_max_kb'])} |")
        md += ["", "### Curve details", ""]
        for r in results["curve"]:
            for mix in r["mixes"]:
                md += [size_table(r, mix), ""]
    mem = memory_points(results)
    if mem:
        md += ["## podns peak RSS and startup vs cluster size", "",
               "| services × endpoints | endpoints | records | podns peak RSS MiB | startup s (first answer) | 'listening on' s |",
               "|---|---:|---:|---:|---:|---:|"]
        for p in mem:
            md.append(f"| {p['services']:,} × {p['epp']} | {p['endpoints']:,} | {p['records']:,} | {p['rss']:.1f} | "
                      f"{p['startup']:.2f} | {p['listening'] if p['listening'] is None else format(p['listening'], '.2f')} |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    plots(results, out)


def memory_points(results):
    pts = []
    for r in results["sizes"] + results["curve"] + results["memory"]:
        if "podns" in r.get("memory", {}):
            pts.append({"services": r["services"], "epp": r["endpoints_per_service"], "endpoints": r["endpoints"],
                        "records": r["records"], "rss": r["memory"]["podns"]["hwm_max_kb"] / 1024,
                        "startup": r["startup_s"]["podns"], "listening": r.get("listening_on_s", {}).get("podns")})
    return sorted(pts, key=lambda p: (p["endpoints"], p["services"]))


def plots(results, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[bench] matplotlib not available: skipping plots", file=sys.stderr)
        return
    colors = {"podns": "tab:blue", "nsd": "tab:orange", "knot": "tab:green"}
    if results["sizes"]:
        fig, ax = plt.subplots(figsize=(7, 4))
        labels = [f"{r['services']}×{r['endpoints_per_service']}\n({r['endpoints']:,} ep)" for r in results["sizes"]]
        w = 0.27
        for i, n in enumerate(SERVERS):
            ys = [r["mixes"]["realistic"]["qps_median"].get(n, 0) / 1000 for r in results["sizes"]]
            ax.bar([x + (i - 1) * w for x in range(len(ys))], ys, w, label=n, color=colors[n])
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylabel("kQPS (median of rounds)")
        ax.set_ylim(bottom=0)
        budget = results["sizes"][0]["mixes"]["realistic"].get("server_cpu_budget")
        share = f"each capped at {budget:g} of a core" if budget else "one core each"
        ax.set_title(f"Realistic mix, {share} (loopback)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, "qps-by-size.png"), dpi=110)
        plt.close(fig)
    if results["curve"]:
        fig, axs = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, mix in zip(axs, ["realistic", "headless"]):
            xs = [r["endpoints_per_service"] for r in results["curve"]]
            for n in SERVERS:
                ax.plot(xs, [r["mixes"][mix]["qps_median"][n] / 1000 for r in results["curve"]], "o-",
                        label=n, color=colors[n])
            ax.set_xscale("log")
            ax.set_ylim(bottom=0)
            ax.set_xlabel("endpoints per headless service")
            ax.set_title(f"mix: {mix} (EDNS 1232)")
            ax.grid(alpha=0.3)
        axs[0].set_ylabel("kQPS (median)")
        axs[0].legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, "qps-vs-endpoints.png"), dpi=110)
        plt.close(fig)
    mem = memory_points(results)
    if mem:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot([p["endpoints"] for p in mem], [p["rss"] for p in mem], "o-", color=colors["podns"], label="podns")
        for n in ("nsd", "knot"):
            pts = [(r["endpoints"], r["memory"][n]["hwm_max_kb"] / 1024) for r in results["sizes"] if n in r["memory"]]
            if pts:
                ax.plot(*zip(*pts), "s--", color=colors[n], label=f"{n} (largest process)")
        ax.axhline(33, color="grey", ls=":", label="33 MB target")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("endpoints in the cluster")
        ax.set_ylabel("peak RSS (MiB)")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "rss-vs-size.png"), dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    d = sys.argv[1]
    write(json.load(open(os.path.join(d, "results.json"))), d)
