"""The desired state an agent programs, in Contiv's vocabulary.

This is the contract between whatever feeds the agent (today a JSON file or a test, later netmaster's
list+watch stream) and the reconciler. It holds *intent*, never datapath details: networks with their
encapsulation and tags, endpoint groups with their numeric ids, endpoints wherever they live (the host
says whether they are local), policies with Contiv rules, the hosts' VTEP addresses and the global
forwarding mode. Everything is a frozen dataclass so that two snapshots can be compared cheaply and a
snapshot can be shared between threads.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from contiv_api.mac import first_free
from contiv_api.netprofile import burst_kbits

FwdMode = Literal["bridge", "routing"]
InfraType = Literal["default", "aci"]
Encap = Literal["vlan", "vxlan"]
Direction = Literal["in", "out"]
Verdict = Literal["allow", "deny"]
ArpMode = Literal["proxy", "flood"]

PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "igmp": 2}


@dataclass(frozen=True)
class Network:
    tenant: str
    name: str
    encap: Encap
    subnet: str  # "10.1.1.0/24"
    vlan: int = 0  # 802.1Q tag on the trunk (vlan encap)
    vni: int = 0  # VXLAN network identifier (vxlan encap)
    gateway: str = ""
    # Host access and external SNAT (docs/host-access.md): the host reaches the network's containers
    # and routes (and masquerades) what they send to addresses outside the cluster. Off unless asked
    # for here; netmaster's networks have it on unless their ``hostAccess`` is "disabled".
    host_access: bool = False

    def __post_init__(self) -> None:
        if self.encap not in ("vlan", "vxlan"):
            raise ValueError(f"network {self.key}: encap must be vlan or vxlan")
        if self.encap == "vlan" and not 1 <= self.vlan <= 4094:
            raise ValueError(f"network {self.key}: vlan tag {self.vlan} out of 1-4094")
        if self.encap == "vxlan" and not 1 <= self.vni < 1 << 24:
            raise ValueError(f"network {self.key}: vni {self.vni} out of range")
        ipaddress.IPv4Network(self.subnet, strict=False)

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.name}"

    @property
    def segment(self) -> int:
        """Host-independent number for this network, carried in a register: the VLAN tag, or the VNI
        with bit 24 set. Deterministic, so a restarted agent produces the same flows."""
        return self.vlan if self.encap == "vlan" else (1 << 24) | self.vni

    @property
    def cidr(self) -> str:
        return str(ipaddress.IPv4Network(self.subnet, strict=False))


@dataclass(frozen=True)
class Qos:
    """A netprofile as the datapath applies it: a rate limit on what each endpoint of the group sends
    (``rate_kbps``, 0 for none; ``burst_kbits``, 0 for the default) and the DSCP its IPv4 packets
    carry (``dscp``, None to leave it as the sender set it)."""

    profile: str = ""
    rate_kbps: int = 0
    burst_kbits: int = 0
    dscp: int | None = None

    def __post_init__(self) -> None:
        if self.rate_kbps < 0 or self.burst_kbits < 0:
            raise ValueError(f"netprofile {self.profile}: rate and burst must not be negative")
        if self.dscp is not None and not 0 <= self.dscp <= 63:
            raise ValueError(f"netprofile {self.profile}: DSCP {self.dscp} out of 0-63")

    @property
    def burst(self) -> int:
        """The meter's burst in kbits: the profile's, or the default for the rate (contiv_api.netprofile)."""
        return self.burst_kbits or burst_kbits(0, self.rate_kbps)


@dataclass(frozen=True)
class EndpointGroup:
    tenant: str
    name: str
    id: int  # netmaster's endpointGroupId: global, 1..65535
    network: str = ""
    policies: tuple[str, ...] = ()
    # ACI mode: the EPG's own VLAN on the uplink (netmaster's status.aciVlan), and when an app profile
    # holding this EPG was last pushed to the APIC (the agent re-announces the EPG's endpoints then).
    vlan: int = 0
    aci_synced: float = 0.0
    qos: Qos | None = None  # the group's netprofile, applied on its local endpoints' ports

    def __post_init__(self) -> None:
        if not 0 <= self.vlan <= 4094:
            raise ValueError(f"endpoint group {self.key}: vlan tag {self.vlan} out of 1-4094")

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.name}"


@dataclass(frozen=True)
class Endpoint:
    id: str
    tenant: str
    network: str  # network name within the tenant
    ip: str
    host: str
    mac: str = ""
    group: str = ""  # EPG name within the tenant, "" for none
    netns: str = ""  # local endpoints: the container's network namespace (name under /run/netns, or a path)
    ifname: str = "eth0"
    # Local endpoints without a netns: plumb the veth anyway and leave its container end in the agent's
    # namespace, for a runtime that moves and configures it itself (Docker's remote driver).
    runtime_moves: bool = False
    name: str = ""  # the container's name (netmaster's containerName), for service discovery
    pod: str = ""  # Kubernetes pods: "namespace/name" (CNI_ARGS K8S_POD_NAMESPACE, K8S_POD_NAME)

    def __post_init__(self) -> None:
        ipaddress.IPv4Address(self.ip)

    @property
    def network_key(self) -> str:
        return f"{self.tenant}:{self.network}"


@dataclass(frozen=True)
class Rule:
    """A Contiv rule (contivmodel rule.json): exactly the user's fields, single-valued."""

    rule_id: str
    direction: Direction
    action: Verdict
    priority: int = 1
    from_group: str = ""
    to_group: str = ""
    from_network: str = ""
    to_network: str = ""
    from_ip: str = ""
    to_ip: str = ""
    protocol: str = ""  # tcp | udp | icmp | number | "" (any)
    port: int = 0

    def __post_init__(self) -> None:
        if self.direction not in ("in", "out"):
            raise ValueError(f"rule {self.rule_id}: direction must be in or out")
        if self.action not in ("allow", "deny"):
            raise ValueError(f"rule {self.rule_id}: action must be allow or deny")
        if not 1 <= self.priority <= 100:
            raise ValueError(f"rule {self.rule_id}: priority must be 1-100")
        if self.port and self.protocol not in ("tcp", "udp"):
            raise ValueError(f"rule {self.rule_id}: a port needs protocol tcp or udp")

    @property
    def protocol_number(self) -> int | None:
        if not self.protocol:
            return None
        return PROTOCOLS.get(self.protocol) or int(self.protocol)


