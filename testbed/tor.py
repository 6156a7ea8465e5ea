"""A top-of-rack router for the simulated cluster: FRR in its own namespace, started without systemd.

The ToR sits on the hosts' uplink segment (the cluster's trunk bridge, untagged: the VLAN networks'
frames are tagged and never reach it) at ``UPLINK_NET.254`` (a second one at ``.253``), peers with
every host through ``bgp listen range`` (any number of hosts, no per-host configuration; the hosts
connect, the ToR is passive), is the next hop of every route it passes on (``next-hop-self``: host to
host traffic crosses the ToR, so two ToRs are two paths) and has an "external" network behind it: a
namespace standing for a server outside the cluster (``EXTERNAL_SERVER_IP`` behind the first ToR).

FRR's daemons run as ``zebra``/``bgpd`` processes in the namespace, with their vty sockets, zserv
socket, pid files and logs under the cluster's directory (``--vty_socket``, ``-z``, ``-i``), so
several ToRs and several clusters coexist; configuration goes through ``vtysh --vty_socket``. Routes
the ToR learns land in its namespace's kernel table (``kernel_routes``), which is what the tests and
the benchmark read.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.cluster import in_ns, sh

FRR = Path("/usr/lib/frr")
UPLINK_NET = "50.1.1"  # the router IPs' segment: hosts .1, .2, ...; ToRs .254, .253
UPLINK_PREFIX = 24
TOR_AS = 500
EXTERNAL_NET_BASE = "172.30"  # ToR i announces EXTERNAL_NET_BASE.(i+1).0/24
EXTERNAL_SERVER_IP = f"{EXTERNAL_NET_BASE}.1.10"  # behind the first ToR
SHARED_NET = f"{EXTERNAL_NET_BASE}.100"  # an external network behind every ToR (ECMP): ToR i at .(i+1)


def host_router_ip(i: int) -> str:
    """Host *i*'s router IP (with prefix length) on the uplink segment."""
    return f"{UPLINK_NET}.{i}/{UPLINK_PREFIX}"


