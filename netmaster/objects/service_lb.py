"""Service load balancers: a VIP on a network, backed by endpoints selected by label."""

from __future__ import annotations

from typing import Any

from contiv_api.service_lb import parse_port, parse_selectors, provides
from netmaster.errors import InvalidError
from netmaster.model.catalog import SERVICE_LB
from netmaster.objects.base import Handler, Record, require
from netmaster.objects.endpoint_list import endpoints_of
from netmaster.objects.network import load_ipam, store_ipam
from netmaster.store.txn import Txn


def _selectors(config: dict[str, Any]) -> dict[str, str]:
    if not config["selectors"]:
        raise InvalidError("a service needs at least one selector")
    try:
        return parse_selectors(config["selectors"])
    except ValueError as exc:
        raise InvalidError(str(exc)) from None


def _check_ports(config: dict[str, Any]) -> None:
    if not config["ports"]:
        raise InvalidError("a service needs at least one port")
    seen = set()
    for port in config["ports"]:
        try:
            svc_port, _, proto = parse_port(port)
        except ValueError as exc:
            raise InvalidError(str(exc)) from None
        if (svc_port, proto) in seen:
            raise InvalidError(f"port {svc_port}/{proto} is given twice")
        seen.add((svc_port, proto))


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
        """VIP, ports and providers: the endpoints the agents balance over (contiv_api.service_lb's rule,
        the same the agents apply to the watch stream)."""
        providers = sorted(await endpoints_of(txn, lambda ep: provides(record.config, ep)),
                           key=lambda ep: ep["endpointID"])
        return {
            "serviceVip": record.status["serviceVip"],
            "ports": list(record.config["ports"]),
            "numProviders": len(providers),
            "providers": [{"endpointID": ep["endpointID"], "ipAddress": ep["ipAddress"], "host": ep.get("host", ""),
                           "network": ep.get("networkName", ""), "containerID": ep.get("containerID", "")}
                          for ep in providers],
        }
