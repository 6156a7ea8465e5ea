"""Host access and external SNAT: which networks this host serves, and at which address (pure).

A host-access network's containers reach their host and, through it, addresses outside the cluster
(source NAT to the host's address on the way out; docs/host-access.md). The host has one routing
table, so it can route to a container subnet only if no other served network claims the same
addresses: networks of two tenants whose subnets overlap (tenants may reuse addresses) are both
*refused* here, with the reason, rather than one of them getting the other's traffic. A subnet that
overlaps the private subnet (the host port's own) is refused too. In ACI mode the fabric routes and
no network is served.

The host port takes Contiv's address: the last usable address of ``pvtSubnet`` (172.19.255.254/16 for
the default 172.19.0.0/16). It is host-local (never leaves the host), so every host uses the same.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.state import DesiredState, Network

HOST_PORT = "contivh0"


@dataclass(frozen=True)
class HostAccessPlan:
    networks: tuple[Network, ...] = ()  # served: routed to through the host port, masqueraded
    refused: Mapping[str, str] = field(default_factory=dict)  # network key -> why it is not served
    address: str = ""  # the host port's address with its prefix length, e.g. 172.19.255.254/16

    @property
    def active(self) -> bool:
        return bool(self.networks)

    @property
    def subnets(self) -> list[str]:
        return sorted({n.cidr for n in self.networks})


def host_port_address(pvt_subnet: str) -> str:
    """Contiv's host-access address: the last usable address of the private subnet."""
    pvt = ipaddress.IPv4Network(pvt_subnet)
    return f"{pvt.network_address + (pvt.num_addresses - 2)}/{pvt.prefixlen}"


def plan(state: DesiredState) -> HostAccessPlan:
    """The networks of *state* this host serves, and the ones it refuses (with the reason)."""
    wanted = [n for n in state.networks if n.host_access]
    if state.aci:
        return HostAccessPlan(refused={n.key: "ACI mode: the fabric routes" for n in wanted})
    pvt = ipaddress.IPv4Network(state.pvt_subnet)
    refused: dict[str, str] = {}
    for net in wanted:
        subnet = ipaddress.IPv4Network(net.cidr)
        if subnet.overlaps(pvt):
            refused[net.key] = f"subnet {net.cidr} overlaps the private subnet {state.pvt_subnet}"
            continue
        clash = sorted(o.key for o in wanted if o.tenant != net.tenant
                       and ipaddress.IPv4Network(o.cidr).overlaps(subnet))
        if clash:
            refused[net.key] = (f"subnet {net.cidr} overlaps host-access network(s) {', '.join(clash)} of "
                                "another tenant: one host routing table cannot serve both")
    served = tuple(n for n in wanted if n.key not in refused)
    return HostAccessPlan(served, refused, host_port_address(state.pvt_subnet) if served else "")
