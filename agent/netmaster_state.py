"""From netmaster's objects to the agent's DesiredState: a pure function, tested without processes.

The input is what the watch stream describes (``kind``, ``key``, ``object``, ``status``) plus this
host's endpoint records. The function is tolerant on purpose: the cache is built event by event, so a
snapshot taken between two events of one revision may show an endpoint before its group, or a rule
of a policy not yet seen; such references are dropped for this round (the next round has them)
instead of failing the whole state.

Where values come from:

- network: ``encap``, ``subnet``, ``gateway`` from the config; the VLAN tag is ``status.pktTag`` and
  the VNI ``status.externalPktTag`` (netmaster's allocations);
- endpoint group: ``status.endpointGroupId``, network and policies from the config;
- hosts and VTEPs: agent records (``kind: agent``, on a lease); an endpoint's own ``vtepIP`` stands in
  for a host whose agent record has expired, so a peer agent that is down for longer than its lease
  keeps receiving traffic for its (still plumbed) containers;
- a network's host access: its ``status.hostAccess`` (netmaster's decision: ``enabled``, ``disabled``
  or ``refused: <why>``), only ``enabled`` serves it;
- fwdMode, arpMode, pvtSubnet and the infrastructure type (``networkInfraType``): the ``global`` object;
- a group's QoS: the ``netprofile`` its ``netProfile`` names (units: ``contiv_api.netprofile``);
- a service: a ``serviceLB``'s VIP (``status.serviceVip``) and ports; its providers are the endpoints
  whose labels hold its selectors (``contiv_api.service_lb``, the rule netmaster's inspect uses too);
- BGP peering: the ``Bgp`` object named after this host, in routing fwdMode outside ACI mode (netmaster
  refuses Bgp objects in ACI mode; one left from before a mode change is ignored here);
- ACI mode: an EPG's VLAN is its ``status.aciVlan`` (the segment its endpoints use on the uplink), and
  its ``aci_synced`` the latest ``lastSync`` of the push state (``kind: aciSync``) of any app profile
  holding it, so the agent sees when the APIC received the EPG and re-announces its endpoints.

What netmaster does not list is completed by :func:`with_last_known` before the state is built: this
host's local records (the agent's truth about what runs here) and remote endpoints collected while
their host was cut off; docs/agent.md ("Partitions") explains why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.local_endpoints import LocalEndpoint
from agent.state import (
    BgpConfig,
    DesiredState,
    Endpoint,
    EndpointGroup,
    Host,
    KubeObject,
    Network,
    Policy,
    Qos,
    Rule,
    Service,
    ServicePort,
)
from contiv_api.k8s_netpol import KIND_NAMESPACE, KIND_POD, KIND_POLICY, spec_text
from contiv_api.netprofile import bandwidth_kbps
from contiv_api.service_lb import parse_port, provides

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class NmObject:
    """One object of netmaster's state, as the watch stream describes it."""

    kind: str
    key: str
    object: dict[str, Any]
    status: dict[str, Any] | None = None


def network_of(obj: NmObject) -> Network:
    cfg, status = obj.object, obj.status or {}
    encap = cfg.get("encap", "vxlan")
    return Network(tenant=cfg["tenantName"], name=cfg["networkName"], encap=encap, subnet=cfg["subnet"],
                   vlan=int(status.get("pktTag", 0)) if encap == "vlan" else 0,
                   vni=int(status.get("externalPktTag", 0)) if encap == "vxlan" else 0,
                   gateway=cfg.get("gateway", ""), host_access=host_access_of(cfg, status))


def host_access_of(cfg: dict[str, Any], status: dict[str, Any]) -> bool:
    """netmaster decides (``status.hostAccess``: enabled, disabled or refused: why); a record from
    before that status existed follows its config (default enabled)."""
    return (status.get("hostAccess") or cfg.get("hostAccess") or "enabled") == "enabled"


def qos_of(obj: NmObject) -> Qos:
    cfg = obj.object
    return Qos(profile=obj.key, rate_kbps=bandwidth_kbps(cfg.get("bandwidth") or ""),
               burst_kbits=int(cfg.get("burst") or 0) * 8, dscp=int(cfg.get("DSCP") or 0) or None)


