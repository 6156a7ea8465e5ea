"""ClusterNode: the façade the daemon uses for leadership, leader-only tasks, liveness and /info."""

from __future__ import annotations

import asyncio

from netmaster.api.agents import AgentRegistry
from netmaster.ha.cluster import ClusterNode
from netmaster.store.base import Store
from testbed.waiting import until


async def test_two_netmasters_one_runs_leader_tasks_and_info_lists_everyone(any_store: Store) -> None:
    ran: list[str] = []

    def node(name: str) -> ClusterNode:
        n = ClusterNode(any_store, url=f"http://{name}:9999", leader_ttl=1.0, member_ttl=1.0)

        async def gc() -> None:
            while True:
                ran.append(name)
                await asyncio.sleep(0.02)

        n.add_leader_task("endpoint-gc", gc)
        return n

    a, b = node("a"), node("b")
    await a.start()
    await until(lambda: a.is_leader, 5, "a leads")
    await b.start()
    agents = AgentRegistry(any_store)
    await agents.heartbeat("host1", {"vtepIP": "10.0.0.1"})
    try:
        await asyncio.sleep(0.2)
        assert set(ran) == {"a"}
        info_a, info_b = await a.info(), await b.info()
        assert info_a["current-state"] == "leader"
        assert info_b["current-state"] == "follower"
        assert info_a["leader"]["url"] == info_b["leader"]["url"] == "http://a:9999"
        assert sorted(info_b["netmaster-nodes"]) == ["http://a:9999", "http://b:9999"]
        assert info_b["netplugin-nodes"] == ["host1"]
        await agents.delete("host1")  # an agent stopping withdraws its record
        assert (await a.info())["netplugin-nodes"] == []

        await a.stop()  # resigns: b takes over at once and runs the leader task
        await until(lambda: b.is_leader, 1, "b leads")
        await until(lambda: ran[-1] == "b", 1, "b runs the leader task")
        assert (await b.info())["netmaster-nodes"] == ["http://b:9999"]
    finally:
        await a.stop()
        await b.stop()
