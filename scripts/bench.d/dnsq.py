"""A tiny stdlib DNS client for scripts/bench: build a query, parse a response into a comparable form."""
import socket
import struct

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "TXT": 16, "AAAA": 28, "SRV": 33}
TNAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def build(qid, name, qtype, edns=None):
    hdr = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1 if edns else 0)  # RD clear, as dnsperf's default
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".") if l) + b"\0"
    q += struct.pack(">HH", TYPES[qtype], 1)
    if edns:
        q += b"\0" + struct.pack(">HHIH", 41, edns, 0, 0)
    return hdr + q


def _name(msg, off):
    labels, jumped, end = [], False, off
    for _ in range(128):
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped = True
            continue
        if n == 0:
            if not jumped:
                end = off + 1
            break
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace").lower())
        off += 1 + n
    return ".".join(labels) + ".", end


def _rdata(msg, t, off, ln):
    if t == 1:
        return socket.inet_ntop(socket.AF_INET, msg[off:off + 4])
    if t == 28:
        return socket.inet_ntop(socket.AF_INET6, msg[off:off + 16])
    if t in (2, 5, 12):
        return _name(msg, off)[0]
    if t == 33:
        p, w, port = struct.unpack(">HHH", msg[off:off + 6])
        return f"{p} {w} {port} {_name(msg, off + 6)[0]}"
    if t == 6:
        m, o = _name(msg, off)
        r, o = _name(msg, o)
        return f"{m} {r} " + " ".join(map(str, struct.unpack(">IIIII", msg[o:o + 20])))
    return msg[off:off + ln].hex()


def parse(msg):
    """-> dict(rcode, tc, aa, an=sorted answer tuples, ns=sorted authority tuples, ar=count, ancount)."""
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = _name(msg, off)
        off += 4
    secs = []
    for cnt in (an, ns, ar):
        rrs = []
        for _ in range(cnt):
            nm, off = _name(msg, off)
            t, _c, ttl, ln = struct.unpack(">HHIH", msg[off:off + 10])
            off += 10
            if t != 41:
                rrs.append((nm, TNAMES.get(t, str(t)), ttl, _rdata(msg, t, off, ln)))
            off += ln
        secs.append(rrs)
    return {
        "id": qid, "rcode": RCODES.get(flags & 0xF, str(flags & 0xF)), "tc": bool(flags & 0x200),
        "aa": bool(flags & 0x400), "ancount": an, "an": sorted(secs[0]), "ns": sorted(secs[1]),
        "arcount": len(secs[2]), "ar": sorted(secs[2]),
    }


def ask(port, name, qtype, edns=None, timeout=1.0, qid=4242):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(build(qid, name, qtype, edns), ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
        return parse(data)
    finally:
        s.close()


def ask_many(port, queries, edns=None, timeout=1.0):
    """Sequential queries on one socket; returns a list of parsed responses (None on timeout)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    out = []
    try:
        for i, (name, qtype) in enumerate(queries):
            qid = i & 0xFFFF
            s.sendto(build(qid, name, qtype, edns), ("127.0.0.1", port))
            r = None
            for _ in range(3):
                try:
                    data, _ = s.recvfrom(65535)
                except socket.timeout:
                    break
                p = parse(data)
                if p["id"] == qid:
                    r = p
                    break
            out.append(r)
    finally:
        s.close()
    return out
