"""The contract every store backend must honour (see netmaster/store/base.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from netmaster.store.base import CompactedError, Compare, Delete, EventType, LeaseNotFoundError, Put, Store
from netmaster.store.txn import Txn
from testbed.stores import BACKENDS


async def test_get_missing_is_none(store: Store) -> None:
    assert await store.get("/nope") is None


async def test_put_get_revisions(store: Store) -> None:
    r0 = await store.revision()
    r1 = await store.put("/a", "1")
    assert r1 == r0 + 1
    kv = await store.get("/a")
    assert kv is not None
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == ("1", r1, r1, 1)
    r2 = await store.put("/a", "2")
    kv = await store.get("/a")
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == ("2", r1, r2, 2)


async def test_list_prefix_is_ordered_and_bounded(store: Store) -> None:
    for key in ["/x/b", "/x/a", "/x/c/d", "/xa", "/w"]:
        await store.put(key, key)
    kvs, rev = await store.list("/x/")
    assert [kv.key for kv in kvs] == ["/x/a", "/x/b", "/x/c/d"]
    assert rev == await store.revision()


async def test_txn_compare_success_and_failure(store: Store) -> None:
    assert await store.create("/k", "v1")
    assert not await store.create("/k", "v2"), "create must fail when the key exists"
    kv = await store.get("/k")
    ok = await store.txn([Compare("/k", kv.mod_revision)], [Put("/k", "v3"), Put("/other", "o")])
    assert ok.succeeded
    stale = await store.txn([Compare("/k", kv.mod_revision)], [Put("/k", "lost"), Delete("/other")])
    assert not stale.succeeded
    assert stale.failed_keys == ["/k"]
    assert (await store.get("/k")).value == "v3"
    assert (await store.get("/other")).value == "o", "a failed txn must write nothing"


async def test_txn_prefix_compare_holds_until_a_key_under_it_changes(store: Store) -> None:
    for i in range(3):
        await store.put(f"/p/{i}", "v")
    await store.put("/pq", "outside the prefix")
    listed = await store.revision()
    ok = await store.txn([Compare("/p/", listed, prefix=True)], [Put("/w", "1")])
    assert ok.succeeded, "nothing under /p/ changed since the listing"
    assert (await store.txn([Compare("/empty/", listed, prefix=True)], [Put("/w", "2")])).succeeded
    await store.put("/pq", "changed, but not under /p/")
    assert (await store.txn([Compare("/p/", listed, prefix=True)], [Put("/w", "3")])).succeeded
    await store.put("/p/1", "changed")
    stale = await store.txn([Compare("/p/", listed, prefix=True)], [Put("/w", "lost")])
    assert not stale.succeeded
    assert stale.failed_keys == ["/p/"]
    assert (await store.get("/w")).value == "3"


async def test_a_transaction_over_a_listing_of_many_keys_commits(store: Store) -> None:
    """One compare for the listing, not one per key: etcd refuses more than 128 compares."""
    for i in range(200):
        await store.put(f"/many/{i:03}", "{}")
    txn = Txn(store)
    assert len(await txn.list("/many/", generation="/gen/many")) == 200
    txn.put("/many/new", {})
    await txn.bump("/gen/many")
    assert await txn.commit() is not None
    # A change under the prefix after the listing makes the commit fail.
    txn = Txn(store)
    await txn.list("/many/", generation="/gen/many")
    await store.put("/many/005", '{"changed": 1}')
    txn.put("/many/other", {})
    assert await txn.commit() is None


async def test_txn_is_one_revision(store: Store) -> None:
    before = await store.revision()
    res = await store.txn([], [Put("/a", "1"), Put("/b", "2"), Delete("/none")])
    assert res.revision == before + 1
    assert (await store.get("/a")).mod_revision == (await store.get("/b")).mod_revision == before + 1


async def test_delete_of_missing_key_writes_nothing(store: Store) -> None:
    before = await store.revision()
    res = await store.txn([], [Delete("/ghost")])
    assert res.succeeded
    assert await store.revision() == before


async def test_concurrent_cas_never_double_allocates(store: Store) -> None:
    """Optimistic increments from many tasks: every success is a distinct value, none lost."""
    await store.put("/counter", "0")
    won: list[int] = []

    async def worker() -> None:
        for _ in range(25):
            while True:
                kv = await store.get("/counter")
                n = int(kv.value) + 1
                res = await store.txn([Compare("/counter", kv.mod_revision)], [Put("/counter", str(n))])
                if res.succeeded:
                    won.append(n)
                    break
                await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(8)))
    assert sorted(won) == list(range(1, 201))
    assert (await store.get("/counter")).value == "200"


async def _collect(store: Store, prefix: str, since: int, n: int) -> list:
    out = []
    async for ev in store.watch(prefix, since):
        out.append(ev)
        if len(out) == n:
            break
    return out


async def test_watch_replays_then_follows(store: Store) -> None:
    start = await store.revision()
    await store.put("/w/a", "1")
    await store.put("/other", "x")
    task = asyncio.create_task(_collect(store, "/w/", start, 3))
    await asyncio.sleep(0.05)
    await store.put("/w/b", "2")
    await store.delete("/w/a")
    events = await asyncio.wait_for(task, 5)
    assert [(e.type, e.key, e.value) for e in events] == [
        (EventType.PUT, "/w/a", "1"),
        (EventType.PUT, "/w/b", "2"),
        (EventType.DELETE, "/w/a", None),
    ]
    assert events[2].prev_value == "1"
    assert [e.revision for e in events] == sorted(e.revision for e in events)


async def test_watch_resumes_without_gaps(store: Store) -> None:
    start = await store.revision()
    for i in range(20):
        await store.put(f"/r/{i}", str(i))
    first = await _collect(store, "/r/", start, 10)
    rest = await _collect(store, "/r/", first[-1].revision, 10)
    assert [e.value for e in first + rest] == [str(i) for i in range(20)]


async def test_watch_compacted_revision(backend: str, tmp_path) -> None:
    store = BACKENDS[backend](tmp_path, 50)
    try:
        for i in range(3000):
            await store.put(f"/c/{i % 7}", json.dumps(i))
        with pytest.raises(CompactedError):
            await _collect(store, "/c/", 1, 1)
        # A recent revision still works.
        rev = await store.revision()
        await store.put("/c/x", "y")
        events = await _collect(store, "/c/", rev, 1)
        assert events[0].key == "/c/x"
    finally:
        await store.close()


async def test_lease_expiry_deletes_keys_and_emits_events(store: Store) -> None:
    start = await store.revision()
    lease = await store.lease_grant(0.3)
    await store.put("/l/leader", "me", lease=lease)
    watcher = asyncio.create_task(_collect(store, "/l/", start, 2))
    await store.lease_keepalive(lease)
    assert (await store.get("/l/leader")).lease == lease
    events = await asyncio.wait_for(watcher, 5)
    assert [e.type for e in events] == [EventType.PUT, EventType.DELETE]
    assert await store.get("/l/leader") is None
    with pytest.raises(LeaseNotFoundError):
        await store.lease_keepalive(lease)


async def test_lease_revoke(store: Store) -> None:
    lease = await store.lease_grant(30)
    await store.put("/l/a", "1", lease=lease)
    await store.put("/l/b", "2")
    await store.lease_revoke(lease)
    assert await store.get("/l/a") is None
    assert (await store.get("/l/b")).value == "2"


async def test_put_with_unknown_lease_fails(store: Store) -> None:
    with pytest.raises(LeaseNotFoundError):
        await store.put("/l/x", "1", lease=123456789)
    assert await store.get("/l/x") is None
