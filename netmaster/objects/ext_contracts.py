"""External contracts groups: APIC contracts (by DN) that EPGs provide or consume in ACI mode."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from netmaster.errors import ConflictError, InvalidError
from netmaster.model.catalog import EXT_CONTRACTS_GROUP
from netmaster.objects.base import Handler, Record, infra_type, list_records, require
from netmaster.store.txn import Txn


class ExtContractsGroupHandler(Handler):
    otype = EXT_CONTRACTS_GROUP
    immutable_message = "external contracts group can not be updated after its created"

    def __init__(self, check_contracts: Callable[[Iterable[str]], Awaitable[None]] | None = None) -> None:
        # In ACI mode, DNs are checked against the APIC (netmaster.aci.contracts) when one is given.
        self.check_contracts = check_contracts

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        if config["contractsType"] not in ("provided", "consumed"):
            raise InvalidError("contractsType must be provided or consumed")
        tenant = config["tenantName"]
        await require(txn, "tenant", tenant, f"Tenant {tenant} not found")
        for dn in config["contracts"]:
            if not dn.startswith("uni/tn-") or "/brc-" not in dn:
                raise InvalidError(f"contract {dn!r} is not an APIC contract DN (uni/tn-T/brc-NAME)")
        if self.check_contracts is not None and await infra_type(txn) == "aci":
            await self.check_contracts(config["contracts"])
        return {}

    async def delete(self, txn: Txn, record: Record) -> None:
        tenant, name = record.config["tenantName"], record.config["contractsGroupName"]
        users = [
            g.key for g in await list_records(txn, "endpointGroup", tenant) if name in g.config["extContractsGrps"]
        ]
        if users:
            raise ConflictError(f"External contracts group is in-use by endpoint group(s) {', '.join(users)}")
