"""The leaf's data plane: a network namespace with its own userspace Open vSwitch.

The namespace holds the fabric ports (one interface per ``eth1/N``, marked in OVSDB with
``external_ids:fabric-port``) and the learning port ``lrn0``. Everything is run through
``ovs-vsctl``/``ovs-ofctl`` against the private run directory; flows are replaced as a whole in one
OpenFlow bundle, so a policy change is atomic. The controller process itself stays in the root
namespace (where the APIC is reachable); only the learner's raw socket is opened inside the leaf.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

from apic_mock.leaf.ovs import OvsInstance

log = logging.getLogger("apic_mock.leaf.switch")

BRIDGE = "leaf"
LEARN_PORT = "lrn0"
LEARN_OFPORT = 4000
FABRIC_PORT_RE = re.compile(r"^eth(\d+)/(\d+)$")


def ovs_port_name(fabric_port: str) -> str:
    """``eth1/7`` -> ``eth1-7`` (OVS and Linux names cannot contain ``/``)."""
    m = FABRIC_PORT_RE.match(fabric_port)
    if not m:
        raise ValueError(f"fabric port {fabric_port!r} is not of the form eth<module>/<port>, e.g. eth1/1")
    return f"eth{m.group(1)}-{m.group(2)}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def netns_exists(name: str) -> bool:
    return any(line.split(" ")[0] == name for line in ip("netns", "list").stdout.splitlines())


class LeafSwitch:
    """The namespace, the OVS instance and the ``leaf`` bridge of one simulated leaf."""

    def __init__(self, netns: str, rundir: Path) -> None:
        self.netns = netns
        self.rundir = Path(rundir)
        self.ovs = OvsInstance(self.rundir / "ovs", netns)
        self.flow_file = self.rundir / "flows.txt"
        self._applied: list[str] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def create(self) -> None:
        """Namespace (if absent), OVS daemons, the bridge and the learning port."""
        if not netns_exists(self.netns):
            ip("netns", "add", self.netns)
            (self.rundir / "netns-created").parent.mkdir(parents=True, exist_ok=True)
            (self.rundir / "netns-created").write_text(self.netns)
        ip("-n", self.netns, "link", "set", "lo", "up")
        self.ovs.start()
        self.ovs.run("ovs-vsctl", "add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev",
                     "fail-mode=secure", "protocols=OpenFlow13",
                     "--", "add-port", BRIDGE, LEARN_PORT, "--", "set", "interface", LEARN_PORT, "type=internal",
                     f"ofport_request={LEARN_OFPORT}")
        self.ovs.run("ovs-ofctl", "-O", "OpenFlow13", "del-flows", BRIDGE)
        self.ovs.run("ip", "netns", "exec", self.netns, "sysctl", "-qw",
                     f"net.ipv6.conf.{LEARN_PORT}.disable_ipv6=1", check=False)
        ip("-n", self.netns, "link", "set", LEARN_PORT, "up")

    def add_port(self, fabric_port: str, iface: str) -> None:
        """Attach ``iface`` (an interface in the leaf namespace) as fabric port ``fabric_port``."""
        m = FABRIC_PORT_RE.match(fabric_port)
        if not m:
            raise ValueError(f"fabric port {fabric_port!r} is not of the form eth<module>/<port>, e.g. eth1/1")
        ip("-n", self.netns, "link", "set", iface, "up")
        self.ovs.run("ip", "netns", "exec", self.netns, "ethtool", "-K", iface, "tx", "off", check=False)
        ofport = int(m.group(1)) * 100 + int(m.group(2)) if int(m.group(1)) > 1 else int(m.group(2))
        self.ovs.run("ovs-vsctl", "--may-exist", "add-port", BRIDGE, iface, "--", "set", "interface", iface,
                     f"external_ids:fabric-port={fabric_port}", f"ofport_request={ofport}")

    def remove_port(self, fabric_port: str) -> None:
        for name, (fabric, _) in self._interfaces().items():
            if fabric == fabric_port:
                self.ovs.run("ovs-vsctl", "--if-exists", "del-port", BRIDGE, name)

    def destroy(self) -> None:
        """Stop OVS, delete the namespace if this leaf created it, remove the run directory."""
        teardown(self.netns, self.rundir)

    # -- state -----------------------------------------------------------------------------------
    def _interfaces(self) -> dict[str, tuple[str, int]]:
        out = self.ovs.run("ovs-vsctl", "--format=json", "--columns=name,ofport,external_ids", "list", "Interface")
        result = {}
        for name, ofport, ext in json.loads(out)["data"]:
            ids = dict(ext[1]) if isinstance(ext, list) and ext[0] == "map" else {}
            fabric = ids.get("fabric-port")
            if fabric and isinstance(ofport, int) and ofport > 0:
                result[name] = (fabric, ofport)
        return result

    def ports(self) -> dict[str, int]:
        """Fabric port name -> OpenFlow port number, for the ports currently attached."""
        return {fabric: ofport for fabric, ofport in self._interfaces().values()}

    def apply(self, flows: list[str]) -> bool:
        """Replace all flows in one bundle; no-op (False) when they are unchanged."""
        if flows == self._applied:
            return False
        tmp = self.flow_file.with_suffix(".tmp")
        tmp.write_text("\n".join(flows) + "\n")
        tmp.replace(self.flow_file)
        self.ovs.run("ovs-ofctl", "-O", "OpenFlow13", "--bundle", "replace-flows", BRIDGE, str(self.flow_file))
        # The userspace datapath's revalidation can leave a stale verdict on one of two overlapping cached
        # flows (docs/pipeline.md, "Datapath flow cache"): purge the cache, as the host agent does.
        self.ovs.run("ovs-appctl", "revalidator/purge")
        self._applied = flows
        return True

    def forget_applied(self) -> None:
        """Make the next :meth:`apply` write even if the flows look unchanged (after an error)."""
        self._applied = None

    def source_counters(self, table: int) -> dict[tuple[int, str], int]:
        """Packet counts of the known-source flows: (ingress binding, MAC) -> n_packets."""
        out = self.ovs.run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", BRIDGE, f"table={table}")
        counts = {}
        for line in out.splitlines():
            m = re.search(r"n_packets=(\d+).*reg7=(0x[0-9a-f]+|\d+),dl_src=([0-9a-f:]{17})", line)
            if m:  # ovs-ofctl prints registers in hex
                counts[(int(m.group(2), 0), m.group(3))] = int(m.group(1))
        return counts

    def flows(self) -> list[str]:
        return self.ovs.flows(BRIDGE)


def teardown(netns: str, rundir: Path) -> None:
    """Idempotent cleanup, also after a crash: OVS daemons by pid file, the namespace if it was
    created by the leaf, the run directory."""
    rundir = Path(rundir)
    OvsInstance(rundir / "ovs", netns).stop()
    created = rundir / "netns-created"
    if created.exists() and netns_exists(netns):
        ip("netns", "del", netns, check=False)
    shutil.rmtree(rundir, ignore_errors=True)
