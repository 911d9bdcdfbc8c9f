#!/usr/bin/env python3
"""scripts/bench driver: podns vs NSD vs Knot on synthetic clusters (see scripts/bench --help)."""
import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dnsq  # noqa: E402

GEN = os.path.join(HERE, "gen.py")
POD_CIDR = "10.128.0.0/9"  # room for 100k+ pods, clear of the default service CIDR 10.96.0.0/12
SERVER_CPU = "0"
CLIENT_CPU = "1"
SERVERS = ["podns", "nsd", "knot"]


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------- process accounting

def tree_pids(pid):
    """pid and all its descendants (NSD forks a server child and xfrd)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                ppid = int(st[st.rindex(")") + 2:].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pids, user_only=False):
    t = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
            fs = st[st.rindex(")") + 2:].split()
            t += int(fs[11]) + (0 if user_only else int(fs[12]))
        except (OSError, ValueError):
            pass
    return t / os.sysconf("SC_CLK_TCK")


def steal_ticks():
    """The machine's CPU time stolen by the hypervisor so far (/proc/stat, all CPUs), in ticks."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) if fields[0] == "cpu" and len(fields) > 8 else 0
    except (OSError, ValueError):
        return 0


# ---------------------------------------------------------------- servers

class Server:
    def __init__(self, name, port, workdir):
        self.name, self.port, self.dir = name, port, workdir
        self.proc = None
        self.listening_at = None
        self.startup_s = None

    def cmd(self):
        raise NotImplementedError

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self.errf = open(os.path.join(self.dir, "stderr.log"), "w")
        t0 = time.monotonic()
        self.t0 = t0
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + self.cmd(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        threading.Thread(target=self._reader, daemon=True).start()
        deadline = t0 + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.errf.name}")
            try:
                r = dnsq.ask(self.port, "cluster.local.", "SOA", timeout=0.05)
                if r and r["rcode"] == "NOERROR" and r["ancount"] == 1:
                    self.startup_s = time.monotonic() - t0
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} not answering after 300 s")

    def _reader(self):
        for line in self.proc.stderr:
            if self.listening_at is None and "listening on" in line:
                self.listening_at = time.monotonic() - self.t0
            self.errf.write(line)
        self.errf.flush()

    def pids(self):
        return tree_pids(self.proc.pid)

    def memory(self):
        ps = self.pids()
        hwm = {p: status_kb(p, "VmHWM") for p in ps}
        rss = {p: status_kb(p, "VmRSS") for p in ps}
        return {"hwm_max_kb": max(hwm.values()), "hwm_sum_kb": sum(hwm.values()),
                "rss_sum_kb": sum(rss.values()), "procs": len(ps)}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class Podns(Server):
    def __init__(self, binary, manifests, *a):
        super().__init__("podns", *a)
        self.binary, self.manifests = binary, manifests

    def cmd(self):
        return [self.binary, "serve", "--manifests", self.manifests, "--listen", f"127.0.0.1:{self.port}",
                "--udp-workers", "1", "--ttl", "30", "--pod-cidr", POD_CIDR, "--nameserver-ip", "127.0.0.1",
                # Like NSD and Knot here: authoritative only, nothing forwarded off the machine;
                # no admin port either (several servers run at once).
                "--upstream", "none", "--admin-listen", "none"]


class Nsd(Server):
    def __init__(self, zones, *a):
        super().__init__("nsd", *a)
        self.zones = zones

    def cmd(self):
        d = self.dir
        zs = "".join(f"zone:\n  name: {z['zone']}\n  zonefile: {z['path']}\n" for z in self.zones)
        conf = f"""server:
  server-count: 1
  ip-address: 127.0.0.1@{self.port}
  port: {self.port}
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "{d}"
  database: ""
  pidfile: "{d}/nsd.pid"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  zonelistfile: "{d}/zone.list"
  logfile: "{d}/nsd.log"
  verbosity: 0
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  minimal-responses: yes
  refuse-any: yes
  reuseport: no
  tcp-count: 10
remote-control:
  control-enable: no
{zs}"""
        with open(os.path.join(d, "nsd.conf"), "w") as f:
            f.write(conf)
        return ["nsd", "-d", "-c", os.path.join(d, "nsd.conf")]