@dataclass
class Tor:
    """One FRR router. ``prefix`` is the cluster's (names of namespaces and links start with it, so the
    cluster's cleanup removes them); ``index`` 0 or 1 (address .254 or .253, external net per index)."""

    prefix: str
    root: Path
    trunk_bridge: str
    index: int = 0
    asn: int = TOR_AS
    shared: bool = False  # also on the shared external network, announcing it (``SharedExternal``)

    @property
    def ns(self) -> str:
        return f"{self.prefix}tor{self.index}"

    @property
    def server_ns(self) -> str:
        return f"{self.prefix}ext{self.index}"

    @property
    def ip(self) -> str:
        return f"{UPLINK_NET}.{254 - self.index}"

    @property
    def external_net(self) -> str:
        return f"{EXTERNAL_NET_BASE}.{1 + self.index}"

    @property
    def server_ip(self) -> str:
        return f"{self.external_net}.10"

    @property
    def dir(self) -> Path:
        return self.root / f"tor{self.index}"

    def up(self) -> Tor:
        """Namespaces, links, FRR daemons, the BGP configuration."""
        p, i = self.prefix, self.index
        self.dir.mkdir(parents=True, exist_ok=True)
        for ns in (self.ns, self.server_ns):
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        # uplink side: a veth on the trunk bridge
        sh("ip", "link", "add", f"{p}r{i}", "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        sh("ip", "link", "set", f"{p}r{i}", "master", self.trunk_bridge, "up")
        in_ns(self.ns, "ip", "addr", "add", f"{self.ip}/{UPLINK_PREFIX}", "dev", "eth0")
        in_ns(self.ns, "ip", "link", "set", "eth0", "up")
        # external side: the server's namespace behind the ToR
        in_ns(self.ns, "ip", "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", self.server_ns)
        in_ns(self.ns, "ip", "addr", "add", f"{self.external_net}.1/24", "dev", "ext0")
        in_ns(self.ns, "ip", "link", "set", "ext0", "up")
        in_ns(self.server_ns, "ip", "addr", "add", f"{self.server_ip}/24", "dev", "eth0")
        in_ns(self.server_ns, "ip", "link", "set", "eth0", "up")
        in_ns(self.server_ns, "ip", "route", "add", "default", "via", f"{self.external_net}.1")
        in_ns(self.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # the hosts' routed frames come back out of the interface they arrived on: no redirects
        in_ns(self.ns, "sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0")
        in_ns(self.ns, "sysctl", "-qw", "net.ipv4.conf.eth0.send_redirects=0")
        # The hosts read the uplink through OVS's userspace datapath, which never completes a checksum
        # left to offload: TCP (the BGP session) from the ToR would arrive with a bad checksum.
        in_ns(self.ns, "ethtool", "-K", "eth0", "tx", "off")
        in_ns(self.server_ns, "ethtool", "-K", "eth0", "tx", "off")
        self.start()
        return self

    def _run_dir(self) -> Path:
        return self.dir / "run"

    def start(self) -> None:
        """Start zebra and bgpd and configure BGP (also after ``kill``: a ToR restart)."""
        run = self._run_dir()
        run.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir, "frr", "frr")
        shutil.chown(run, "frr", "frr")
        for daemon in ("zebra", "bgpd"):
            conf = self.dir / f"{daemon}.conf"
            conf.write_text(f"hostname {self.ns}\n")
            shutil.chown(conf, "frr", "frr")
            in_ns(self.ns, str(FRR / daemon), "-d", "--vty_socket", str(run), "-z", str(run / "zserv.api"),
                  "-f", str(conf), "-i", str(self.dir / f"{daemon}.pid"), "--log", f"file:{self.dir / daemon}.log")
        deadline = time.monotonic() + 15
        while not (run / "bgpd.vty").exists() or not (run / "zebra.vty").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"FRR in {self.ns} did not start: {self.log()[-2000:]}")
            time.sleep(0.05)
        self.vtysh("conf t", f"router bgp {self.asn}", f"bgp router-id {self.ip}", "no bgp ebgp-requires-policy",
                   "no bgp network import-check", "neighbor hosts peer-group", "neighbor hosts remote-as external",
                   "neighbor hosts timers 3 9", "neighbor hosts timers connect 1",
                   f"bgp listen range {UPLINK_NET}.0/{UPLINK_PREFIX} peer-group hosts",
                   "address-family ipv4 unicast", "neighbor hosts next-hop-self force",
                   f"network {self.external_net}.0/24", *([f"network {SHARED_NET}.0/24"] if self.shared else []),
                   "exit-address-family")

    def vtysh(self, *commands: str) -> str:
        args = ["vtysh", "--vty_socket", str(self._run_dir())]
        for command in commands:
            args += ["-c", command]
        return in_ns(self.ns, *args).stdout

    def kill(self) -> None:
        """SIGKILL both daemons (a ToR crash); their kernel routes go with zebra's cleanup on restart."""
        for daemon in ("bgpd", "zebra"):
            pidfile = self.dir / f"{daemon}.pid"
            try:
                pid = int(pidfile.read_text().strip())
                sh("kill", f"-{int(signal.SIGKILL)}", str(pid), check=False)
            except (OSError, ValueError):
                pass
        for name in ("bgpd.vty", "zebra.vty", "zserv.api"):
            (self._run_dir() / name).unlink(missing_ok=True)

    def peers(self) -> dict[str, Any]:
        """``show bgp summary json``'s peers: address -> {"state", "pfxRcd", ...}."""
        out = json.loads(self.vtysh("show bgp ipv4 unicast summary json") or "{}")
        return out.get("peers", {})

    def established(self) -> list[str]:
        return sorted(a for a, p in self.peers().items() if p.get("state") == "Established")

    def kernel_routes(self) -> dict[str, str]:
        """The ToR namespace's kernel routes installed by BGP: prefix -> next hop."""
        out = json.loads(in_ns(self.ns, "ip", "-j", "route", "show", "proto", "bgp").stdout or "[]")
        routes = {}
        for r in out:
            dst = r["dst"] if "/" in r["dst"] else f"{r['dst']}/32"
            routes[dst] = r.get("gateway", "")
        return routes

    def forwarded(self, src: str) -> int:
        """Packets from *src* this ToR has routed (an iptables counter in its FORWARD chain, added on
        first use): how the tests see which ToR an ECMP flow took."""
        rule = ("FORWARD", "-s", src, "-m", "comment", "--comment", "contiv-count")
        if in_ns(self.ns, "iptables", "-w", "-C", *rule, check=False).returncode != 0:
            in_ns(self.ns, "iptables", "-w", "-A", *rule)
        out = in_ns(self.ns, "iptables", "-w", "-nvxL", "FORWARD").stdout
        for line in out.splitlines():
            fields = line.split()
            if "contiv-count" in line and src in fields:
                return int(fields[0])
        raise RuntimeError(f"no counter for {src} in {self.ns}: {out}")

    def log(self) -> str:
        return "".join((self.dir / f"{d}.log").read_text(errors="replace") for d in ("zebra", "bgpd")
                       if (self.dir / f"{d}.log").exists())


@dataclass
class SharedExternal:
    """An external network behind every ToR (``SHARED_NET.0/24``, a bridge in its own namespace with a
    server at ``.10``): each ToR announces it, so the hosts learn it through all of them at equal cost
    (ECMP). The server answers through the first ToR, or any, with a multipath default route."""

    prefix: str
    tors: list[Tor]

    @property
    def ns(self) -> str:
        return f"{self.prefix}extsh"

    @property
    def server_ip(self) -> str:
        return f"{SHARED_NET}.10"

    def up(self) -> SharedExternal:
        sh("ip", "netns", "add", self.ns)
        in_ns(self.ns, "ip", "link", "set", "lo", "up")
        in_ns(self.ns, "ip", "link", "add", "br0", "type", "bridge")
        in_ns(self.ns, "ip", "addr", "add", f"{self.server_ip}/24", "dev", "br0")
        in_ns(self.ns, "ip", "link", "set", "br0", "up")
        hops: list[str] = []
        for tor in self.tors:
            i = tor.index
            in_ns(tor.ns, "ip", "link", "add", "sh0", "type", "veth", "peer", "name", f"t{i}", "netns", self.ns)
            in_ns(tor.ns, "ip", "addr", "add", f"{SHARED_NET}.{i + 1}/24", "dev", "sh0")
            in_ns(tor.ns, "ip", "link", "set", "sh0", "up")
            in_ns(tor.ns, "ethtool", "-K", "sh0", "tx", "off")
            in_ns(self.ns, "ip", "link", "set", f"t{i}", "master", "br0", "up")
            hops += ["nexthop", "via", f"{SHARED_NET}.{i + 1}"]
            tor.shared = True
            tor.vtysh("conf t", f"router bgp {tor.asn}", "address-family ipv4 unicast", f"network {SHARED_NET}.0/24")
        in_ns(self.ns, "ethtool", "-K", "br0", "tx", "off")
        in_ns(self.ns, "ip", "route", "add", "default", *hops)
        return self
