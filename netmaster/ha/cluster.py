"""One netmaster's place in the cluster: leadership, liveness records and what ``/info`` reports.

The daemon creates one :class:`ClusterNode`, registers the background reconcilers that must run on
one netmaster only (``add_leader_task``), starts it with the API and stops it on shutdown. Everything
works the same on the embedded stores, where the single netmaster simply always leads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from netmaster.ha.leader import DEFAULT_TTL, LeaderElector
from netmaster.ha.membership import MemberInfo, MemberRegistry, list_members
from netmaster.store import keys
from netmaster.store.base import Store

log = logging.getLogger(__name__)

MEMBER_TTL = 10.0


class ClusterNode:
    def __init__(
        self,
        store: Store,
        *,
        url: str,
        leader_ttl: float = DEFAULT_TTL,
        member_ttl: float = MEMBER_TTL,
        identity: MemberInfo | None = None,
    ) -> None:
        self.store = store
        self.identity = identity or MemberInfo(role="netmaster", url=url)
        self.registry = MemberRegistry(store, ttl=member_ttl)
        self.elector = LeaderElector(store, self.identity, ttl=leader_ttl, on_elected=self._lead)
        self._leader_tasks: list[tuple[str, Callable[[], Awaitable[Any]]]] = []

    def add_leader_task(self, name: str, run: Callable[[], Awaitable[Any]]) -> None:
        """``run()`` is started when this netmaster becomes leader and cancelled when it stops leading."""
        self._leader_tasks.append((name, run))

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    async def start(self) -> None:
        await self.registry.register(self.identity)
        await self.registry.start()
        await self.elector.start()

    async def stop(self) -> None:
        """Resign and withdraw the records, so the others take over at once (not after a TTL)."""
        await self.elector.stop()
        await self.registry.stop()

    async def info(self) -> dict[str, Any]:
        """The cluster part of ``/info``, in Contiv's field names where Contiv had them."""
        leader = await self.elector.current_leader()
        members = await list_members(self.store)
        # Agents are the hosts with a live heartbeat record (netmaster.api.agents), the same records that
        # endpoint garbage collection goes by.
        agents, _ = await self.store.list(keys.agent())
        return {
            "current-state": "leader" if self.is_leader else "follower",
            "leader": {"id": leader.id, "url": leader.url, "host": leader.host} if leader else None,
            "netmaster-id": self.identity.id,
            "netmaster-nodes": [m.url for m in members if m.role == "netmaster"],
            "netplugin-nodes": [kv.key[len(keys.AGENTS) :] for kv in agents],
        }

    async def _lead(self) -> None:
        tasks = [asyncio.create_task(run(), name=f"leader:{name}") for name, run in self._leader_tasks]
        try:
            # Each task runs until cancelled; one that ends or fails is logged, the others go on.
            for done in asyncio.as_completed(tasks):
                try:
                    await done
                except Exception:
                    log.exception("leader task failed")
            await asyncio.Event().wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