class Knot(Server):
    def __init__(self, zones, *a):
        super().__init__("knot", *a)
        self.zones = zones

    def cmd(self):
        d = self.dir
        zs = "".join(f"  - domain: {z['zone']}\n    file: {z['path']}\n" for z in self.zones)
        conf = f"""server:
  rundir: "{d}"
  pidfile: "{d}/knot.pid"
  listen: 127.0.0.1@{self.port}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
database:
  storage: "{d}/db"
control:
  listen: "{d}/knot.sock"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{d}"
    semantic-checks: off
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
zone:
{zs}"""
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write(conf)
        return ["knotd", "-c", os.path.join(d, "knot.conf")]


# ---------------------------------------------------------------- dnsperf

# SCHED_FIFO priority of the server during a --realtime-latency run: above every SCHED_OTHER
# neighbour, so a compile job on the same core cannot hold a woken server for a scheduler slice
# (the millisecond p99s of a shared machine). The kernel's RT throttling (sched_rt_runtime_us)
# still leaves the neighbours 5 % of each second, and the run is bounded by dnsperf -l.
# dnsperf itself stays SCHED_OTHER: its three threads share one core, and under SCHED_FIFO a
# rate-limited sender spins without yielding. Once (2026-12-03) it starved the thread that ends
# the run for minutes, and a starved receiver would count its own wait as the server's latency.
REALTIME_PRIORITY = 10


