"""The DNS port: an OVS internal port in the agent's namespace where the responder listens.

The flows (agent/pipeline/dns_redirect.py) DNAT a container's port-53 traffic to its tenant's
address on this port, ``169.254.53.<tenant id>``, and send it out here; the kernel hands it to the
responder's socket for that address. Replies leave by the same port: a policy-routing rule sends
everything from 169.254.53.0/24 to it (table 5353, whatever the container's subnet, which the host
itself does not route), the flows answer the kernel's ARP for the container with the port's peer MAC,
and the conntrack lookup undoes the DNAT, so the container sees the answer come from the address it
asked. TX checksum offload is off on the port: the userspace datapath fills in no checksums.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping

from agent.dns.addresses import DNS_PORT, DNS_PORT_MAC, DNS_PREFIX, DNS_ROUTE_TABLE, tenant_address
from agent.ovs.ovsdb import EXT_ROLE, Ovsdb
from agent.pipeline.tables import DNS_OFPORT
from agent.plumbing import tx_checksum_off

LOG = logging.getLogger(__name__)


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10).stdout


class DnsPort:
    def __init__(self, ovsdb: Ovsdb, bridge: str) -> None:
        self.ovsdb = ovsdb
        self.bridge = bridge
        self._addresses: set[str] = set()
        self._routed = False

    def converge(self, vrf_ids: Mapping[str, int]) -> tuple[int, dict[str, str]]:
        """Make the port, its addresses and its routing match the tenants; return its ofport (0 while
        OVS has not given one) and the addresses to listen on (address -> tenant)."""
        ofport = self.ovsdb.interface_ofports([DNS_PORT]).get(DNS_PORT, -1)
        if ofport <= 0:
            self.ovsdb.add_internal_port(self.bridge, DNS_PORT, DNS_PORT_MAC, {EXT_ROLE: "dns"}, DNS_OFPORT)
            ofport = self.ovsdb.wait_ofport(DNS_PORT)
            self._routed = False
        wanted = {tenant_address(v): t for t, v in vrf_ids.items() if tenant_address(v)}
        if not self._routed:
            _ip("link", "set", DNS_PORT, "up")
            tx_checksum_off(DNS_PORT)
            with open(f"/proc/sys/net/ipv4/conf/{DNS_PORT}/rp_filter", "w") as f:
                f.write("0")
            _ip("route", "replace", "default", "dev", DNS_PORT, "table", str(DNS_ROUTE_TABLE))
            if f"lookup {DNS_ROUTE_TABLE}" not in _ip("rule", "show"):
                _ip("rule", "add", "from", f"{DNS_PREFIX}0/24", "lookup", str(DNS_ROUTE_TABLE),
                    "priority", str(DNS_ROUTE_TABLE))
            self._addresses = {line.split()[3].split("/")[0]
                               for line in _ip("-4", "-o", "addr", "show", "dev", DNS_PORT).splitlines()}
            self._routed = True
        for address in sorted(set(wanted) - self._addresses):
            _ip("addr", "replace", f"{address}/32", "dev", DNS_PORT)
        for address in sorted(self._addresses - set(wanted)):
            _ip("addr", "del", f"{address}/32", "dev", DNS_PORT)
        self._addresses = set(wanted)
        return max(ofport, 0), wanted
