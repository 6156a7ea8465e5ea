"""Live member records: published under a lease, listed by role, gone when their holder is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from netmaster.ha.membership import MemberInfo, MemberRegistry, list_members
from netmaster.store.base import Store
from tests.cluster_state.cut_store import CutStore


async def test_register_list_and_withdraw(any_store: Store) -> None:
    registry = MemberRegistry(any_store, ttl=1.0)
    me = MemberInfo(id="nm1", role="netmaster", url="http://10.0.0.1:9999")
    await registry.register(me)
    await registry.start()
    await asyncio.wait_for(registry.wait_registered(), 5)
    await registry.register(MemberInfo(id="host-a", role="agent", extra={"vtep": "10.0.0.11"}))
    await registry.register(MemberInfo(id="host-b", role="agent"))
    await registry.unregister("agent", "host-b")

    assert [m.id for m in await list_members(any_store)] == ["host-a", "nm1"]
    agents = await list_members(any_store, "agent")
    assert [(m.id, m.extra) for m in agents] == [("host-a", {"vtep": "10.0.0.11"})]
    assert (await list_members(any_store, "netmaster"))[0] == me

    await asyncio.sleep(1.5)  # records outlive several TTLs while kept alive
    assert len(await list_members(any_store)) == 2
    await registry.stop()
    assert await list_members(any_store) == []


async def test_records_of_a_cut_off_member_expire(any_store: Store) -> None:
    cut = CutStore(any_store)
    registry = MemberRegistry(cut, ttl=1.0)
    await registry.register(MemberInfo(id="nm-gone"))
    await registry.start()
    await asyncio.wait_for(registry.wait_registered(), 5)
    cut.cut()
    try:
        await asyncio.wait_for(_until(any_store, lambda ids: ids == []), 4)
        # Back in touch: the registry publishes its records again under a new lease.
        cut.heal()
        await asyncio.wait_for(_until(any_store, lambda ids: ids == ["nm-gone"]), 5)
    finally:
        await registry.stop()


async def _until(store: Store, predicate: Callable[[list[str]], bool]) -> None:
    while True:
        if predicate([m.id for m in await list_members(store)]):
            return
        await asyncio.sleep(0.05)
