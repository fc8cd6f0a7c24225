#!/usr/bin/env python3
"""Capture the bytes real dig (and kdig, when installed) send, as fuzz seeds.

A tiny UDP + TCP listener on 127.0.0.1 records each query (it never answers,
so the clients give up after one try) and writes:

  corpus/request/<name>-udp   prefix 0x00 <addr index> + message (UDP)
  corpus/request/<name>-tcp   prefix 0x01 <addr index> + message (TCP)
  corpus/edns/<name>          version, DO byte, payload, option bytes of the OPT

Run from the fuzz/ folder:  python3 tools/capture_seeds.py
"""

import os
import shutil
import socket
import struct
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name, client address index (popdns_fuzz::ADDRS), client argv after "@127.0.0.1 -p PORT"
DIG = [
    ("www-a", 0, ["www.cdn.example"]),
    ("www-ecs-london", 1, ["www.cdn.example", "+subnet=81.2.69.0/24"]),
    ("www-ecs-fra", 2, ["www.cdn.example", "+subnet=192.0.2.0/26"]),
    ("www-ecs-v6", 3, ["www.cdn.example", "AAAA", "+subnet=2001:db8:4::/48"]),
    ("www-ecs-zero", 4, ["www.cdn.example", "+subnet=0.0.0.0/0"]),
    ("www-ecs-override", 11, ["www.cdn.example", "+subnet=10.1.2.0/24"]),
    ("www-ecs-32", 5, ["www.cdn.example", "+subnet=198.51.100.7/32"]),
    ("www-ecs-odd", 6, ["www.cdn.example", "+subnet=203.0.113.0/23"]),
    ("video-aaaa", 7, ["video.cdn.example", "AAAA", "+subnet=8.8.8.0/24"]),
    ("all-edge", 12, ["all.edge.test", "+subnet=198.18.0.0/16"]),
    ("v6-edge", 18, ["v6.edge.test", "AAAA"]),
    ("nsid", 0, ["www.cdn.example", "+nsid"]),
    ("edns1", 0, ["www.cdn.example", "+edns=1", "+noednsnegotiation"]),
    ("cookie", 1, ["www.cdn.example", "+cookie"]),
    ("cookie-nsid-ecs", 2, ["www.cdn.example", "+cookie", "+nsid", "+subnet=192.0.2.64/26"]),
    ("any", 0, ["cdn.example", "ANY"]),
    ("axfr", 0, ["cdn.example", "AXFR"]),
    ("ixfr", 0, ["cdn.example", "IXFR=2026112200"]),
    ("chaos-id", 0, ["id.server", "CH", "TXT"]),
    ("chaos-hostname", 0, ["hostname.bind", "CH", "TXT"]),
    ("chaos-version", 0, ["version.bind", "CH", "TXT"]),
    ("norec", 0, ["static.cdn.example", "AAAA", "+norec"]),
    ("bufsize-512", 0, ["www.cdn.example", "+bufsize=512"]),
    ("bufsize-4096-do", 0, ["many.edge.test", "AAAA", "+bufsize=4096", "+dnssec"]),
    ("noedns", 14, ["many.edge.test", "AAAA", "+noedns"]),
    ("nxdomain", 0, ["nope.cdn.example"]),
    ("wildcard", 0, ["x.wild.cdn.example", "TXT"]),
    ("cname", 0, ["img.cdn.example"]),
    ("cname-loop", 0, ["loop1.edge.test"]),
    ("cname-chain", 20, ["chain1.edge.test", "AAAA", "+subnet=2001:db8:2::/56"]),
    ("referral", 0, ["host.sub.cdn.example"]),
    ("srv", 0, ["_sip._udp.cdn.example", "SRV"]),
    ("mx", 0, ["cdn.example", "MX"]),
    ("ns", 0, ["cdn.example", "NS"]),
    ("soa", 0, ["cdn.example", "SOA"]),
    ("txt-big", 0, ["big.edge.test", "TXT", "+bufsize=1232"]),
    ("caa", 0, ["caa.edge.test", "CAA"]),
    ("type65400", 0, ["unknown.edge.test", "TYPE65400"]),
    ("refused", 0, ["example.org"]),
    ("class-hs", 0, ["www.cdn.example", "-c", "HS"]),
    ("class-any", 0, ["www.cdn.example", "-c", "ANY"]),
    ("mixed-case", 0, ["WwW.CdN.ExAmPlE"]),
    ("root", 0, [".", "NS"]),
    ("opcode-notify", 0, ["cdn.example", "+opcode=notify"]),
    ("opcode-status", 0, ["cdn.example", "+opcode=status"]),
    ("ad-cd", 0, ["www.cdn.example", "+adflag", "+cdflag"]),
    ("padding", 0, ["www.cdn.example", "+padding=128"]),
    ("ednsopt", 0, ["www.cdn.example", "+ednsopt=65001:c0ffee", "+ednsopt=15"]),
    ("ednsflags", 0, ["www.cdn.example", "+ednsflags=0x7f"]),
    ("expire", 0, ["cdn.example", "SOA", "+expire"]),
    ("keepalive-tcp", 0, ["www.cdn.example", "+keepalive", "+tcp"]),
    ("tcp-aaaa", 15, ["www.cdn.example", "AAAA", "+tcp", "+subnet=2001:db8:1::/48"]),
]