@dataclass(frozen=True)
class Policy:
    tenant: str
    name: str
    rules: tuple[Rule, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.name}"


@dataclass(frozen=True)
class ServicePort:
    """One port of a service: the VIP's *port* goes to each provider's *target* port."""

    port: int
    target: int
    protocol: Literal["tcp", "udp"] = "tcp"

    def __post_init__(self) -> None:
        if self.protocol not in ("tcp", "udp"):
            raise ValueError(f"service port {self.port}: protocol must be tcp or udp")
        if not (0 < self.port < 65536 and 0 < self.target < 65536):
            raise ValueError(f"service port {self.port}:{self.target}: out of 1-65535")


@dataclass(frozen=True)
class Service:
    """A load-balanced service (netmaster's serviceLB): a VIP of the tenant, its ports, and the
    endpoints that provide it (ids, resolved from labels by whoever feeds the state). *affinity* is
    the client-IP affinity timeout in seconds (0: every new connection is balanced on its own)."""

    tenant: str
    name: str
    vip: str
    ports: tuple[ServicePort, ...] = ()
    providers: tuple[str, ...] = ()
    affinity: int = 0

    def __post_init__(self) -> None:
        ipaddress.IPv4Address(self.vip)
        if not 0 <= self.affinity <= 65535:
            raise ValueError(f"service {self.key}: affinity timeout out of 0-65535 s")

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.name}"


