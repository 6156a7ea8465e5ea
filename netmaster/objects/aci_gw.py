"""The aciGw singleton: how app profiles are bound into the ACI fabric (domain, nodes, paths)."""

from __future__ import annotations

from typing import Any

from netmaster.errors import ConflictError
from netmaster.model.catalog import ACI_GW
from netmaster.objects.base import Handler, Record, list_records
from netmaster.store import keys
from netmaster.store.txn import Txn


class AciGwHandler(Handler):
    otype = ACI_GW

    async def delete(self, txn: Txn, record: Record) -> None:
        profiles = [p.key for p in await list_records(txn, "appProfile")]
        if profiles:
            raise ConflictError(f"cannot delete aciGw while app profiles exist: {', '.join(profiles)}")

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        oper: dict[str, Any] = {"numAppProfiles": len(await list_records(txn, "appProfile"))}
        tenant_import = await txn.get(keys.ACI_TENANT_IMPORT)
        if tenant_import is not None:
            oper["tenantImport"] = tenant_import
        return oper
