"""Endpoint groups (EPGs): a policy domain inside a network, with a persistent id and optional pool."""

from __future__ import annotations

from typing import Any

from contiv_api.netprofile import in_force
from netmaster.alloc import tags
from netmaster.alloc.rangeset import RangeSet
from netmaster.errors import ConflictError
from netmaster.model.catalog import ENDPOINT_GROUP
from netmaster.objects.base import (
    Handler,
    Record,
    get_record,
    global_settings,
    list_records,
    require,
)
from netmaster.objects.endpoint_list import endpoint_oper, endpoints_of
from netmaster.objects.network import load_ipam, store_ipam
from netmaster.store.txn import Txn


async def _check_references(txn: Txn, config: dict[str, Any]) -> None:
    tenant = config["tenantName"]
    for policy in config["policies"]:
        await require(txn, "policy", f"{tenant}:{policy}", f"Policy {tenant}:{policy} not found")
    if config["netProfile"]:
        key = f"{tenant}:{config['netProfile']}"
        await require(txn, "netprofile", key, f"Netprofile {key} not found")
    for group in config["extContractsGrps"]:
        key = f"{tenant}:{group}"
        await require(txn, "extContractsGroup", key, f"External contracts group {key} not found")


class EndpointGroupHandler(Handler):
    otype = ENDPOINT_GROUP

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        tenant, name = config["tenantName"], config["groupName"]
        await require(txn, "tenant", tenant, f"Tenant {tenant} not found")
        network = await require(
            txn,
            "network",
            f"{tenant}:{config['networkName']}",
            f"Network {tenant}:{config['networkName']} not found",
        )
        if await get_record(txn, "network", f"{tenant}:{name}"):
            raise ConflictError(f"endpoint group name {name} clashes with a network of the same name")
        await _check_references(txn, config)
        status: dict[str, Any] = {
            "endpointGroupId": await tags.allocate(txn, tags.EPG_ID, *tags.EPG_ID_RANGE),
            "pktTag": network.status["pktTag"],
            "externalPktTag": network.status["externalPktTag"],
        }
        settings = await global_settings(txn) or {}
        if settings.get("networkInfraType") == "aci":
            # Whatever the network's encap: toward the leaf, an EPG's endpoints use the EPG's VLAN.
            lo, hi = tags.parse_tag_range(settings["vlans"], "vlan")
            vlan = await tags.allocate(txn, tags.VLAN, lo, hi)
            status.update(pktTag=vlan, externalPktTag=vlan, aciVlan=vlan)
        if config["ipPool"]:
            ipam = await load_ipam(txn, network)
            ipam.add_pool(name, config["ipPool"])
            store_ipam(txn, network.key, ipam)
        return status

    async def update(self, txn: Txn, old: Record, config: dict[str, Any]) -> dict[str, Any]:
        if config["networkName"] != old.config["networkName"]:
            raise ConflictError("Cannot change network association of an endpoint group")
        if config["ipPool"] != old.config["ipPool"]:
            raise ConflictError("Cannot change IP pool of an endpoint group")
        await _check_references(txn, config)
        return old.status

    async def delete(self, txn: Txn, record: Record) -> None:
        tenant, name = record.config["tenantName"], record.config["groupName"]
        profiles = [p.key for p in await list_records(txn, "appProfile", tenant) if name in p.config["endpointGroups"]]
        if profiles:
            raise ConflictError(f"EPG {name} is used by app profile(s) {', '.join(profiles)}")
        network = await require(txn, "network", f"{tenant}:{record.config['networkName']}")
        ipam = await load_ipam(txn, network)
        if ipam.group_endpoints.get(name):
            raise ConflictError(f"EPG {name} has active endpoints")
        if name in ipam.pools:
            ipam.remove_pool(name)
        ipam.group_endpoints.pop(name, None)
        store_ipam(txn, network.key, ipam)
        await tags.release(txn, tags.EPG_ID, record.status["endpointGroupId"])
        if "aciVlan" in record.status:
            await tags.release(txn, tags.VLAN, record.status["aciVlan"])

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        tenant, name = record.config["tenantName"], record.config["groupName"]
        network = await require(txn, "network", f"{tenant}:{record.config['networkName']}")
        ipam = await load_ipam(txn, network)
        endpoints = await endpoints_of(txn, lambda ep: ep["tenantName"] == tenant and ep.get("groupName") == name)
        oper = {
            "endpointGroupId": record.status["endpointGroupId"],
            "pktTag": record.status.get("pktTag", 0),
            "externalPktTag": record.status.get("externalPktTag", 0),
            "numEndpoints": ipam.group_endpoints.get(name, 0),
            "endpoints": [endpoint_oper(ep) for ep in endpoints],
            # Contiv's derived tag: the configured one, else "<group>.<tenant>".
            "groupTag": record.config.get("cfgdTag") or f"{name}.{tenant}",
        }
        if record.config["netProfile"]:
            profile = await get_record(txn, "netprofile", f"{tenant}:{record.config['netProfile']}")
            if profile is not None:
                oper["netProfile"] = {"profileName": profile.config["profileName"], **in_force(profile.config)}
        if name in ipam.pools:
            oper["allocatedIPAddresses"] = ipam.render(ipam.pool_used.get(name, RangeSet()))
            oper["availableIPAddresses"] = ipam.render(ipam.pool_available(name))
        return oper