KDIG = [
    ("kdig-ecs", 1, ["www.cdn.example", "+subnet=192.0.2.0/24"]),
    ("kdig-nsid-cookie", 0, ["www.cdn.example", "+nsid", "+cookie"]),
    ("kdig-padding", 0, ["www.cdn.example", "+padding=64"]),
    ("kdig-edns-version", 0, ["www.cdn.example", "+edns=3"]),
    ("kdig-ch", 0, ["-c", "CH", "id.server", "TXT"]),
    ("kdig-any-tcp", 0, ["cdn.example", "ANY", "+tcp"]),
]


class Listener:
    def __init__(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(8)
        self.got = []  # (transport, message)
        self.lock = threading.Lock()
        threading.Thread(target=self._udp, daemon=True).start()
        threading.Thread(target=self._tcp, daemon=True).start()

    def _udp(self):
        while True:
            msg, _ = self.udp.recvfrom(65535)
            with self.lock:
                self.got.append(("udp", msg))

    def _tcp(self):
        while True:
            conn, _ = self.tcp.accept()
            conn.settimeout(2)
            try:
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                    chunk = conn.recv(65535)
                    if not chunk:
                        break
                    buf += chunk
                if len(buf) >= 2:
                    n = struct.unpack("!H", buf[:2])[0]
                    with self.lock:
                        self.got.append(("tcp", buf[2 : 2 + n]))
            except OSError:
                pass
            finally:
                conn.close()

    def capture(self, argv):
        with self.lock:
            self.got.clear()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        with self.lock:
            return list(self.got)


def opt_seed(msg):
    """The edns target's input for the OPT record of `msg`, if it has one."""
    qd, an, ns, ar = struct.unpack("!HHHH", msg[4:12])
    off = 12

    def skip_name(off):
        while True:
            b = msg[off]
            if b == 0:
                return off + 1
            if b & 0xC0 == 0xC0:
                return off + 2
            off += 1 + b

    for _ in range(qd):
        off = skip_name(off) + 4
    for _ in range(an + ns + ar):
        e = skip_name(off)
        rtype, klass, ttl, rdlen = struct.unpack("!HHIH", msg[e : e + 10])
        rdata = msg[e + 10 : e + 10 + rdlen]
        if rtype == 41:
            version = (ttl >> 16) & 0xFF
            flags = (ttl >> 8) & 0xFF
            return bytes([version, flags]) + struct.pack("!H", klass) + rdata
        off = e + 10 + rdlen
    return None


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    lst = Listener()
    clients = [("dig", DIG, ["+tries=1", "+timeout=1", "+retry=0"])]
    if shutil.which("kdig"):
        clients.append(("kdig", KDIG, ["+retry=0", "+timeout=1"]))
    n = 0
    for tool, cases, opts in clients:
        for name, addr, args in cases:
            got = lst.capture([tool, "@127.0.0.1", "-p", str(lst.port)] + args + opts)
            if not got:
                print(f"{name}: nothing captured")
                continue
            transport, msg = got[0]
            write(f"{ROOT}/corpus/request", f"{name}-udp", bytes([0, addr]) + msg)
            write(f"{ROOT}/corpus/request", f"{name}-tcp", bytes([1, addr]) + msg)
            seed = opt_seed(msg)
            if seed is not None:
                write(f"{ROOT}/corpus/edns", name, seed)
            print(f"{name}: {transport} {len(msg)} bytes{'' if seed is None else ', OPT'}")
            n += 1
    print(f"{n} queries captured")


if __name__ == "__main__":
    main()
