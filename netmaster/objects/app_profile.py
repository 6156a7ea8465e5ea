"""Application profiles: named sets of EPGs, the unit pushed to an ACI fabric."""

from __future__ import annotations

from typing import Any

from netmaster.model.catalog import APP_PROFILE
from netmaster.objects.base import Handler, Record, require
from netmaster.store import keys
from netmaster.store.txn import Txn


class AppProfileHandler(Handler):
    otype = APP_PROFILE

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        tenant = config["tenantName"]
        await require(txn, "tenant", tenant, f"Tenant {tenant} not found")
        for group in config["endpointGroups"]:
            key = f"{tenant}:{group}"
            await require(txn, "endpointGroup", key, f"EndpointGroup {key} not found")
        return {}

    async def update(self, txn: Txn, old: Record, config: dict[str, Any]) -> dict[str, Any]:
        await self.create(txn, config)
        return old.status

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        """In ACI mode, the push state kept by the reconciler (netmaster.aci.reconciler)."""
        sync = await txn.get(keys.aci_sync(record.key))
        return {"aciSync": sync} if sync is not None else {}
