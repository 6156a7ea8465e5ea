"""What the informer tests share: a recorder of handler calls, a network to follow, and the cache check."""

from __future__ import annotations

from typing import Any

from contiv_api.informer import Informer
from contiv_api.netmaster_client import NetmasterClient
from contiv_api.watch_format import ObjectState


class Recorder:
    """Informer handlers that record every call, to check what a consumer would have seen."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def add(self, s: ObjectState) -> None:
        self.calls.append(("add", s.kind, s.key))

    def update(self, old: ObjectState, new: ObjectState) -> None:
        assert old.id == new.id
        self.calls.append(("update", new.kind, new.key))

    def delete(self, s: ObjectState) -> None:
        self.calls.append(("delete", s.kind, s.key))

    def resync(self, revision: int) -> None:
        self.calls.append(("resync", "", str(revision)))

    def informer(self, client: NetmasterClient, **kw: Any) -> Informer:
        return Informer(
            client, on_add=self.add, on_update=self.update, on_delete=self.delete, on_resync=self.resync, **kw
        )


async def make_network(client: NetmasterClient, tenant: str, network: str, subnet: str = "10.1.1.0/24") -> None:
    if tenant != "default":
        await client.request("POST", f"/api/v1/tenants/{tenant}/", {"tenantName": tenant})
    body = {"tenantName": tenant, "networkName": network, "encap": "vxlan", "subnet": subnet}
    await client.request("POST", f"/api/v1/networks/{tenant}:{network}/", body)


async def cache_matches_snapshot(informer: Informer, client: NetmasterClient) -> bool:
    snap = await client.snapshot()
    return {s.id: s for s in snap.objects} == informer.cache