def rule_of(cfg: dict[str, Any]) -> Rule:
    return Rule(rule_id=str(cfg["ruleId"]), direction=cfg["direction"], action=cfg["action"],
                priority=int(cfg.get("priority") or 1), from_group=cfg.get("fromEndpointGroup", ""),
                to_group=cfg.get("toEndpointGroup", ""), from_network=cfg.get("fromNetwork", ""),
                to_network=cfg.get("toNetwork", ""), from_ip=cfg.get("fromIpAddress", ""),
                to_ip=cfg.get("toIpAddress", ""), protocol=cfg.get("protocol", ""), port=int(cfg.get("port") or 0))


def service_of(obj: NmObject, endpoints: Iterable[dict[str, Any]]) -> Service:
    """A serviceLB with its providers among *endpoints* (records as netmaster stores them)."""
    cfg = obj.object
    ports = tuple(ServicePort(port, target, proto) for port, target, proto in map(parse_port, cfg.get("ports") or ()))
    return Service(cfg["tenantName"], cfg["serviceName"], (obj.status or {})["serviceVip"], ports,
                   tuple(sorted(ep["endpointID"] for ep in endpoints if provides(cfg, ep))),
                   int(cfg.get("affinityTimeout") or 0))


def kube_object_of(obj: NmObject) -> KubeObject:
    cfg = obj.object
    return KubeObject(obj.kind, cfg["tenantName"], cfg["namespace"], cfg.get("name", ""),
                      tuple(sorted((str(k), str(v)) for k, v in (cfg.get("labels") or {}).items())),
                      spec_text(cfg["spec"]) if obj.kind == KIND_POLICY else "")


def bgp_of(obj: NmObject) -> BgpConfig:
    """Contiv's Bgp fields; ``neighbor`` may list several neighbours, comma-separated."""
    cfg = obj.object
    neighbors = tuple(n.strip() for n in (cfg.get("neighbor") or "").split(",") if n.strip())
    return BgpConfig(router_ip=cfg["routerip"], asn=int(cfg["as"]), neighbor_asn=int(cfg.get("neighbor-as") or 0),
                     neighbors=neighbors, announce_subnets=cfg.get("announce-subnets") == "yes")


