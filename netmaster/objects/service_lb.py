"""Service load balancers: a VIP on a network, backed by endpoints selected by label."""

from __future__ import annotations

import re
from typing import Any

from netmaster.errors import InvalidError
from netmaster.model.catalog import SERVICE_LB
from netmaster.objects.base import Handler, Record, require
from netmaster.objects.endpoint_list import endpoints_of
from netmaster.objects.network import load_ipam, store_ipam
from netmaster.store.txn import Txn

_PORT_RE = re.compile(r"^([0-9]{1,5}):([0-9]{1,5}):(tcp|udp)$", re.IGNORECASE)


def _selectors(config: dict[str, Any]) -> dict[str, str]:
    if not config["selectors"]:
        raise InvalidError("a service needs at least one selector")
    out = {}
    for sel in config["selectors"]:
        if sel.count("=") != 1 or sel.startswith("=") or sel.endswith("="):
            raise InvalidError(f"invalid selector {sel!r}: expected key=value")
        k, v = sel.split("=")
        out[k] = v
    return out


def _check_ports(config: dict[str, Any]) -> None:
    if not config["ports"]:
        raise InvalidError("a service needs at least one port")
    for port in config["ports"]:
        m = _PORT_RE.match(port)
        if not m or not (0 < int(m[1]) < 65536 and 0 < int(m[2]) < 65536):
            raise InvalidError(f"invalid port {port!r}: expected svcPort:provPort:tcp|udp")


class ServiceLBHandler(Handler):
    otype = SERVICE_LB

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        _selectors(config)
        _check_ports(config)
        tenant = config["tenantName"]
        await require(txn, "tenant", tenant, f"Tenant {tenant} not found")
        network = await require(
            txn,
            "network",
            f"{tenant}:{config['networkName']}",
            f"Network {tenant}:{config['networkName']} not found",
        )
        ipam = await load_ipam(txn, network)
        offset = ipam.allocate(config["ipAddress"])
        store_ipam(txn, network.key, ipam)
        return {"serviceVip": ipam.subnet.address(offset)}

    async def update(self, txn: Txn, old: Record, config: dict[str, Any]) -> dict[str, Any]:
        _selectors(config)
        _check_ports(config)
        if config["networkName"] != old.config["networkName"]:
            raise InvalidError("Cannot change the network of a service")
        if config["ipAddress"] and config["ipAddress"] != old.status["serviceVip"]:
            raise InvalidError("Cannot change the VIP of a service")
        return old.status

    async def delete(self, txn: Txn, record: Record) -> None:
        network = await require(txn, "network", f"{record.config['tenantName']}:{record.config['networkName']}")
        ipam = await load_ipam(txn, network)
        offset = ipam.subnet.offset(record.status["serviceVip"])
        if offset is not None:
            ipam.release(offset)
            store_ipam(txn, network.key, ipam)

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        selectors = _selectors(record.config)
        tenant = record.config["tenantName"]
        providers = await endpoints_of(
            txn,
            lambda ep: (
                ep["tenantName"] == tenant and all(ep.get("labels", {}).get(k) == v for k, v in selectors.items())
            ),
        )
        return {
            "serviceVip": record.status["serviceVip"],
            "numProviders": len(providers),
            "providers": [{"ipAddress": ep["ipAddress"], "containerID": ep.get("containerID", "")} for ep in providers],
        }
