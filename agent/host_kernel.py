"""Host access, the host's side: the host port's address, routes to the served container subnets,
IP forwarding and source NAT (docs/host-access.md).

Everything here is converged from the plan (``agent.host_access``) on every full reconcile, so a
restarted agent finds and keeps what its predecessor set up (no rule is re-added twice, no route
flaps, kernel conntrack and its NAT bindings are untouched: established connections survive), and
what a deleted network needed goes:

- the host port ``contivh0`` (created in OVSDB by the reconciler) up, with the private address;
- one route per served subnet, ``dev contivh0`` (the kernel picks the private address as source), in
  routing table 5354, which a rule (priority 5354, before ``main``) consults first: a miss there falls
  through to ``main``. Not in ``main`` itself because libnetwork (dockerd) checks a local-scope
  network's pool against the main table's routes and, given the same pool again by our IPAM driver,
  asks for it forever: ``docker network create`` hangs. Others found on the device there are removed;
- ``net.ipv4.ip_forward=1`` (left on when host access goes: other software may rely on it);
- iptables, in chains the agent owns and rewrites whole (``iptables-restore --noflush``, atomic):
  ``CONTIV-HOST-SNAT`` in nat POSTROUTING, ``-s <subnet> ! -o contivh0 -j MASQUERADE`` per served
  subnet (Calico's natOutgoing: traffic to the host's own addresses and back into the switch keeps
  the container's address); ``CONTIV-HOST-FWD`` in filter FORWARD accepts what comes from the host
  port and what returns to it on an established connection (hosts whose FORWARD policy is DROP, as
  Docker sets it) and drops any other forwarded packet to it: a machine that routes a container
  subnet to this host cannot open connections to containers (the host's own can: they are not
  forwarded). With no served network both chains and their jumps are removed.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import subprocess
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from agent.host_access import HOST_PORT, HostAccessPlan

LOG = logging.getLogger(__name__)

SNAT_CHAIN = "CONTIV-HOST-SNAT"
FORWARD_CHAIN = "CONTIV-HOST-FWD"
_JUMPS = (("nat", "POSTROUTING", SNAT_CHAIN), ("filter", "FORWARD", FORWARD_CHAIN))
_RTPROT_KERNEL = 2
_RTPROT_STATIC = 4
_RT_SCOPE_LINK = 253
_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
ROUTE_TABLE = 5354  # the container subnets' routes (agent.dns uses 5353)
RULE_PRIORITY = 5354  # its rule, consulted before main (32766)


def _has_rule(ipr: IPRoute) -> bool:
    return any(r.get_attr("FRA_PRIORITY") == RULE_PRIORITY and r.get_attr("FRA_TABLE") == ROUTE_TABLE
               for r in ipr.get_rules(family=socket.AF_INET))


def _addresses(ipr: IPRoute, index: int) -> set[str]:
    return {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(family=socket.AF_INET, index=index)}


def iptables_rules(subnets: list[str], port: str = HOST_PORT) -> str:
    """The agent's chains for *subnets*, as iptables-restore input (declaring a chain flushes it)."""
    nat = [f"-A {SNAT_CHAIN} -s {s} ! -o {port} -j MASQUERADE" for s in subnets]
    fwd = [f"-A {FORWARD_CHAIN} -i {port} -j ACCEPT",
           f"-A {FORWARD_CHAIN} -o {port} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
           f"-A {FORWARD_CHAIN} -o {port} -j DROP"]
    return "\n".join(["*nat", f":{SNAT_CHAIN} - [0:0]", *nat, "COMMIT",
                      "*filter", f":{FORWARD_CHAIN} - [0:0]", *fwd, "COMMIT", ""])