def set_realtime(pids, on):
    """SCHED_FIFO for every thread of `pids` (on), or back to SCHED_OTHER (off)."""
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            policy = ["-f", str(REALTIME_PRIORITY)] if on else ["-o", "0"]
            subprocess.run(["chrt"] + policy[:1] + ["-p"] + policy[1:] + [tid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


# ---------------------------------------------------------------- CPU budget

class CpuBudget:
    """A cgroup that caps a server at `fraction` of one CPU (cgroup v2 `cpu.max`, else v1 CFS quota).

    One dnsperf on one core answers about as fast as any of the three servers on the other (all
    ~160k QPS on this machine's quiet run), so an uncapped run measures the client. Capping
    every server alike below what the client can drive makes the server the limit: the QPS
    ratio then compares servers, at equal CPU. A short period keeps the throttling fine-grained
    (dnsperf's in-flight window is far smaller than what a socket buffer holds for that long)."""

    PERIOD_US = 10_000

    def __init__(self, name, fraction):
        quota = int(self.PERIOD_US * fraction)
        v2 = "/sys/fs/cgroup/cgroup.controllers"
        if os.path.exists(v2):
            if "cpu" not in open(v2).read().split():
                raise RuntimeError("--server-cpu: the cgroup v2 'cpu' controller is not available")
            self.path = f"/sys/fs/cgroup/podns-bench-{name}-{os.getpid()}"
            os.makedirs(self.path)
            with open(os.path.join(self.path, "cpu.max"), "w") as f:
                f.write(f"{quota} {self.PERIOD_US}")
        else:
            root = "/sys/fs/cgroup/cpu"
            if not os.path.isdir(root):
                raise RuntimeError("--server-cpu needs a cgroup cpu controller (v2, or v1 at /sys/fs/cgroup/cpu)")
            self.path = f"{root}/podns-bench-{name}-{os.getpid()}"
            os.makedirs(self.path)
            with open(os.path.join(self.path, "cpu.cfs_period_us"), "w") as f:
                f.write(str(self.PERIOD_US))
            with open(os.path.join(self.path, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(quota))
        self.parent_procs = os.path.join(os.path.dirname(self.path), "cgroup.procs")

    def enter(self, pids):
        for pid in pids:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def leave(self, pids):
        for pid in pids:
            try:
                with open(self.parent_procs, "w") as f:
                    f.write(str(pid))
            except OSError:
                pass  # exited

    def remove(self):
        try:
            for pid in open(os.path.join(self.path, "cgroup.procs")).read().split():
                self.leave([int(pid)])
            os.rmdir(self.path)
        except OSError as e:
            log(f"could not remove {self.path}: {e}")


def dnsperf(port, qfile, seconds, edns=False, rate=None, verbose_to=None):
    cmd = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
           "-l", str(seconds), "-q", "200", "-c", "1", "-t", "2"]
    if edns:
        cmd.append("-e")
    if rate:
        cmd += ["-Q", str(rate)]
    if verbose_to:
        cmd.append("-v")
    outpath = verbose_to or os.path.join(os.path.dirname(os.path.abspath(qfile)), "dnsperf.out")
    with open(outpath, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        timer = threading.Timer(seconds + 30, p.kill)  # dnsperf -l bounds the run; this bounds dnsperf
        timer.start()
        try:
            _, _, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = 0
    with open(outpath) as f:
        text = f.read()
    os.remove(outpath)
    r = {"client_cpu_s": (ru.ru_utime + ru.ru_stime) if ru else None}
    pats = {"sent": r"Queries sent:\s+(\d+)", "completed": r"Queries completed:\s+(\d+)",
            "lost": r"Queries lost:\s+(\d+)", "qps": r"Queries per second:\s+([\d.]+)",
            "runtime": r"Run time \(s\):\s+([\d.]+)",
            "lat_avg": r"Average Latency \(s\):\s+([\d.]+)", "lat_max": r"max ([\d.]+)\)",
            "lat_min": r"\(min ([\d.]+)", "lat_sd": r"Latency StdDev \(s\):\s+([\d.]+)",
            "resp_size": r"response (\d+)"}
    for k, pat in pats.items():
        m = re.search(pat, text)
        r[k] = float(m.group(1)) if m else None
    m = re.search(r"Response codes:\s+(.*)", text)
    r["rcodes"] = m.group(1).strip() if m else ""
    if verbose_to:
        lats, odd = [], 0
        for l in text.splitlines():
            if l.startswith("> "):
                try:
                    lats.append(float(l.rsplit(None, 1)[1]))
                except ValueError:  # "> T name type": a timed-out query
                    odd += 1
        lats.sort()
        r["lat_unparsed"] = odd
        if lats:
            q = lambda f: lats[min(len(lats) - 1, int(f * len(lats)))]
            r.update({"p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "p999": q(0.999), "n_lat": len(lats)})
    return r


class WireCapture:
    """tcpdump on loopback during a latency round (`--wire-latency`): each query's time from its
    datagram to the server's answer, as the kernel saw both, so no client scheduling is in it
    (dnsperf's own tail on this VM was 1-10x the wire's). Pinned to the client's core."""

    def __init__(self, port, path):
        self.port, self.path = port, path
        self.p = subprocess.Popen(["taskset", "-c", CLIENT_CPU, "tcpdump", "-i", "lo", "-n", "-s", "96",
                                   "-B", "32768", "--time-stamp-precision=nano", "-w", path,
                                   f"udp port {port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        # tcpdump says "listening on lo" once the capture runs.
        deadline = time.monotonic() + 10
        self.err = []
        while time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if not line:
                break
            self.err.append(line)
            if "listening on" in line:
                break

    def stop(self):
        """Stops the capture and returns the wire latencies of the round (or None)."""
        time.sleep(0.2)  # the last answers
        self.p.send_signal(signal.SIGINT)
        try:
            rest = self.p.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            self.p.kill()
            rest = self.p.communicate()[1]
        m = re.search(r"(\d+) packets dropped by kernel", "".join(self.err) + (rest or ""))
        dropped = int(m.group(1)) if m else None
        try:
            lats = wire_latencies(self.path, self.port)
        except (OSError, KeyError, ValueError, struct.error):  # KeyError: a link type not known here
            return None
        finally:
            try:
                os.remove(self.path)
            except OSError:
                pass
        if not lats:
            return None
        lats.sort()
        q = lambda f: lats[min(len(lats) - 1, int(f * len(lats)))]
        return {"p50": q(0.50), "p99": q(0.99), "p999": q(0.999), "max": lats[-1], "n": len(lats),
                "dropped": dropped}


def wire_latencies(path, port):
    """Query-to-answer times in a pcap of `udp port PORT`, matched by client port and DNS ID."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    link = struct.unpack_from("<I", data, 20)[0]
    l2 = {1: 14, 113: 16, 276: 20, 0: 4}[link]
    pending, lats, off = {}, [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from("<IIII", data, off)
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = pkt[l2:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        udp = ip[(ip[0] & 15) * 4:]
        if len(udp) < 12:
            continue
        sport, dport = struct.unpack_from(">HH", udp, 0)
        qid, flags = struct.unpack_from(">HB", udp, 8)
        t = sec + frac * scale
        if dport == port and not flags & 0x80:
            pending[(sport, qid)] = t
        elif sport == port and flags & 0x80:
            t0 = pending.pop((dport, qid), None)
            if t0 is not None:
                lats.append(t - t0)
    return lats


# ---------------------------------------------------------------- one cluster

def prepare(work, services, endpoints, binary, nqueries, mix="realistic", seed=1):
    os.makedirs(work, exist_ok=True)
    run([sys.executable, GEN, "cluster", "--services", str(services), "--endpoints", str(endpoints),
         "--out", work])
    records = os.path.join(work, "records.txt")
    t0 = time.monotonic()
    with open(records, "w") as f:
        run([binary, "get", "records", "--manifests", os.path.join(work, "manifests"), "--pod-cidr", POD_CIDR,
             "--nameserver-ip", "127.0.0.1", "--ttl", "30"], stdout=f)
    get_s = time.monotonic() - t0
    zdir = os.path.join(work, "zones")
    run([sys.executable, GEN, "zones", "--records", records, "--out", zdir])
    zones = json.load(open(os.path.join(zdir, "zones.json")))
    for z in zones:
        z["path"] = os.path.join(zdir, z["file"])
    qfiles = {}
    for m in ([mix] if isinstance(mix, str) else mix):
        q = os.path.join(work, f"queries-{m}.txt")
        out = subprocess.run([sys.executable, GEN, "queries", "--records", records, "--meta",
                              os.path.join(work, "services.json"), "--count", str(nqueries), "--seed", str(seed),
                              "--mix", m, "--out", q], check=True, capture_output=True, text=True).stdout
        qfiles[m] = {"path": q, "mix": json.loads(out) if out.strip() else {}}
    nrec = sum(1 for _ in open(records))
    return {"records": records, "nrecords": nrec, "zones": zones, "qfiles": qfiles, "get_records_s": get_s}


def extra_checks(meta_path):
    meta = json.load(open(meta_path))
    z = meta["zone"]
    svcs = meta["services"][:6]
    qs = [(f"{z}.", "SOA"), (f"{z}.", "NS"), (f"ns.dns.{z}.", "A"), (f"dns-version.{z}.", "TXT"),
          (f"svc.{z}.", "A"), (f"default.svc.{z}.", "A"), (f"nope.{z}.", "A"), ("example.com.", "A")]
    for s in svcs:
        fq = f"{s['name']}.{s['ns']}.svc.{z}."
        qs += [(fq, "A"), (fq, "AAAA"), (fq, "SRV"), (f"_{s['port']}._tcp.{fq}", "SRV"), (f"_tcp.{fq}", "SRV")]
    return qs


def noserial(rr):
    if rr[1] == "SOA":
        f = rr[3].split()
        return rr[:3] + (" ".join(f[:2] + f[3:]),)
    return rr


def verify(servers, qfile, meta_path, records, sample, edns=None, rnd=None):
    """Ask every server the same queries; compare rcode, TC, answer count and answer set."""
    rnd = rnd or random.Random(7)
    lines = [l.split() for l in open(qfile)]
    qs = [tuple(l) for l in rnd.sample(lines, min(sample, len(lines)))]
    qs += extra_checks(meta_path)
    ptrs = [l.split()[0] for l in open(records) if " PTR " in l]
    qs += [(p, "PTR") for p in rnd.sample(ptrs, min(20, len(ptrs)))]
    answers = {s.name: dnsq.ask_many(s.port, qs, edns=edns) for s in servers}
    diffs, strict, counts, sect = [], 0, {}, []
    for i, q in enumerate(qs):
        rs = {n: a[i] for n, a in answers.items()}
        # SOA serials differ by construction (podns stamps its own at start-up): compare without them.
        key = lambda r: None if r is None else (r["rcode"], r["tc"], r["ancount"], tuple(map(noserial, r["an"])))
        ref = rs["podns"]
        if ref is not None:
            c = f"{ref['rcode']}{'/TC' if ref['tc'] else ''}{'/NODATA' if ref['rcode'] == 'NOERROR' and not ref['ancount'] else ''}"
            counts[c] = counts.get(c, 0) + 1
        ks = {n: key(r) for n, r in rs.items()}
        if len(set(ks.values())) > 1:
            diffs.append({"q": " ".join(q), **{n: (None if r is None else
                          {"rcode": r["rcode"], "tc": r["tc"], "ancount": r["ancount"],
                           "an": [" ".join(map(str, x)) for x in r["an"][:4]]}) for n, r in rs.items()}})
        # Secondary: authority/additional sections (reported, not fatal).
        ok = [r for r in rs.values() if r]
        if len({(len(r["ns"]), r["arcount"]) for r in ok}) > 1:
            strict += 1
            if len(sect) < 6:
                sect.append({"q": " ".join(q), **{n: None if r is None else
                             {"ns": [" ".join(map(str, x)) for x in r["ns"][:2]], "nscount": len(r["ns"]),
                              "arcount": r["arcount"]} for n, r in rs.items()}})
    return {"queries": len(qs), "differences": len(diffs), "examples": diffs[:8],
            "section_count_differences": strict, "section_examples": sect, "podns_classes": counts}


def bench_cluster(label, services, endpoints, args, names=SERVERS, mixes=("realistic",), rounds=None,
                  seconds=None, edns=False, latency=True):
    rounds = rounds or args.rounds
    seconds = seconds or args.seconds
    work = os.path.join(args.workdir, label)
    log(f"{label}: generating {services} services x {endpoints} endpoints")
    prep = prepare(work, services, endpoints, args.podns, args.queries, list(mixes))
    log(f"{label}: {prep['nrecords']} records; get records {prep['get_records_s']:.2f}s")
    meta_path = os.path.join(work, "services.json")
    base = args.port
    mk = {"podns": lambda p: Podns(args.podns, os.path.join(work, "manifests"), p, os.path.join(work, "podns")),
          "nsd": lambda p: Nsd(prep["zones"], p, os.path.join(work, "nsd")),
          "knot": lambda p: Knot(prep["zones"], p, os.path.join(work, "knot"))}
    servers = []
    budgets = {}
    res = {"label": label, "services": services, "endpoints_per_service": endpoints,
           "endpoints": services * endpoints, "records": prep["nrecords"], "mixes": {}, "edns": edns}
    try:
        for i, n in enumerate(names):
            s = mk[n](base + i)
            s.start()
            servers.append(s)
            log(f"{label}: {n} answering after {s.startup_s:.2f}s"
                + (f" ('listening on' at {s.listening_at:.2f}s)" if s.listening_at else ""))
        res["startup_s"] = {s.name: s.startup_s for s in servers}
        res["listening_on_s"] = {s.name: s.listening_at for s in servers if s.listening_at}
        res["startup_mem"] = {s.name: s.memory() for s in servers}
        for mix in mixes:
            qf = prep["qfiles"][mix]["path"]
            mres = {"query_mix": prep["qfiles"][mix]["mix"], "rounds": {s.name: [] for s in servers}}
            if len(servers) > 1:
                v = verify(servers, qf, meta_path, prep["records"], args.verify, edns=1232 if edns else None)
                mres["verify"] = v
                log(f"{label}/{mix}: verify {v['queries']} queries, {v['differences']} differences, "
                    f"{v['section_count_differences']} authority/additional count differences; {v['podns_classes']}")
                for d in v["examples"][:3] + v["section_examples"][:3]:
                    log("   diff:", json.dumps(d))
            if args.server_cpu:
                mres["server_cpu_budget"] = args.server_cpu
            for r in range(rounds):
                order = servers[r % len(servers):] + servers[:r % len(servers)]
                for s in order:
                    ps = s.pids()
                    if args.server_cpu:
                        if s.name not in budgets:
                            budgets[s.name] = CpuBudget(s.name, args.server_cpu)
                        budgets[s.name].enter(ps)
                    c0, u0 = cpu_ticks(ps), cpu_ticks(ps, True)
                    try:
                        d = dnsperf(s.port, qf, seconds, edns=edns)
                    finally:
                        if args.server_cpu:
                            budgets[s.name].leave(ps)
                    d["server_cpu_s"] = cpu_ticks(ps) - c0
                    d["server_user_s"] = cpu_ticks(ps, True) - u0
                    mres["rounds"][s.name].append(d)
                    log(f"{label}/{mix} round {r + 1} {s.name}: {d['qps']:.0f} qps, lost {d['lost']:.0f}, "
                        f"server cpu {d['server_cpu_s']:.1f}s, client cpu {d['client_cpu_s']:.1f}s")
            med = {n: statistics.median(x["qps"] for x in rr) for n, rr in mres["rounds"].items()}
            mres["qps_median"] = med
            if latency:
                rate = int(min(med.values()) * args.latency_load)
                mres["latency_rate"] = rate
                mres["latency_rounds"] = {s.name: [] for s in servers}
                # Rounds alternate the order as the QPS rounds do: one pass per server let a
                # neighbour's burst land on one server's run and flip the p99 ranking.
                for r in range(args.latency_rounds):
                    order = servers[r % len(servers):] + servers[:r % len(servers)]
                    for s in order:
                        lf = os.path.join(work, f"lat-{s.name}.txt")
                        if args.realtime_latency:
                            set_realtime(s.pids(), True)
                        wire = (WireCapture(s.port, os.path.join(work, f"wire-{s.name}.pcap"))
                                if args.wire_latency else None)
                        steal0, t0 = steal_ticks(), time.monotonic()
                        try:
                            L = dnsperf(s.port, qf, args.latency_seconds, edns=edns, rate=rate,
                                        verbose_to=lf)
                        finally:
                            if args.realtime_latency:
                                set_realtime(s.pids(), False)
                            if wire:
                                L_wire = wire.stop()
                        if wire:
                            L["wire"] = L_wire
                        # Steal: CPU time the hypervisor gave other guests during the round, as a
                        # share of this machine's CPUs; the millisecond tails follow it.
                        wall = max(1e-9, time.monotonic() - t0)
                        L["steal_pct"] = 100 * (steal_ticks() - steal0) / os.sysconf("SC_CLK_TCK") / (
                            wall * (os.cpu_count() or 1))
                        mres["latency_rounds"][s.name].append(L)
                        log(f"{label}/{mix} latency round {r + 1} @{rate} qps {s.name}: "
                            f"p50 {L.get('p50', 0) * 1e6:.0f}us p99 {L.get('p99', 0) * 1e6:.0f}us "
                            f"p99.9 {L.get('p999', 0) * 1e6:.0f}us max {(L['lat_max'] or 0) * 1e6:.0f}us, "
                            f"steal {L['steal_pct']:.1f} %"
                            + (f"; wire p50 {L['wire']['p50'] * 1e6:.0f}us p99 {L['wire']['p99'] * 1e6:.0f}us "
                               f"p99.9 {L['wire']['p999'] * 1e6:.0f}us max {L['wire']['max'] * 1e6:.0f}us "
                               f"({L['wire']['n']} matched, {L['wire']['dropped']} dropped)"
                               if L.get("wire") else ""))
                # The per-server summary: the median round by p99 (its p50 and p99.9 with it).
                mres["latency"] = {}
                for n, rr in mres["latency_rounds"].items():
                    ok = sorted((x for x in rr if x.get("p99") is not None), key=lambda x: x["p99"])
                    if ok:
                        mres["latency"][n] = dict(ok[(len(ok) - 1) // 2], p99_rounds=[x["p99"] for x in rr],
                                                  steal_rounds=[x.get("steal_pct") for x in rr])
            res["mixes"][mix] = mres
        res["memory"] = {s.name: s.memory() for s in servers}
    finally:
        for s in servers:
            s.stop()
        for b in budgets.values():
            b.remove()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return res


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--podns", required=True)
    p.add_argument("--out", required=True, help="results directory (results.json, results.md, plots)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--curve-rounds", type=int, default=2)
    p.add_argument("--curve-seconds", type=int, default=4)
    p.add_argument("--sizes", default="100x1,2000x5,10000x10", help="comma list of SERVICESxENDPOINTS")
    p.add_argument("--curve", default="1,10,50,100,200", help="endpoints per service for the QPS curve")
    p.add_argument("--curve-services", type=int, default=100)
    p.add_argument("--memory-sizes", default="500x2,1000x10,5000x10,20000x10", help="podns-only RSS points")
    p.add_argument("--queries", type=int, default=100000)
    p.add_argument("--verify", type=int, default=2000, help="sampled queries compared across servers")
    p.add_argument("--latency-load", type=float, default=0.5, help="fixed-rate latency run, x slowest median")
    p.add_argument("--latency-seconds", type=int, default=5)
    p.add_argument("--latency-rounds", type=int, default=3,
                   help="fixed-rate latency rounds per server, alternated; the median round by p99 is reported")
    p.add_argument("--realtime-latency", action="store_true",
                   help="run each server SCHED_FIFO during the fixed-rate latency run (root; dnsperf stays SCHED_OTHER)")
    p.add_argument("--wire-latency", action="store_true",
                   help="also time each latency round on the wire: tcpdump on lo, query to answer at the "
                        "server's socket (root; installs tcpdump)")
    p.add_argument("--server-cpu", type=float, metavar="FRACTION",
                   help="cap each server at this fraction of one CPU during the QPS rounds (a cgroup; "
                        "root), so the server, not dnsperf, is the limit; latency runs stay uncapped")
    p.add_argument("--port", type=int, default=25353)
    p.add_argument("--keep", action="store_true", help="keep generated clusters and zone files")
    p.add_argument("--no-curve", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.sizes, a.rounds, a.seconds, a.curve, a.memory_sizes = "100x1", 2, 3, "", ""
        a.latency_seconds, a.latency_rounds, a.verify, a.queries = 2, 1, 500, 20000
    os.makedirs(a.out, exist_ok=True)
    t0 = time.monotonic()
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "args": vars(a), "sizes": [], "curve": [],
               "memory": [], "machine": machine()}
    for spec in filter(None, a.sizes.split(",")):
        s, e = map(int, spec.split("x"))
        results["sizes"].append(bench_cluster(f"size-{s}x{e}", s, e, a))
        save(results, a.out)
    if not a.no_curve:
        for e in filter(None, a.curve.split(",")):
            e = int(e)
            results["curve"].append(bench_cluster(f"curve-{a.curve_services}x{e}", a.curve_services, e, a,
                                                  mixes=("realistic", "headless"), rounds=a.curve_rounds,
                                                  seconds=a.curve_seconds, edns=True, latency=False))
            save(results, a.out)
    if not a.no_memory:
        for spec in filter(None, a.memory_sizes.split(",")):
            s, e = map(int, spec.split("x"))
            results["memory"].append(bench_cluster(f"mem-{s}x{e}", s, e, a, names=["podns"], rounds=1,
                                                   seconds=3, latency=False))
            save(results, a.out)
    results["elapsed_s"] = time.monotonic() - t0
    save(results, a.out)
    import report
    report.write(results, a.out)
    log(f"done in {results['elapsed_s']:.0f}s; results in {a.out}")


def machine():
    model = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    ver = lambda c: subprocess.run(c, capture_output=True, text=True).stdout.strip() + \
        subprocess.run(c, capture_output=True, text=True).stderr.strip()
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": os.uname().release,
            "nsd": ver(["nsd", "-v"]).splitlines()[0], "knot": ver(["knotd", "-V"]).splitlines()[0],
            "dnsperf": " ".join(re.findall(r"Version \S+", ver(["dnsperf", "-h"]))[:1])}


def save(results, out):
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