def build_state(objects: Iterable[NmObject], local: Mapping[str, LocalEndpoint], host_label: str,
                revision: int) -> DesiredState:
    """The desired state of host *host_label* for netmaster's *objects* and its *local* records."""
    by_kind: dict[str, list[NmObject]] = {}
    for obj in objects:
        if obj.object is not None:
            by_kind.setdefault(obj.kind, []).append(obj)

    fwd_mode, infra, arp_mode, pvt_subnet = "bridge", "default", "proxy", "172.19.0.0/16"
    for obj in by_kind.get("global", ()):
        pvt_subnet = obj.object.get("pvtSubnet") or pvt_subnet
        fwd_mode = obj.object.get("fwdMode") or "bridge"
        arp_mode = "flood" if obj.object.get("arpMode") == "flood" else "proxy"
        infra = "aci" if obj.object.get("networkInfraType") == "aci" else "default"
    synced = _aci_synced_groups(by_kind) if infra == "aci" else {}

    networks = {n.key: n for n in _valid(network_of, by_kind.get("network", ()))}
    profiles = {q.profile: q for q in _valid(qos_of, by_kind.get("netprofile", ()))}
    groups = {}
    for obj in by_kind.get("endpointGroup", ()):
        cfg, gid = obj.object, int((obj.status or {}).get("endpointGroupId", 0))
        if gid > 0:
            status = obj.status or {}
            vlan = int(status.get("aciVlan") or status.get("pktTag") or 0) if infra == "aci" else 0
            grp = EndpointGroup(cfg["tenantName"], cfg["groupName"], gid, cfg.get("networkName", ""),
                                tuple(cfg.get("policies") or ()), vlan=vlan, aci_synced=synced.get(obj.key, 0.0),
                                qos=profiles.get(f"{cfg['tenantName']}:{cfg.get('netProfile') or ''}"))
            groups[grp.key] = grp

    rules: dict[str, list[Rule]] = {}
    for obj in by_kind.get("rule", ()):
        cfg = obj.object
        for rule in _valid(rule_of, [cfg]):
            rules.setdefault(f"{cfg['tenantName']}:{cfg['policyName']}", []).append(rule)
    policies = tuple(Policy(o.object["tenantName"], o.object["policyName"],
                            tuple(sorted(rules.get(o.key, ()), key=lambda r: r.rule_id)))
                     for o in sorted(by_kind.get("policy", ()), key=lambda o: o.key))

    hosts = {o.key: Host(o.key, o.object.get("vtepIP", "")) for o in by_kind.get("agent", ())}
    endpoints = []
    for obj in sorted(by_kind.get("endpoint", ()), key=lambda o: o.key):
        ep = _endpoint(obj.object, local, host_label, networks, groups)
        if ep is None:
            continue
        endpoints.append(ep)
        vtep = obj.object.get("vtepIP", "")
        if ep.host and vtep and ep.host not in hosts:
            hosts[ep.host] = Host(ep.host, vtep)

    ids = {e.id for e in endpoints}
    records = [o.object for o in by_kind.get("endpoint", ()) if o.object.get("endpointID") in ids]
    services = tuple(_valid(lambda o: service_of(o, records),
                            sorted(by_kind.get("serviceLB", ()), key=lambda o: o.key)))
    kube = _valid(kube_object_of, sorted((o for kind in (KIND_POLICY, KIND_NAMESPACE, KIND_POD)
                                          for o in by_kind.get(kind, ())), key=lambda o: (o.kind, o.key)))
    bgp = None
    if fwd_mode == "routing" and infra != "aci":
        mine = [o for o in by_kind.get("Bgp", ()) if o.key == host_label]
        bgp = next(iter(_valid(bgp_of, mine)), None)
    return DesiredState(fwd_mode=fwd_mode, infra=infra, arp_mode=arp_mode, services=services, kube=tuple(kube), bgp=bgp,
                        pvt_subnet=pvt_subnet,
                        networks=tuple(sorted(networks.values(), key=lambda n: n.key)),
                        groups=tuple(sorted(groups.values(), key=lambda g: g.key)), policies=policies,
                        endpoints=tuple(endpoints), hosts=tuple(sorted(hosts.values(), key=lambda h: h.name)),
                        revision=revision)


def with_last_known(objects: Iterable[NmObject], local: Mapping[str, LocalEndpoint], retained: Iterable[NmObject],
                    host_label: str) -> tuple[list[NmObject], dict[str, str]]:
    """netmaster's *objects* completed with what this host keeps although netmaster does not list it.

    - Every *local* record is an endpoint of this host, listed or not: a container that runs here
      keeps its port and flows whatever netmaster says (after a partition, netmaster's endpoint GC
      may have collected it; the agent re-claims it, see ``agent.reclaim``). A listed endpoint that
      holds the same address in the same network (the address went to someone else meanwhile) or the
      same id on another host is left out of this host's state: here, the local container wins.
    - *retained* remote endpoints (deleted while their host's agent record was absent) stay until an
      endpoint netmaster lists takes their id or their address.

    Returns the objects and, for each local record that netmaster does not list as this host's, the
    id of the listed endpoint holding its address or id ('' when none: a plain re-claim candidate)."""
    out = [o for o in objects]
    listed = {o.key: o for o in out if o.kind == "endpoint"}
    unlisted: dict[str, str] = {}
    dropped: set[str] = set()
    for ep_id, rec in sorted(local.items()):
        seen = listed.get(ep_id)
        if seen is not None and seen.object.get("host") == host_label:
            continue
        holder = ep_id if seen is not None else ""
        for other in listed.values():
            cfg = other.object
            if other.key != ep_id and rec.ip and (cfg.get("tenantName", "default"), cfg.get("networkName"),
                                                  cfg.get("ipAddress")) == (rec.tenant, rec.network, rec.ip):
                holder = other.key
        unlisted[ep_id] = holder
        dropped |= {ep_id, holder} - {""}
    out = [o for o in out if o.kind != "endpoint" or o.key not in dropped]
    out += [NmObject("endpoint", ep_id, _local_record(local[ep_id], host_label)) for ep_id in sorted(unlisted)]
    held = {_address(o.object) for o in out if o.kind == "endpoint"}
    ids = {o.key for o in out if o.kind == "endpoint"}
    out += [r for r in retained if r.key not in ids and _address(r.object) not in held]
    return out, unlisted