class HostKernel:
    """The host-side converger. *iptables* names the iptables binary (its ``-restore`` sibling is
    used for writes)."""

    def __init__(self, port: str = HOST_PORT, iptables: str = "iptables") -> None:
        self.port = port
        self.iptables = iptables

    # -- iptables -------------------------------------------------------------------------------

    def _ipt(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.iptables, "-w", "5", *args], capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.iptables} {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def _write_chains(self, subnets: list[str]) -> None:
        proc = subprocess.run([f"{self.iptables}-restore", "-w", "5", "--noflush"],
                              input=iptables_rules(subnets, self.port), capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.iptables}-restore: {proc.stderr.strip()}")
        for table, parent, chain in _JUMPS:
            if self._ipt("-t", table, "-C", parent, "-j", chain, check=False).returncode != 0:
                self._ipt("-t", table, "-I", parent, "1", "-j", chain)

    def _remove_chains(self) -> None:
        for table, parent, chain in _JUMPS:
            while self._ipt("-t", table, "-D", parent, "-j", chain, check=False).returncode == 0:
                pass
            if self._ipt("-t", table, "-F", chain, check=False).returncode == 0:
                self._ipt("-t", table, "-X", chain)

    def snat_rules(self) -> list[str]:
        """The agent's nat chain as iptables prints it (empty when absent)."""
        proc = self._ipt("-t", "nat", "-S", SNAT_CHAIN, check=False)
        return [line for line in proc.stdout.splitlines() if line.startswith("-A")] if proc.returncode == 0 else []

    # -- addresses and routes ---------------------------------------------------------------------

    def _routes(self, ipr: IPRoute, index: int) -> set[str]:
        """The routes the agent owns on the port: every one but the kernel's for the private subnet."""
        out = set()
        for route in ipr.get_routes(family=socket.AF_INET, oif=index, table=ROUTE_TABLE):
            if route["proto"] != _RTPROT_KERNEL and route.get_attr("RTA_DST"):
                out.add(f"{route.get_attr('RTA_DST')}/{route['dst_len']}")
        return out

    def _converge_link(self, ipr: IPRoute, index: int, address: str, subnets: list[str]) -> None:
        iface = ipaddress.IPv4Interface(address)
        ipr.link("set", index=index, state="up")
        have = _addresses(ipr, index)
        for other in have - {address}:
            ip, plen = other.split("/")
            ipr.addr("del", index=index, address=ip, prefixlen=int(plen))
        if address not in have:
            ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        routes = self._routes(ipr, index)
        for gone in routes - set(subnets):
            ip, plen = gone.split("/")
            ipr.route("del", dst=ip, dst_len=int(plen), oif=index, table=ROUTE_TABLE)
        for subnet in subnets:
            if subnet not in routes:
                net = ipaddress.IPv4Network(subnet)
                ipr.route("replace", dst=str(net.network_address), dst_len=net.prefixlen, oif=index,
                          scope=_RT_SCOPE_LINK, proto=_RTPROT_STATIC, table=ROUTE_TABLE)
        if not _has_rule(ipr):
            ipr.rule("add", family=socket.AF_INET, table=ROUTE_TABLE, priority=RULE_PRIORITY)

    # -- the entry points -------------------------------------------------------------------------

    def converge(self, plan: HostAccessPlan) -> None:
        """Make the host match *plan* (its port must exist: the reconciler waits for it)."""
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=self.port)
            if not found:
                raise RuntimeError(f"host port {self.port} has no kernel device")
            self._converge_link(ipr, found[0], plan.address, plan.subnets)
        if _IP_FORWARD.read_text().strip() != "1":
            _IP_FORWARD.write_text("1")
            LOG.info("host access: net.ipv4.ip_forward set to 1")
        self._write_chains(plan.subnets)

    def remove(self) -> None:
        """No served network: the chains and the rule go (the routes go with the port, which the
        reconciler deletes)."""
        self._remove_chains()
        with IPRoute() as ipr:
            if _has_rule(ipr):
                ipr.rule("del", family=socket.AF_INET, table=ROUTE_TABLE, priority=RULE_PRIORITY)

    def info(self) -> dict[str, Any]:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=self.port)
            routes = sorted(self._routes(ipr, found[0])) if found else []
            addrs = sorted(_addresses(ipr, found[0])) if found else []
        return {"port": self.port if found else None, "addresses": addrs, "routes": routes,
                "snat_rules": self.snat_rules(), "ip_forward": _IP_FORWARD.read_text().strip() == "1"}
