"""The whole ACI stack on one machine: apic_mock, aci-gw, netmaster in ACI mode
(``testbed.aci_stack.AciControlPlane``), simulated hosts whose agents follow it and, with
``leaf=True``, a simulated leaf (``apic_mock.leaf.SimLeaf``) with host *i*'s trunk cabled to its port
``eth1/i``::

    with AciCluster(n_hosts=2, leaf=True) as cluster:     # or cluster.up() ... cluster.down()
        api = cluster.control.api                          # netmaster's REST API (AciApi)
        cluster.leaf.endpoints()                           # what the leaf learnt

Without a leaf the trunks meet on the plain Linux bridge of tests/cluster: frames keep their EPG VLAN
end to end, so same-EPG traffic crosses hosts while nothing re-tags between EPGs (tests/aci_agent
proves the agents leave that to the fabric). ``TrunkCapture`` records what a host puts on its trunk,
from the root-namespace end of the cable (without a leaf).
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from apic_mock.leaf import SimLeaf
from testbed.aci_stack import LEAF_NODE_ID, AciControlPlane
from testbed.cluster import in_ns, sh
from testbed.sync_cluster import SyncCluster


class AciCluster(SyncCluster):
    def __init__(self, n_hosts: int = 2, leaf: bool = False, apic_process: bool = False) -> None:
        """*apic_process*: apic_mock as its own process (see AciControlPlane), e.g. to outlive this one."""
        super().__init__(n_hosts=n_hosts, kind="ac")
        self.control: AciControlPlane | None = None
        self.apic_process = apic_process
        self.with_leaf = leaf
        self.leaf: SimLeaf | None = None

    def up(self, start_agents: bool = True) -> AciCluster:
        super().up(start_agents=False)
        if self.with_leaf:
            self._start_leaf()
        if start_agents:
            for host in self.hosts:
                self.start_agent(host)
        return self

    def _start_leaf(self) -> None:
        assert self.control is not None
        assert self.control.apic is not None
        apic = self.control.apic
        self.leaf = SimLeaf(LEAF_NODE_ID, apic_url=apic.url, username=apic.username, password=apic.password,
                            ca_file=apic.ca_file, netns=f"{self.prefix}lf", rundir=self.root / "leaf",
                            poll_interval=0.3)
        self.leaf.start()
        self._record_pids()
        # Re-cable each host's trunk from the cluster's trunk bridge (where testbed.cluster puts it, before
        # the APIC the leaf needs exists) to leaf port eth1/i: moving it into the leaf's namespace
        # takes it off the bridge.
        for i, host in enumerate(self.hosts, start=1):
            port, name = f"eth1/{i}", f"eth1-{i}"
            sh("ip", "link", "set", self.trunk_of(i), "netns", self.leaf.netns)
            sh("ip", "-n", self.leaf.netns, "link", "set", self.trunk_of(i), "name", name)
            self.leaf.add_port(port, name)
            in_ns(host.netns, "ethtool", "-K", "trunk0", "tx", "off", check=False)

    def start_netmaster(self) -> None:
        if self.control is None:
            self.control = AciControlPlane(self.root / "aci", netmaster_host=self.ctrl_ip,
                                           netmaster_port=self.nm_port, apic_process=self.apic_process)
            self.control.start()
        else:
            self.control.start_netmaster()
        self.netmaster = self.control.netmaster
        self._record_pids()

    def _record_pids(self) -> None:
        """Processes for ``python -m testbed.cluster down`` to kill after a crashed run."""
        leaf = [self.leaf.process.pid] if self.leaf is not None and self.leaf.process is not None else []
        self.pids[:] = (self.control.pids() if self.control else []) + leaf
        self._record()

    def stop_netmaster(self) -> None:
        if self.control is not None:
            self.control.stop_netmaster()
            self.netmaster = None

    def down(self) -> None:
        if self.leaf is not None:
            self.leaf.stop()
            self.leaf = None
        if self.control is not None:
            self.control.stop()
            self.control = None
        self.netmaster = None
        super().down()

    def trunk_of(self, i: int) -> str:
        """The root-namespace end of host *i*'s trunk cable (1-based; renamed eth1-i in the leaf)."""
        return f"{self.prefix}t{i}"


@dataclass(frozen=True)
class Frame:
    """One frame as tcpdump -e prints it: source MAC, VLAN (0: untagged) and the rest of the line."""

    src: str
    vlan: int
    text: str


_LINE = re.compile(r"^\S+ (?P<src>[0-9a-f:]{17}) > [0-9a-f:]{17}, ")
_VLAN = re.compile(r"ethertype 802\.1Q \(0x8100\), length \d+: vlan (\d+),")


class TrunkCapture:
    """tcpdump on an interface in the root namespace, for the duration of a ``with`` block."""

    def __init__(self, iface: str, workdir: Path) -> None:
        self.iface = iface
        self.path = workdir / f"capture-{iface}-{time.monotonic_ns()}.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> TrunkCapture:
        out = open(self.path, "wb")
        self.proc = subprocess.Popen(["tcpdump", "-i", self.iface, "-e", "-nn", "-l", "-U"], stdout=out,
                                     stderr=subprocess.PIPE)
        out.close()
        assert self.proc.stderr is not None
        lines = []
        while not lines or "listening on" not in lines[-1]:  # capturing from there on
            lines.append(self.proc.stderr.readline().decode())
            if not lines[-1] or len(lines) > 5:
                self.proc.kill()
                raise RuntimeError(f"tcpdump on {self.iface}: {''.join(lines)}")
        return self

    def frames(self) -> list[Frame]:
        out = []
        for line in self.path.read_text(errors="replace").splitlines():
            m = _LINE.match(line)
            if m:
                tag = _VLAN.search(line)
                out.append(Frame(m["src"], int(tag[1]) if tag else 0, line))
        return out

    def wait_for(self, pattern: str, timeout: float = 5.0, count: int = 1) -> list[Frame]:
        """Frames whose line matches the regex *pattern*, waiting up to *timeout* for *count* of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [f for f in self.frames() if re.search(pattern, f.text)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
