"""Hosts and containers wired to a simulated leaf, as the ACI-mode agents would wire them.

A host is a namespace with its own userspace OVS (this kernel has neither 802.1Q devices nor bridge
VLAN filtering), whose bridge ``hbr`` has the trunk ``trunk0`` plugged into a leaf port; a container
is a namespace whose ``eth0`` is an access port of ``hbr`` in its EPG's VLAN, as an ACI-mode agent
tags it.
Everything is named with the leaf's random prefix, so parallel runs never collide and ``cleanup``
finds it all, after failures too.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from apic_mock.leaf import SimLeaf
from apic_mock.leaf.ovs import OvsInstance
from testbed.cluster import in_ns, sh


@dataclass
class Container:
    ns: str
    ip: str
    mac: str
    vlan: int


@dataclass
class Wiring:
    leaf: SimLeaf
    namespaces: list[str] = field(default_factory=list)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    switches: list[OvsInstance] = field(default_factory=list)
    ovs: dict[str, OvsInstance] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return self.leaf.netns

    def host(self, name: str, port: str, adopt: bool = False) -> str:
        """A host on leaf port ``port``: a veth made by ``SimLeaf.connect``, or with ``adopt`` one made
        here in the root namespace (as the simulated cluster makes trunks) and moved in by ``SimLeaf.adopt``."""
        ns = f"{self.prefix}{name}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        ovs = OvsInstance(self.leaf.rundir.parent / f"{ns}-ovs", ns)
        self.switches.append(ovs)
        ovs.start()
        if adopt:
            root_end = f"{self.prefix}{name}t"
            sh("ip", "link", "add", root_end, "type", "veth", "peer", "name", "trunk0", "netns", ns)
            in_ns(ns, "ethtool", "-K", "trunk0", "tx", "off", check=False)
            in_ns(ns, "ip", "link", "set", "trunk0", "up")
            self.leaf.adopt(port, root_end)
        else:
            self.leaf.connect(port, ns, "trunk0")
        ovs.run("ovs-vsctl", "add-br", "hbr", "--", "set", "bridge", "hbr", "datapath_type=netdev",
                "--", "add-port", "hbr", "trunk0")
        self.ovs[ns] = ovs
        return ns

    def container(self, host: str, name: str, vlan: int, cidr: str, gateway: str | None = None) -> Container:
        ns = f"{self.prefix}c{name}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        port = f"v{name}"
        in_ns(host, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        in_ns(host, "ip", "link", "set", port, "up")
        self.ovs[host].run("ovs-vsctl", "add-port", "hbr", port, f"tag={vlan}")
        in_ns(ns, "ethtool", "-K", "eth0", "tx", "off", check=False)
        in_ns(ns, "ip", "addr", "add", cidr, "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        if gateway:
            in_ns(ns, "ip", "route", "add", "default", "via", gateway)
        mac = in_ns(ns, "cat", "/sys/class/net/eth0/address").stdout.strip()
        return Container(ns, cidr.split("/")[0], mac, vlan)

    def garp(self, c: Container) -> None:
        """A gratuitous ARP, as the agent sends on endpoint add."""
        in_ns(c.ns, "busybox", "arping", "-U", "-c", "1", "-I", "eth0", c.ip, check=False, timeout=10)

    def cleanup(self) -> None:
        for proc in self.servers:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
        for ovs in self.switches:
            ovs.stop()
            shutil.rmtree(ovs.rundir, ignore_errors=True)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()
        for line in sh("ip", "-o", "link", "show").stdout.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name.startswith(self.prefix):
                sh("ip", "link", "del", name, check=False)


def pings(src: Container, dst: str, count: int = 1, wait: int = 1) -> bool:
    return in_ns(src.ns, "ping", "-c", str(count), "-W", str(wait), dst, check=False).returncode == 0


TCP_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"ok"); c.close()
"""

TCP_CLIENT = """
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5)
    sys.exit(0 if c.recv(2) == b"ok" else 1)
except OSError:
    sys.exit(1)
"""



def serve_tcp(wiring: Wiring, c: Container, port: int) -> None:
    proc = subprocess.Popen(["ip", "netns", "exec", c.ns, sys.executable, "-c", TCP_SERVER, str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wiring.servers.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"


def connects(src: Container, dst: str, port: int) -> bool:
    return in_ns(src.ns, sys.executable, "-c", TCP_CLIENT, dst, str(port), check=False).returncode == 0
