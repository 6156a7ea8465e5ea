"""The ``global`` singleton: fabric mode, forwarding mode, ARP mode, tag ranges, private subnet.

Contiv's rules for changing it are kept: the forwarding mode, fabric mode and private subnet are
fixed while networks exist (agents would have to rebuild their datapath), and a VLAN or VXLAN range
may only change to one that still holds every tag in use.
"""

from __future__ import annotations

from typing import Any

from netmaster.alloc import tags
from netmaster.alloc.rangeset import RangeSet
from netmaster.errors import ConflictError
from netmaster.model.catalog import GLOBAL
from netmaster.objects.base import Handler, Record, list_records
from netmaster.store.txn import Txn

DEFAULTS = {
    "name": "global",
    "networkInfraType": "default",
    "vlans": "1-4094",
    "vxlans": "1-10000",
    "fwdMode": "bridge",
    "arpMode": "proxy",
    "pvtSubnet": "172.19.0.0/16",
}
# Empty in a request means "leave as it is" (Contiv's model allowed them empty).
_KEEP_IF_EMPTY = ("networkInfraType", "fwdMode", "arpMode")


class GlobalHandler(Handler):
    otype = GLOBAL

    def __init__(self, cluster_mode: str = "docker") -> None:
        self.cluster_mode = cluster_mode

    def _complete(self, config: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        out = dict(config)
        for field in _KEEP_IF_EMPTY:
            if not out[field]:
                out[field] = base[field]
        tags.parse_tag_range(out["vlans"], "vlan")
        tags.parse_tag_range(out["vxlans"], "vxlan")
        return out

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        config.update(self._complete(config, DEFAULTS))
        return {}

    async def update(self, txn: Txn, old: Record, config: dict[str, Any]) -> dict[str, Any]:
        config.update(self._complete(config, old.config))
        networks = await list_records(txn, "network")
        changed = {f for f in DEFAULTS if config[f] != old.config[f]}
        if "fwdMode" in changed:
            if networks:
                vlans = sum(1 for n in networks if n.config["encap"] == "vlan")
                raise ConflictError(
                    f"Unable to update forwarding mode due to existing {vlans} vlans and {len(networks) - vlans} vxlans"
                )
            if old.config["fwdMode"] == "routing" and await list_records(txn, "Bgp"):
                raise ConflictError("Unable to leave routing mode: please delete existing Bgp configs")
        if "pvtSubnet" in changed and networks:
            raise ConflictError("Unable to update private subnet due to existing networks")
        if "networkInfraType" in changed and (networks or await list_records(txn, "endpointGroup")):
            raise ConflictError("Unable to update fabric mode due to existing networks")
        for field, pool in (("vlans", tags.VLAN), ("vxlans", tags.VXLAN)):
            if field in changed:
                await _check_range_holds_in_use(txn, pool, config[field])
        return old.status

    async def delete(self, txn: Txn, record: Record) -> None:
        if await list_records(txn, "network"):
            raise ConflictError("cannot delete global settings while networks exist")

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        vlans = await tags.used(txn, tags.VLAN)
        vxlans = await tags.used(txn, tags.VXLAN)
        lo, _ = tags.parse_tag_range(record.config["vxlans"], "vxlan")
        return {
            "numNetworks": len(await list_records(txn, "network")),
            "defaultNetwork": "",
            "vlansInUse": vlans.render(str),
            "vxlansInUse": vxlans.render(str),
            "freeVXLANsStart": lo,
            "clusterMode": self.cluster_mode,
        }


async def _check_range_holds_in_use(txn: Txn, pool: tags.Pool, text: str) -> None:
    lo, hi = tags.parse_tag_range(text, pool.noun)
    in_use: RangeSet = await tags.used(txn, pool)
    if in_use and (in_use.min() < lo or in_use.max() > hi):  # type: ignore[operator]
        raise ConflictError(f"cannot update the {pool.noun} range due to existing {pool.noun}s {in_use.render(str)}")