@dataclass(frozen=True)
class KubeObject:
    """A Kubernetes object netmaster holds for a tenant (contiv_api.k8s_netpol): a NetworkPolicy (its
    spec as canonical JSON text), or a namespace's or a pod's labels."""

    kind: str  # k8sNetworkPolicy | k8sNamespace | k8sPod
    tenant: str
    namespace: str
    name: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    spec: str = ""


@dataclass(frozen=True)
class Host:
    name: str
    vtep_ip: str = ""


@dataclass(frozen=True)
class BgpConfig:
    """This host's BGP peering: netmaster's ``Bgp`` object named after the host (Contiv's fields
    ``routerip``, ``as``, ``neighbor-as``, ``neighbor``; several neighbours, comma-separated, all of
    the one ``neighbor-as``). Only routing fwdMode outside ACI mode carries one (docs/bgp.md)."""

    router_ip: str  # "50.1.1.1/24": the router port's address and prefix on the uplink segment
    asn: int
    neighbor_asn: int
    neighbors: tuple[str, ...] = ()
    announce_subnets: bool = False  # ``announce-subnets``: also each network's subnet, while it has a local endpoint

    def __post_init__(self) -> None:
        iface = ipaddress.IPv4Interface(self.router_ip)
        if "/" not in self.router_ip:
            raise ValueError(f"bgp: routerip {self.router_ip} needs a prefix length")
        for asn in (self.asn, self.neighbor_asn):
            if not 1 <= asn <= 0xFFFFFFFF:
                raise ValueError(f"bgp: AS {asn} out of 1-4294967295")
        for n in self.neighbors:
            if ipaddress.IPv4Address(n) == iface.ip:
                raise ValueError(f"bgp: neighbor {n} is the router IP")

    @property
    def address(self) -> str:
        """The router IP without its prefix length (the BGP router id and next hop)."""
        return str(ipaddress.IPv4Interface(self.router_ip).ip)


