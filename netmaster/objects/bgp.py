"""Per-host BGP peering settings for routed (L3) mode."""

from __future__ import annotations

from typing import Any

from netmaster.errors import InvalidError
from netmaster.model.catalog import BGP
from netmaster.objects.base import Handler, Record, infra_type
from netmaster.store.txn import Txn


class BgpHandler(Handler):
    otype = BGP

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        if await infra_type(txn) == "aci":
            raise InvalidError("Bgp is not supported in ACI fabric mode")
        return {}

    async def update(self, txn: Txn, old: Record, config: dict[str, Any]) -> dict[str, Any]:
        return await self.create(txn, config)

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        # The state lives on the host: netmaster.api.bgp_inspect fills it from the host's agent. This is
        # what an inspect shows when the agent cannot be asked.
        return {"numRoutes": 0, "neighborStatus": "", "adminStatus": "", "routes": []}
