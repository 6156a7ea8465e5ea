"""A typed client for what the agent asks of gobgpd, over its gRPC API.

gobgpd keeps the BGP sessions and the RIB; the agent only configures it (global AS and router id,
neighbours), adds and deletes its own paths (local endpoints as /32), and reads the best paths
(learned routes, for the flows) and the neighbours' state (for inspect). Everything here is a thin
mapping between the generated protobuf messages (``agent.bgp.stubs``) and small frozen dataclasses,
so the rest of the agent never touches protobuf.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage

from agent.bgp.stubs import GobgpApi, load

CALL_TIMEOUT = 5.0
SESSION_STATES = {0: "unknown", 1: "idle", 2: "connect", 3: "active", 4: "opensent", 5: "openconfirm",
                  6: "established"}


@dataclass(frozen=True)
class GlobalConfig:
    asn: int
    router_id: str
    listen_address: str
    listen_port: int = 179
    multipath: bool = True  # gobgpd's use-multiple-paths (ECMP: every equal-cost path, docs/bgp.md)


@dataclass(frozen=True)
class PeerConfig:
    address: str
    asn: int
    local_address: str  # the router IP: sessions leave from the router port
    hold_time: int = 9  # seconds; keepalive a third of it (a dead peer's routes go within this)


@dataclass(frozen=True)
class PeerStatus:
    address: str
    asn: int
    state: str  # "established", "active", "idle", ...
    admin: str  # "up" / "down"
    up_since: float  # when the session came up, epoch seconds (0 when not established)
    received: int  # prefixes received from the peer
    accepted: int
    advertised: int
    flops: int

    @property
    def established(self) -> bool:
        return self.state == "established"


@dataclass(frozen=True)
class Route:
    """A best path of the global RIB: a prefix, its next hop, and who it came from ('' for local).
    With multipath a prefix has one per equal-cost path (one per next hop)."""

    prefix: str
    next_hop: str
    peer: str
    as_path: tuple[int, ...] = ()

    @property
    def learned(self) -> bool:
        return bool(self.peer)


class GobgpClient:
    def __init__(self, target: str, api: GobgpApi | None = None) -> None:
        self.api = api or load()
        self.target = target
        self.channel = grpc.insecure_channel(target)
        self.stub = self.api.grpc.GobgpApiStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def ready(self, timeout: float) -> bool:
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return False
        return True

    # -- global ----------------------------------------------------------------------------------

    def get_global(self) -> GlobalConfig | None:
        """The running global configuration; None when BGP is not started."""
        try:
            resp = self.stub.GetBgp(self.api.pb.GetBgpRequest(), timeout=CALL_TIMEOUT)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNKNOWN) \
                    and "not started" in (exc.details() or "").lower():
                return None
            raise
        g = getattr(resp, "global")  # a Python keyword: no attribute access
        if not g.asn:
            return None
        addr = g.listen_addresses[0] if g.listen_addresses else ""
        return GlobalConfig(g.asn, g.router_id, addr, g.listen_port, g.use_multiple_paths)

    def start(self, cfg: GlobalConfig) -> None:
        pb = self.api.pb
        # use_multiple_paths: the best-path events then also fire when an equal-cost path comes or goes
        # (without it a second ToR's path, never the best, would change nothing the agent hears of)
        g = pb.Global(asn=cfg.asn, router_id=cfg.router_id, listen_port=cfg.listen_port,
                      listen_addresses=[cfg.listen_address], use_multiple_paths=cfg.multipath)
        self.stub.StartBgp(pb.StartBgpRequest(**{"global": g}), timeout=CALL_TIMEOUT)

    def stop(self) -> None:
        self.stub.StopBgp(self.api.pb.StopBgpRequest(), timeout=CALL_TIMEOUT)

    # -- peers -----------------------------------------------------------------------------------

    def add_peer(self, peer: PeerConfig) -> None:
        pb = self.api.pb
        family = pb.Family(afi=pb.Family.AFI_IP, safi=pb.Family.SAFI_UNICAST)
        keepalive = max(1, peer.hold_time // 3)
        msg = pb.Peer(conf=pb.PeerConf(neighbor_address=peer.address, peer_asn=peer.asn),
                      transport=pb.Transport(local_address=peer.local_address),
                      timers=pb.Timers(config=pb.TimersConfig(hold_time=peer.hold_time, keepalive_interval=keepalive,
                                                              connect_retry=1)),
                      afi_safis=[pb.AfiSafi(config=pb.AfiSafiConfig(family=family, enabled=True))])
        self.stub.AddPeer(pb.AddPeerRequest(peer=msg), timeout=CALL_TIMEOUT)

    def delete_peer(self, address: str) -> None:
        self.stub.DeletePeer(self.api.pb.DeletePeerRequest(address=address), timeout=CALL_TIMEOUT)

    def peer_configs(self) -> dict[str, PeerConfig]:
        out = {}
        for resp in self.stub.ListPeer(self.api.pb.ListPeerRequest(), timeout=CALL_TIMEOUT):
            p = resp.peer
            out[p.conf.neighbor_address] = PeerConfig(p.conf.neighbor_address, p.conf.peer_asn,
                                                      p.transport.local_address, int(p.timers.config.hold_time))
        return out

    def peers(self) -> list[PeerStatus]:
        out = []
        for resp in self.stub.ListPeer(self.api.pb.ListPeerRequest(), timeout=CALL_TIMEOUT):
            p = resp.peer
            state = SESSION_STATES.get(p.state.session_state, "unknown")
            up = p.timers.state.uptime.seconds if state == "established" else 0
            received = accepted = advertised = 0
            for afi in p.afi_safis:
                received += afi.state.received
                accepted += afi.state.accepted
                advertised += afi.state.advertised
            out.append(PeerStatus(p.conf.neighbor_address, p.conf.peer_asn, state,
                                  "down" if p.state.admin_state == 1 else "up", float(up), received, accepted,
                                  advertised, p.state.flops))
        return sorted(out, key=lambda s: s.address)

    # -- paths -----------------------------------------------------------------------------------

    def _path(self, prefix: str, next_hop: str) -> Any:
        pb, attrs = self.api.pb, self.api.attrs
        net = ipaddress.IPv4Network(prefix)
        nlri, origin, nh = AnyMessage(), AnyMessage(), AnyMessage()
        nlri.Pack(attrs.IPAddressPrefix(prefix_len=net.prefixlen, prefix=str(net.network_address)))
        origin.Pack(attrs.OriginAttribute(origin=0))  # IGP
        nh.Pack(attrs.NextHopAttribute(next_hop=next_hop))
        return pb.Path(nlri=nlri, pattrs=[origin, nh],
                       family=pb.Family(afi=pb.Family.AFI_IP, safi=pb.Family.SAFI_UNICAST))

    def add_path(self, prefix: str, next_hop: str) -> None:
        pb = self.api.pb
        self.stub.AddPath(pb.AddPathRequest(table_type=pb.GLOBAL, path=self._path(prefix, next_hop)),
                          timeout=CALL_TIMEOUT)

    def delete_path(self, prefix: str, next_hop: str) -> None:
        pb = self.api.pb
        self.stub.DeletePath(pb.DeletePathRequest(table_type=pb.GLOBAL, path=self._path(prefix, next_hop)),
                             timeout=CALL_TIMEOUT)

    def routes(self) -> list[Route]:
        """Every best path of the global IPv4 RIB (local ones included, ``peer`` ''), and with them the
        paths of equal cost to the best (ECMP: the same prefix through another next hop)."""
        pb = self.api.pb
        req = pb.ListPathRequest(table_type=pb.GLOBAL,
                                 family=pb.Family(afi=pb.Family.AFI_IP, safi=pb.Family.SAFI_UNICAST))
        out = []
        for resp in self.stub.ListPath(req, timeout=CALL_TIMEOUT):
            out += [self.route_of(p) for p in multipath(resp.destination.paths, self.api.attrs)]
        return sorted(out, key=lambda r: (ipaddress.IPv4Network(r.prefix), r.next_hop))

    def watch_best(self) -> Iterator[list[Any]]:
        """A stream of best-path changes (the current table first): lists of protobuf Paths. Blocks;
        ends when the channel closes."""
        pb = self.api.pb
        flt = pb.WatchEventRequest.Table.Filter(type=pb.WatchEventRequest.Table.Filter.BEST, init=True)
        req = pb.WatchEventRequest(table=pb.WatchEventRequest.Table(filters=[flt]),
                                   peer=pb.WatchEventRequest.Peer())
        for resp in self.stub.WatchEvent(req):
            if resp.HasField("table"):
                yield list(resp.table.paths)

    def route_of(self, path: Any) -> Route:
        """The Route of a protobuf Path."""
        attrs = self.api.attrs
        prefix = attrs.IPAddressPrefix()
        path.nlri.Unpack(prefix)
        ap = _attr(path, attrs.AsPathAttribute)
        as_path = tuple(n for seg in ap.segments for n in seg.numbers) if ap is not None else ()
        peer = "" if _is_local(path) else path.neighbor_ip
        next_hop = _next_hop(path, attrs)
        return Route(f"{prefix.prefix}/{prefix.prefix_len}", next_hop, peer, as_path)


def multipath(paths: Sequence[Any], attrs: Any) -> list[Any]:
    """A destination's best path and the paths as good as it, by gobgpd's own multipath rule
    (``table.getMultiBestPath``: ``Path.Compare`` == 0, i.e. same locality, eBGP/iBGP kind, local
    preference, AS path length, origin and MED; next hop reachable), one per next hop.

    gobgpd lists a destination's paths best first but with multipath on flags only the first as best
    (``ListPath`` marks a later one only if it equals its predecessor including its source, which two
    peers' paths never do), so the set is worked out here. A listing taken while gobgpd re-ranks may
    flag none: the first is still the one in use."""
    live = [p for p in paths if not p.is_withdraw and not p.is_nexthop_invalid]
    if not live:
        return []
    best = next((p for p in live if p.best), live[0])
    rank = _rank(best, attrs)
    out, hops = [], set()
    for p in [best, *live]:
        hop = _next_hop(p, attrs)
        if hop not in hops and _rank(p, attrs) == rank:
            hops.add(hop)
            out.append(p)
    return out


def _attr(path: Any, message: Any) -> Any:
    for any_attr in path.pattrs:
        if any_attr.Is(message.DESCRIPTOR):
            found = message()
            any_attr.Unpack(found)
            return found
    return None


def _is_local(path: Any) -> bool:
    """A path this speaker originated (gobgpd lists its neighbor as "" or "<nil>")."""
    return path.neighbor_ip in ("", "<nil>")


def _next_hop(path: Any, attrs: Any) -> str:
    nh = _attr(path, attrs.NextHopAttribute)
    return str(nh.next_hop) if nh is not None else ""


def _rank(path: Any, attrs: Any) -> tuple[int, ...]:
    """What gobgpd's ``Path.Compare`` weighs, in its order (equal tuples: equal cost)."""
    local = _is_local(path)
    pref = _attr(path, attrs.LocalPrefAttribute)
    as_path = _attr(path, attrs.AsPathAttribute)
    origin = _attr(path, attrs.OriginAttribute)
    med = _attr(path, attrs.MultiExitDiscAttribute)
    return (int(local), int(path.is_from_external), pref.local_pref if pref else 100,
            -sum(len(seg.numbers) for seg in as_path.segments) if as_path else 0,
            -(origin.origin if origin else 0), -(med.med if med else 0))
