"""Network profiles: bandwidth, burst and DSCP applied to the endpoints of the EPGs using them.

Every field is applied by the agents (``contiv_api.netprofile`` says how; docs/pipeline.md, "QoS"); an
edit reaches running endpoints through the watch stream. Inspect shows what is in force and where.
"""

from __future__ import annotations

from typing import Any

from contiv_api.netprofile import in_force
from netmaster.errors import ConflictError, InvalidError
from netmaster.model.catalog import NETPROFILE
from netmaster.objects.base import Handler, Record, list_records, require
from netmaster.store.txn import Txn


class NetprofileHandler(Handler):
    otype = NETPROFILE

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        tenant = config["tenantName"]
        await require(txn, "tenant", tenant, f"Tenant {tenant} not found")
        if config["burst"] == 1:
            raise InvalidError("burst size must be > 1500 bytes")
        return {}

    async def update(self, txn: Txn, old: Record, config: dict[str, Any]) -> dict[str, Any]:
        await self.create(txn, config)
        return old.status

    async def delete(self, txn: Txn, record: Record) -> None:
        tenant, name = record.config["tenantName"], record.config["profileName"]
        users = [g.key for g in await list_records(txn, "endpointGroup", tenant) if g.config["netProfile"] == name]
        if users:
            raise ConflictError(f"NetProfile is being used by endpoint group(s) {', '.join(users)}")

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        tenant, name = record.config["tenantName"], record.config["profileName"]
        users = [g.key for g in await list_records(txn, "endpointGroup", tenant) if g.config["netProfile"] == name]
        return {**in_force(record.config), "endpointGroups": users}
