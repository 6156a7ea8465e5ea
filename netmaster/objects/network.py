"""Networks: a subnet with its VLAN or VXLAN id, and the IPAM record endpoints allocate from."""

from __future__ import annotations

import ipaddress
from typing import Any

from netmaster.alloc import tags
from netmaster.alloc.ipam import NetworkIpam, Subnet
from netmaster.errors import ConflictError, InvalidError
from netmaster.model.catalog import NETWORK
from netmaster.objects.base import (
    Handler,
    Record,
    get_record,
    global_settings,
    list_records,
    require,
)
from netmaster.objects.endpoint_list import endpoint_oper, endpoints_of
from netmaster.store import keys
from netmaster.store.txn import Txn


async def load_ipam(txn: Txn, network: Record) -> NetworkIpam:
    subnet = Subnet.parse(network.config["subnet"])
    record = await txn.get(keys.ipam(network.key))
    return NetworkIpam.load(subnet, record or {})


def store_ipam(txn: Txn, network_key: str, ipam: NetworkIpam) -> None:
    txn.put(keys.ipam(network_key), ipam.dump())


def _ipv6_subnet(text: str) -> ipaddress.IPv6Network | None:
    """The network's IPv6 subnet, refused as Contiv refused it (a /128 leaves no address to give)."""
    if not text:
        return None
    try:
        subnet = ipaddress.IPv6Network(text, strict=False)
    except ValueError as exc:
        raise InvalidError(f"invalid ipv6Subnet {text!r}: {exc}") from None
    if subnet.prefixlen >= 128:
        raise InvalidError(f"invalid ipv6Subnet {text!r}: a /128 subnet has no addresses for endpoints")
    return subnet


async def host_access_state(txn: Txn, config: dict[str, Any], settings: dict[str, Any]) -> str:
    """What host access the agents give the network (``status.hostAccess``, shown by inspect): "enabled",
    "disabled" (the user's choice), or "refused: <why>". A host has one routing table, so a subnet that
    overlaps a network of another tenant already served, or the private subnet, is refused; the
    network that had it first keeps it (docs/host-access.md)."""
    if config.get("hostAccess") == "disabled":
        return "disabled"
    if (settings.get("networkInfraType") or "default") == "aci":
        return "refused: ACI mode, the fabric routes"
    mine = ipaddress.IPv4Network(Subnet.parse(config["subnet"]).cidr)
    pvt = settings.get("pvtSubnet") or ""
    if pvt and mine.overlaps(ipaddress.IPv4Network(pvt)):
        return f"refused: subnet {mine} overlaps the private subnet {pvt}"
    for other in await list_records(txn, "network"):
        if other.config["tenantName"] == config["tenantName"] or other.status.get("hostAccess") != "enabled":
            continue
        theirs = ipaddress.IPv4Network(Subnet.parse(other.config["subnet"]).cidr)
        if mine.overlaps(theirs):
            return (f"refused: subnet {mine} overlaps network {other.key} ({theirs}) of another tenant, "
                    "which has host access")
    return "enabled"