@dataclass(frozen=True)
class DesiredState:
    fwd_mode: FwdMode = "bridge"
    # "aci": the fabric classifies by EPG VLAN and enforces policy (see docs/agent.md, ACI mode)
    infra: InfraType = "default"
    # "proxy": the switch answers ARP for known endpoints; "flood": ARP is flooded within the segment
    # and the target answers itself (docs/pipeline.md, ARP_RESPONDER)
    arp_mode: ArpMode = "proxy"
    # netmaster's global pvtSubnet: the host-access port of every host takes its last address
    pvt_subnet: str = "172.19.0.0/16"
    networks: tuple[Network, ...] = ()
    groups: tuple[EndpointGroup, ...] = ()
    policies: tuple[Policy, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    hosts: tuple[Host, ...] = ()
    services: tuple[Service, ...] = ()
    kube: tuple[KubeObject, ...] = ()  # NetworkPolicies and the labels they select on
    revision: int = 0  # the feeder's revision, echoed by the inspect API once applied
    bgp: BgpConfig | None = None  # this host's BGP peering (routing fwdMode; docs/bgp.md)
    _index: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.fwd_mode not in ("bridge", "routing"):
            raise ValueError("fwd_mode must be bridge or routing")
        if self.infra not in ("default", "aci"):
            raise ValueError("infra must be default or aci")
        if self.arp_mode not in ("proxy", "flood"):
            raise ValueError("arp_mode must be proxy or flood")
        ipaddress.IPv4Network(self.pvt_subnet)
        if any(not ep.mac for ep in self.endpoints):
            object.__setattr__(self, "endpoints", _with_macs(self.endpoints))
        idx = self._index
        idx["net"] = {n.key: n for n in self.networks}
        idx["grp"] = {g.key: g for g in self.groups}
        idx["pol"] = {p.key: p for p in self.policies}
        idx["host"] = {h.name: h for h in self.hosts}
        idx["ep"] = {e.id: e for e in self.endpoints}
        for ep in self.endpoints:
            if ep.network_key not in idx["net"]:
                raise ValueError(f"endpoint {ep.id}: unknown network {ep.network_key}")
            if ep.group and f"{ep.tenant}:{ep.group}" not in idx["grp"]:
                raise ValueError(f"endpoint {ep.id}: unknown group {ep.group}")

    def network(self, key: str) -> Network | None:
        return self._index["net"].get(key)

    def group(self, tenant: str, name: str) -> EndpointGroup | None:
        return self._index["grp"].get(f"{tenant}:{name}") if name else None

    def policy(self, tenant: str, name: str) -> Policy | None:
        return self._index["pol"].get(f"{tenant}:{name}")

    def host(self, name: str) -> Host | None:
        return self._index["host"].get(name)

    def endpoint(self, ep_id: str) -> Endpoint | None:
        return self._index["ep"].get(ep_id)

    def group_id(self, ep: Endpoint) -> int:
        grp = self.group(ep.tenant, ep.group)
        return grp.id if grp else 0

    @property
    def aci(self) -> bool:
        return self.infra == "aci"

    @property
    def tenants(self) -> list[str]:
        return sorted({n.tenant for n in self.networks})

    # -- JSON -------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if not f.name.startswith("_")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DesiredState:
        return cls(
            fwd_mode=data.get("fwd_mode", "bridge"),
            infra=data.get("infra", "default"),
            arp_mode=data.get("arp_mode", "proxy"),
            pvt_subnet=data.get("pvt_subnet", "172.19.0.0/16"),
            networks=tuple(Network(**n) for n in data.get("networks", ())),
            groups=tuple(_group_from_dict(g) for g in data.get("groups", ())),
            policies=tuple(Policy(p["tenant"], p["name"], tuple(Rule(**r) for r in p.get("rules", ())))
                           for p in data.get("policies", ())),
            endpoints=tuple(Endpoint(**e) for e in data.get("endpoints", ())),
            hosts=tuple(Host(**h) for h in data.get("hosts", ())),
            services=tuple(_service_from_dict(s) for s in data.get("services", ())),
            kube=tuple(KubeObject(**{**k, "labels": tuple(tuple(x) for x in k.get("labels", ()))})
                       for k in data.get("kube", ())),
            revision=int(data.get("revision", 0)),
            bgp=BgpConfig(**{**data["bgp"], "neighbors": tuple(data["bgp"].get("neighbors", ()))})
            if data.get("bgp") else None,
        )

    @classmethod
    def load(cls, path: Path) -> DesiredState:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def save(self, path: Path) -> None:
        """Write atomically (rename), so a watcher never reads half a file."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(path)


def _group_from_dict(data: dict[str, Any]) -> EndpointGroup:
    qos = data.get("qos")
    return EndpointGroup(**{**data, "policies": tuple(data.get("policies", ())),
                            "qos": Qos(**qos) if qos else None})


def _service_from_dict(data: dict[str, Any]) -> Service:
    return Service(**{**data, "ports": tuple(ServicePort(**p) for p in data.get("ports", ())),
                      "providers": tuple(data.get("providers", ()))})


def _with_macs(endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    """Endpoints of a standalone state (a file, a test) that give no MAC get one by netmaster's rule
    (contiv_api.mac), in order, so that two with the same address in two tenants differ. Endpoints from
    netmaster always carry netmaster's MAC (agent.netmaster_state drops one without), so this never
    second-guesses it."""
    taken = {ep.mac for ep in endpoints if ep.mac}
    out = []
    for ep in endpoints:
        if not ep.mac:
            ep = dataclasses.replace(ep, mac=first_free(ep.ip, taken))
            taken.add(ep.mac)
        out.append(ep)
    return tuple(out)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(v) for k, v in asdict(value).items()}
    return value