def _address(rec: Mapping[str, Any]) -> tuple[str, str, str]:
    return rec.get("tenantName", "default"), rec.get("networkName", ""), rec.get("ipAddress", "")


def _local_record(rec: LocalEndpoint, host_label: str) -> dict[str, Any]:
    """The endpoint record netmaster would hold for a local record (as far as the state needs it)."""
    return {"endpointID": rec.endpoint_id, "tenantName": rec.tenant, "networkName": rec.network,
            "groupName": rec.group, "host": host_label, "ipAddress": rec.ip, "macAddress": rec.mac,
            "labels": dict(rec.labels)}  # a pod's identity, so its NetworkPolicies hold through a partition


def _aci_synced_groups(by_kind: Mapping[str, list[NmObject]]) -> dict[str, float]:
    """EPG key -> the latest time an app profile holding the EPG was synced to the APIC."""
    last_sync = {o.key: float(o.object.get("lastSync") or 0) for o in by_kind.get("aciSync", ())
                 if o.object.get("state") == "synced"}
    out: dict[str, float] = {}
    for obj in by_kind.get("appProfile", ()):
        when = last_sync.get(obj.key, 0.0)
        tenant = obj.object.get("tenantName", "")
        for group in obj.object.get("endpointGroups") or ():
            key = f"{tenant}:{group}"
            out[key] = max(out.get(key, 0.0), when)
    return out


def _endpoint(rec: dict[str, Any], local: Mapping[str, LocalEndpoint], host_label: str,
              networks: Mapping[str, Network], groups: Mapping[str, EndpointGroup]) -> Endpoint | None:
    tenant, network = rec.get("tenantName", "default"), rec.get("networkName", "")
    if f"{tenant}:{network}" not in networks or not rec.get("ipAddress"):
        return None
    if not rec.get("macAddress"):  # netmaster assigns every MAC (unique across tenants); never derive one here
        LOG.warning("ignoring endpoint %s: netmaster's record has no MAC address", rec.get("endpointID"))
        return None
    group = rec.get("groupName", "")
    if group and f"{tenant}:{group}" not in groups:
        group = ""
    host = rec.get("host", "")
    mine = local.get(rec["endpointID"]) if host == host_label else None
    return Endpoint(id=rec["endpointID"], tenant=tenant, network=network, ip=rec["ipAddress"], host=host,
                    mac=rec.get("macAddress", ""), group=group,
                    netns=(mine.netns or "") if mine else "", ifname=mine.ifname if mine else "eth0",
                    runtime_moves=mine is not None and mine.netns is None, name=rec.get("containerName", ""),
                    pod=_pod(rec))


def _pod(rec: Mapping[str, Any]) -> str:
    """A Kubernetes pod's "namespace/name" from the labels the CNI plugin recorded, else ""."""
    labels = rec.get("labels") or {}
    namespace, name = labels.get("K8S_POD_NAMESPACE"), labels.get("K8S_POD_NAME")
    return f"{namespace}/{name}" if namespace and name else ""


def _valid(make: Any, items: Iterable[Any]) -> list[Any]:
    """Objects that convert; a malformed one is logged and skipped rather than failing the state."""
    out = []
    for item in items:
        try:
            out.append(make(item))
        except (KeyError, ValueError, TypeError) as exc:
            LOG.warning("ignoring %s: %s", getattr(item, "key", item), exc)
    return out
