"""etcd backend behaviour beyond the shared contract: paged listing, compaction by history."""

from __future__ import annotations

import asyncio

import pytest

from netmaster.store.base import CompactedError, Store
from netmaster.store.etcd import LIST_PAGE, EtcdStore
from testbed.etcd import shared_etcd


async def test_list_pages_at_one_revision(etcd_store: Store) -> None:
    n = LIST_PAGE * 2 + 7
    sem = asyncio.Semaphore(64)

    async def put(i: int) -> None:
        async with sem:
            await etcd_store.put(f"/p/{i:06d}", str(i))

    await asyncio.gather(*(put(i) for i in range(n)))
    kvs, revision = await etcd_store.list("/p/")
    assert [kv.key for kv in kvs] == [f"/p/{i:06d}" for i in range(n)]
    assert revision == await etcd_store.revision()
    everything, _ = await etcd_store.list("")
    assert len(everything) == n


async def test_history_bounds_what_a_watch_can_replay() -> None:
    shared_etcd().wipe()
    store = EtcdStore.from_url(shared_etcd().url + "?history=100")
    try:
        start = await store.revision()
        for i in range(400):
            await store.put("/h/k", str(i))
        await asyncio.sleep(0.3)  # compaction runs in the background
        with pytest.raises(CompactedError):
            await anext(aiter(store.watch("/h/", start)))
        # The last `history` revisions stay watchable.
        recent = await store.revision() - 100
        async for ev in store.watch("/h/", recent):
            assert ev.revision == recent + 1
            break
    finally:
        await store.close()
