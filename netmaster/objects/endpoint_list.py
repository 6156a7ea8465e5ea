"""Reading endpoint records for inspect views (counts and lists of an object's endpoints)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netmaster.store import keys
from netmaster.store.txn import Txn


async def endpoints_of(txn: Txn, match: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    return [ep for _, ep in await txn.list(keys.endpoint()) if match(ep)]


def endpoint_oper(ep: dict[str, Any]) -> dict[str, Any]:
    """An endpoint in Contiv's inspect shape (``endpoint.json`` oper fields)."""
    return {
        "endpointID": ep["endpointID"],
        "network": f"{ep['networkName']}.{ep['tenantName']}",
        "serviceName": ep.get("groupName", ""),
        "endpointGroupId": ep.get("endpointGroupId", 0),
        "endpointGroupKey": f"{ep['groupName']}:{ep['tenantName']}" if ep.get("groupName") else "",
        "ipAddress": [ep["ipAddress"], ""],
        "macAddress": ep["macAddress"],
        "homingHost": ep.get("host", ""),
        "intfName": ep.get("intfName", ""),
        "vtepIP": ep.get("vtepIP", ""),
        "labels": str(ep.get("labels", {})),
        "containerID": ep.get("containerID", ""),
        "containerName": ep.get("containerName", ""),
        "virtualPort": ep.get("portName", ""),
    }