class NetworkHandler(Handler):
    otype = NETWORK
    immutable_message = "Cant change network parameters after its created"

    async def update(self, txn: Txn, old: Record, config: dict[str, Any]) -> dict[str, Any]:
        """Contiv's networks are immutable; ``hostAccess`` (ours) may be switched, which re-decides it."""
        if {k: v for k, v in old.config.items() if k != "hostAccess"} != \
                {k: v for k, v in config.items() if k != "hostAccess"}:
            raise ConflictError(self.immutable_message)
        settings = await global_settings(txn) or {}
        return {**old.status, "hostAccess": await host_access_state(txn, config, settings)}

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        settings = await global_settings(txn)
        encap = config["encap"]
        if not settings or not settings.get("fwdMode") or not settings.get(f"{encap}s"):
            raise ConflictError("Global configuration is not ready")
        tenant = config["tenantName"]
        await require(txn, "tenant", tenant, f"Tenant {tenant} not found")
        subnet = Subnet.parse(config["subnet"])
        if config["gateway"]:
            subnet.host_offset(config["gateway"], "gateway")
        name = config["networkName"]
        if await get_record(txn, "endpointGroup", f"{tenant}:{name}"):
            raise ConflictError(f"network name {name} clashes with an endpoint group of the same name")
        subnet6 = _ipv6_subnet(config["ipv6Subnet"])
        for other in await list_records(txn, "network", tenant):
            if Subnet.parse(other.config["subnet"]).overlaps(subnet):
                raise ConflictError(
                    f"subnet {config['subnet']} overlaps with network {other.config['networkName']}"
                    f" ({other.config['subnet']})"
                )
            other6 = other.config.get("ipv6Subnet")
            if subnet6 is not None and other6 and subnet6.overlaps(ipaddress.IPv6Network(other6, strict=False)):
                raise ConflictError(
                    f"ipv6 subnet {config['ipv6Subnet']} overlaps with network {other.config['networkName']}"
                    f" ({other6})"
                )
        status: dict[str, Any] = {}
        if encap == "vlan":
            lo, hi = tags.parse_tag_range(settings["vlans"], "vlan")
            vlan = await tags.allocate(txn, tags.VLAN, lo, hi, config["pktTag"])
            status.update(pktTag=vlan, externalPktTag=vlan)
        else:
            lo, hi = tags.parse_tag_range(settings["vxlans"], "vxlan")
            vni = await tags.allocate(txn, tags.VXLAN, lo, hi, config["pktTag"])
            local = await tags.allocate(txn, tags.LOCAL_VLAN, *tags.LOCAL_VLAN_RANGE)
            status.update(pktTag=local, externalPktTag=vni)
        store_ipam(txn, f"{tenant}:{name}", NetworkIpam.new(subnet, config["gateway"]))
        status["hostAccess"] = await host_access_state(txn, config, settings)
        return status

    async def delete(self, txn: Txn, record: Record) -> None:
        tenant = record.config["tenantName"]
        name = record.config["networkName"]
        groups = [g.key for g in await list_records(txn, "endpointGroup", tenant) if g.config["networkName"] == name]
        if groups:
            raise ConflictError(f"cannot delete network {record.key}: it has endpoint groups {', '.join(groups)}")
        services = [s.key for s in await list_records(txn, "serviceLB", tenant) if s.config["networkName"] == name]
        if services:
            raise ConflictError(f"cannot delete network {record.key}: it has services {', '.join(services)}")
        ipam = await load_ipam(txn, record)
        if ipam.endpoints:
            raise ConflictError(f"Network has active endpoints ({ipam.endpoints})")
        if record.config["encap"] == "vlan":
            await tags.release(txn, tags.VLAN, record.status["pktTag"])
        else:
            await tags.release(txn, tags.VXLAN, record.status["externalPktTag"])
            await tags.release(txn, tags.LOCAL_VLAN, record.status["pktTag"])
        txn.delete(keys.ipam(record.key))

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        ipam = await load_ipam(txn, record)
        tenant, name = record.config["tenantName"], record.config["networkName"]
        endpoints = await endpoints_of(txn, lambda ep: ep["tenantName"] == tenant and ep["networkName"] == name)
        allocated = ipam.allocated()
        # Contiv counts only what endpoints and pools took: the gateway shows in the list, not the count.
        count = len(allocated) - (1 if ipam.gateway is not None else 0)
        return {
            "pktTag": record.status.get("pktTag", 0),
            "externalPktTag": record.status.get("externalPktTag", 0),
            "numEndpoints": ipam.endpoints,
            "allocatedAddressesCount": count,
            "allocatedIPAddresses": ipam.render(allocated),
            "availableIPAddresses": ipam.render(ipam.available()),
            "endpoints": [endpoint_oper(ep) for ep in endpoints],
            # Contiv's derived tag: the configured one, else "<network>.<tenant>".
            "networkTag": record.config.get("cfgdTag") or f"{name}.{tenant}",
            "hostAccess": record.status.get("hostAccess", "enabled"),
        }
