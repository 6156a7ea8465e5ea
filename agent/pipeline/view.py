"""What the pipeline stages read: the desired state seen from one host.

The reconciler resolves the few host-specific facts (which endpoints are local and on which ofport,
the tenant VRF numbers, whether the tunnel and uplink ports exist) once, so every stage is a pure
function of this view and the whole pipeline can be rebuilt and diffed on every change.

The stages work on L2 *segments*. Normally a segment is a network. In ACI mode it is an endpoint
group: the fabric classifies traffic by VLAN into EPGs, so an endpoint's frames carry its EPG's VLAN
and only endpoints of one EPG share a segment; the view then presents one VLAN "network" per EPG
(``net/epg``, the EPG's VLAN, the network's subnet and gateway) and the stages need not know.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from agent.ovs.flow import Action, Bundle, Output
from agent.pipeline.tables import UPLINK_OFPORT
from agent.state import DesiredState, Endpoint, Network


@dataclass(frozen=True)
class LearnedRoute:
    """A best path the host's BGP speaker learned from a peer, with its next hop resolved on the uplink."""

    prefix: str  # "172.30.1.0/24", "10.1.1.6/32"
    next_hop: str
    next_hop_mac: str


@dataclass(frozen=True)
class BgpView:
    """L3 mode on this host: the router port's address and MAC, and the routes learned (docs/bgp.md)."""

    router_ip: str  # the address alone
    router_mac: str
    routes: tuple[LearnedRoute, ...] = ()


@dataclass(frozen=True)
class DatapathView:
    state: DesiredState
    host: str
    vrf_ids: Mapping[str, int]  # tenant -> VRF id (also the conntrack zone)
    endpoint_ofports: Mapping[str, int]  # local endpoint id -> ofport (only endpoints with a port)
    has_tunnel: bool = False
    has_uplink: bool = False
    uplink_ports: tuple[int, ...] = (UPLINK_OFPORT,)  # ofports of the uplink; several: a bond's members
    dns_ofport: int = 0  # the DNS responder's port (agent/dns); 0: no service discovery on this host
    host_networks: tuple[Network, ...] = ()  # networks served through the host port (agent.host_access)

    @cached_property
    def host_network_keys(self) -> frozenset[str]:
        return frozenset(n.key for n in self.host_networks)

    def host_access(self, net: Network) -> bool:
        """Whether *net*'s containers reach the host and the world through the host port."""
        return net.key in self.host_network_keys
    bgp: BgpView | None = None  # L3 mode: this host peers with the ToR over its router port

    @property
    def bonded(self) -> bool:
        return self.has_uplink and len(self.uplink_ports) > 1

    def uplink_output(self) -> Action:
        """Send to the uplink: its one port, or the first live member of the bond."""
        return Bundle(self.uplink_ports) if self.bonded else Output(self.uplink_ports[0])

    @property
    def aci(self) -> bool:
        return self.state.aci

    @property
    def routing(self) -> bool:
        return self.state.fwd_mode == "routing" and not self.aci  # in ACI mode the fabric routes

    @cached_property
    def _epg_segments(self) -> dict[str, tuple[str, Network]]:
        """ACI mode: EPG key -> (its network's key, the EPG's VLAN segment)."""
        out = {}
        for grp in self.state.groups:
            net = self.state.network(f"{grp.tenant}:{grp.network}")
            if net is not None and grp.vlan:
                out[grp.key] = (net.key, Network(grp.tenant, f"{grp.network}/{grp.name}", "vlan", net.subnet,
                                                 vlan=grp.vlan, gateway=net.gateway))
        return out

    @cached_property
    def networks(self) -> list[Network]:
        """The segments of this view: networks, or in ACI mode one per EPG."""
        if self.aci:
            return sorted((seg for _, seg in self._epg_segments.values()), key=lambda n: n.key)
        return sorted(self.state.networks, key=lambda n: n.key)

    def segment_of(self, ep: Endpoint) -> Network | None:
        """*ep*'s segment; None in ACI mode for an endpoint whose EPG (and so its VLAN) is not known yet."""
        if self.aci:
            found = self._epg_segments.get(f"{ep.tenant}:{ep.group}") if ep.group else None
            return found[1] if found else None
        return self.state.network(ep.network_key)  # DesiredState validates endpoint networks

    def network_of(self, ep: Endpoint) -> Network:
        """The segment of an endpoint of this view (local_endpoints/remote_endpoints all have one)."""
        net = self.segment_of(ep)
        assert net is not None
        return net

    def other_epg_segments(self, ep: Endpoint) -> list[Network]:
        """ACI mode: the segments of the other EPGs of *ep*'s network. Frames to *ep* from those go up
        to the fabric, which hairpins them with *ep*'s VLAN if a contract allows."""
        own = self.segment_of(ep)
        return [seg for net_key, seg in self._epg_segments.values() if net_key == ep.network_key and seg != own]

    def vrf(self, tenant: str) -> int:
        return self.vrf_ids[tenant]

    def epg(self, ep: Endpoint) -> int:
        return self.state.group_id(ep)

    @cached_property
    def local_endpoints(self) -> list[tuple[Endpoint, int]]:
        """Local endpoints that have a port, with their ofport, in a stable order."""
        return sorted(((ep, self.endpoint_ofports[ep.id]) for ep in self.state.endpoints
                       if ep.host == self.host and ep.id in self.endpoint_ofports and self.segment_of(ep)),
                      key=lambda x: x[1])

    @cached_property
    def remote_endpoints(self) -> list[Endpoint]:
        """Endpoints on other hosts that this host can reach (VXLAN needs the peer's VTEP)."""
        return sorted((ep for ep in self.state.endpoints if ep.host != self.host and self.reachable(ep)),
                      key=lambda e: e.id)

    def reachable(self, ep: Endpoint) -> bool:
        net = self.segment_of(ep)
        if net is None:
            return False
        if net.encap == "vxlan":
            return self.has_tunnel and bool(self.vtep_of(ep))
        return self.has_uplink

    def vtep_of(self, ep: Endpoint) -> str:
        host = self.state.host(ep.host)
        return host.vtep_ip if host else ""

    def all_endpoints(self) -> Iterator[Endpoint]:
        """Local endpoints with a port, then reachable remote ones."""
        yield from (ep for ep, _ in self.local_endpoints)
        yield from self.remote_endpoints

    @cached_property
    def _ports_by_network(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for ep, port in self.local_endpoints:
            out.setdefault(self.network_of(ep).key, []).append(port)
        return out

    @cached_property
    def _vteps_by_network(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {}
        for ep in self.remote_endpoints:
            out.setdefault(self.network_of(ep).key, set()).add(self.vtep_of(ep))
        return {k: sorted(v) for k, v in out.items()}

    def local_ports_of(self, net: Network) -> list[int]:
        return self._ports_by_network.get(net.key, [])

    def peer_vteps_of(self, net: Network) -> list[str]:
        """VTEPs of the other hosts with endpoints in *net*: the head-end replication list."""
        return self._vteps_by_network.get(net.key, [])
