"""A simulated cluster in ACI mode: agents following a netmaster started with ``--infra aci``, whose app
profiles go to a real aci-gw and apic_mock (``netmaster.aci_stack.AciControlPlane``).

Without a leaf the trunks meet on the plain Linux bridge of tests/cluster: frames keep their EPG VLAN
end to end, so same-EPG traffic crosses hosts while nothing re-tags between EPGs (that is the fabric's
job, tests/aci_e2e). ``TrunkCapture`` records what a host puts on its trunk, from the root-namespace
end of the cable.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from netmaster.aci_stack import AciControlPlane
from tests.agent_sync.sync_cluster import SyncCluster


class AciCluster(SyncCluster):
    def __init__(self, n_hosts: int = 2) -> None:
        super().__init__(n_hosts=n_hosts, kind="ac")
        self.control: AciControlPlane | None = None

    def start_netmaster(self) -> None:
        if self.control is None:
            self.control = AciControlPlane(self.root / "aci", netmaster_host=self.ctrl_ip,
                                           netmaster_port=self.nm_port)
            self.control.start()
        else:
            self.control.start_netmaster()
        self.netmaster = self.control.netmaster
        self.pids[:] = self.control.pids()
        self._record()

    def stop_netmaster(self) -> None:
        if self.control is not None:
            self.control.stop_netmaster()
            self.netmaster = None

    def down(self) -> None:
        if self.control is not None:
            self.control.stop()
            self.control = None
        self.netmaster = None
        super().down()

    def trunk_of(self, i: int) -> str:
        """The root-namespace end of host *i*'s trunk cable (1-based)."""
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

    def wait_for(self, pattern: str, timeout: float = 5.0) -> list[Frame]:
        """Frames whose line matches the regex *pattern*, waiting up to *timeout* for a first one."""
        deadline = time.monotonic() + timeout
        while True:
            found = [f for f in self.frames() if re.search(pattern, f.text)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
