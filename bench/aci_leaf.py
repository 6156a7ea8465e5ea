"""Benchmark: the simulated leaf following the APIC, measured with real packets.

An in-process apic_mock (HTTPS), one leaf (its own process and userspace OVS), two hosts (each a
namespace with its own OVS) on eth1/1 and eth1/2, container ``a`` in EPG A and ``b`` in EPG B serving
TCP 8000. A contract allowing tcp 8000 is consumed by A; each iteration then

- POSTs ``fvRsProv`` on B and measures until a TCP connection from a to b succeeds (a probe inside a's
  namespace retries every few ms), then DELETEs it and measures until connections fail;
- changes a third container's MAC, sends a gratuitous ARP and measures until its ``fvCEp`` is in the
  APIC (polled every 5 ms).

    python bench/aci_leaf.py [--iterations 30] [--poll-interval 0.5] [--no-subscribe]

Prints figures; asserts nothing. Everything is created under a random ``lf`` prefix and removed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from apic_mock.initial import mo  # noqa: E402
from apic_mock.leaf import SimLeaf  # noqa: E402
from testbed.apic import ApicMock  # noqa: E402
from testbed.wiring import Wiring, in_ns, serve_tcp  # noqa: E402

EPG = "uni/tn-bench/ap-app/epg-"
PROBE = """
import socket, sys, time
want_open = None
for line in sys.stdin:
    want_open = line.strip() == "open"
    while True:
        try:
            socket.create_connection((sys.argv[1], 8000), timeout=0.05).close()
            ok = True
        except OSError:
            ok = False
        if ok == want_open:
            print(time.time(), flush=True)
            break
        time.sleep(0.002)
"""


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p90 {pct(90):.0f} ms, p99 {pct(99):.0f} ms"


def tenant() -> dict:
    def epg(name: str, vlan: int, *children: dict) -> dict:
        paths = [mo("fvRsPathAtt", {"tDn": f"topology/pod-1/paths-101/pathep-[eth1/{p}]", "encap": f"vlan-{vlan}"})
                 for p in (1, 2)]
        return mo("fvAEPg", {"name": name}, mo("fvRsBd", {"tnFvBDName": "b"}), *paths, *children)

    return mo("fvTenant", {"name": "bench"}, mo("fvCtx", {"name": "v"}),
              mo("fvBD", {"name": "b"}, mo("fvRsCtx", {"tnFvCtxName": "v"}), mo("fvSubnet", {"ip": "10.9.0.254/24"})),
              mo("vzFilter", {"name": "f"}, mo("vzEntry", {"name": "t", "etherT": "ip", "prot": "tcp",
                                                          "dFromPort": "8000", "dToPort": "8000"})),
              mo("vzBrCP", {"name": "c"}, mo("vzSubj", {"name": "s"}, mo("vzRsSubjFiltAtt", {"tnVzFilterName": "f"}))),
              mo("fvAp", {"name": "app"}, epg("A", 301, mo("fvRsCons", {"tnVzBrCPName": "c"})), epg("B", 302)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--no-subscribe", action="store_true", help="polling only (no APIC websocket events)")
    args = parser.parse_args()
    with ApicMock.start() as apic:
        http = apic.client()
        leaf = SimLeaf(101, apic_url=apic.url, ca_file=apic.ca_file, poll_interval=args.poll_interval,
                       subscribe=not args.no_subscribe, log_level="warning")
        wiring = Wiring(leaf)
        try:
            leaf.start()
            http.post("/api/mo/uni.json", json=mo("polUni", {}, tenant())).raise_for_status()
            a = wiring.container(wiring.host("h1", "eth1/1"), "a", 301, "10.9.0.1/24")
            h2 = wiring.host("h2", "eth1/2")
            b = wiring.container(h2, "b", 302, "10.9.0.2/24")
            m = wiring.container(h2, "m", 302, "10.9.0.3/24")
            serve_tcp(wiring, b, 8000)
            leaf.wait_synced()
            for c in (a, b):
                wiring.garp(c)
            probe = subprocess.Popen(["ip", "netns", "exec", a.ns, sys.executable, "-c", PROBE, b.ip],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert probe.stdin is not None
            assert probe.stdout is not None
            opened, closed, learnt = [], [], []
            prov = f"{EPG}B/rsprov-c"
            for i in range(args.iterations):
                t0 = time.time()
                http.post(f"/api/mo/{EPG}B.json", json=mo("fvAEPg", {}, mo("fvRsProv", {"tnVzBrCPName": "c"})))
                probe.stdin.write("open\n")
                probe.stdin.flush()
                opened.append(float(probe.stdout.readline()) - t0)
                t0 = time.time()
                http.delete(f"/api/mo/{prov}.json").raise_for_status()
                probe.stdin.write("closed\n")
                probe.stdin.flush()
                closed.append(float(probe.stdout.readline()) - t0)

                mac = f"02:be:00:00:{i // 256:02x}:{i % 256:02x}"
                in_ns(m.ns, "ip", "link", "set", "eth0", "address", mac)
                t0 = time.time()
                m.mac = mac
                wiring.garp(m)
                dn = f"{EPG}B/cep-{mac.upper()}"
                while not http.get(f"/api/mo/{dn}.json").json()["imdata"]:
                    time.sleep(0.005)
                learnt.append(time.time() - t0)
            probe.kill()
            mode = "polling only" if args.no_subscribe else "websocket events + polling"
            print(f"leaf: {mode}, poll interval {args.poll_interval} s, {args.iterations} iterations")
            print(f"contract provided in the APIC -> first TCP connection through the leaf: {percentiles(opened)}")
            print(f"contract relation deleted in the APIC -> connections refused by the leaf: {percentiles(closed)}")
            print(f"gratuitous ARP -> fvCEp in the APIC:                                     {percentiles(learnt)}")
            print(f"flows on the leaf: {leaf.status()['flows']}")
        finally:
            wiring.cleanup()
            leaf.stop()
            http.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
