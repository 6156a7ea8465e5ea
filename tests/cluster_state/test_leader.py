"""Leader election over every store backend: one leader, hand-over, and no overlap when cut off."""

from __future__ import annotations

import asyncio
import time

from netmaster.ha.leader import LeaderElector, read_leader
from netmaster.ha.membership import MemberInfo
from netmaster.store.base import Store
from testbed.waiting import until
from tests.cluster_state.cut_store import CutStore

TTL = 1.0  # etcd counts lease TTLs in whole seconds: 1 s is the smallest that means the same everywhere


class Timeline:
    """Records when each elector gained and lost leadership, to check that terms never overlap."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str]] = []

    def elector(self, store: Store, name: str, **kwargs: object) -> LeaderElector:
        async def lead() -> None:
            self.events.append((time.monotonic(), name, "up"))
            await asyncio.Event().wait()  # leader work: runs until cancelled on step-down

        return LeaderElector(
            store,
            MemberInfo(id=name, url=f"http://{name}"),
            ttl=TTL,
            on_elected=lead,
            on_deposed=lambda: self.events.append((time.monotonic(), name, "down")),
            **kwargs,  # type: ignore[arg-type]
        )

    def assert_never_two_leaders(self) -> None:
        leaders: set[str] = set()
        for _, name, change in sorted(self.events):
            if change == "up":
                assert not leaders, f"{name} became leader while {leaders} still led: {self.events}"
                leaders.add(name)
            else:
                leaders.discard(name)


async def test_one_leader_among_several(any_store: Store) -> None:
    timeline = Timeline()
    electors = [timeline.elector(any_store, f"nm{i}") for i in range(4)]
    for e in electors:
        await e.start()
    try:
        await until(lambda: any(e.is_leader for e in electors), 5, "a leader")
        await asyncio.sleep(2 * TTL)  # several renewals: leadership must be stable
        leaders = [e for e in electors if e.is_leader]
        assert len(leaders) == 1
        assert leaders[0].terms == 1
        current = await read_leader(any_store)
        assert current is not None
        assert current.id == leaders[0].identity.id
        assert current.url == f"http://{current.id}"
    finally:
        for e in electors:
            await e.stop()
    timeline.assert_never_two_leaders()
    assert await read_leader(any_store) is None, "stopping every elector must release the key"


async def test_resigning_leader_hands_over_at_once(any_store: Store) -> None:
    timeline = Timeline()
    first = timeline.elector(any_store, "first")
    second = timeline.elector(any_store, "second")
    await first.start()
    await asyncio.wait_for(first.wait_leader(), 5)
    await second.start()
    await asyncio.sleep(0.1)
    assert not second.is_leader
    start = time.monotonic()
    await first.stop()
    await asyncio.wait_for(second.wait_leader(), 5)
    # The resigning leader revokes its lease: no waiting for the TTL.
    assert time.monotonic() - start < TTL / 2
    await second.stop()
    timeline.assert_never_two_leaders()


async def test_cut_off_leader_steps_down_and_another_takes_over(any_store: Store) -> None:
    timeline = Timeline()
    cut_store = CutStore(any_store)
    doomed = timeline.elector(cut_store, "doomed")
    others = [timeline.elector(any_store, f"nm{i}") for i in range(2)]
    await doomed.start()
    await asyncio.wait_for(doomed.wait_leader(), 5)
    for e in others:
        await e.start()
    await asyncio.sleep(0.2)
    try:
        cut_store.cut()
        cut_at = time.monotonic()
        await until(lambda: not doomed.is_leader, 3 * TTL, "the old leader to step down")
        stepped_down = time.monotonic() - cut_at
        await until(lambda: any(e.is_leader for e in others), 3 * TTL, "a new leader")
        assert stepped_down <= TTL, "a leader that cannot renew must step down before its lease can expire"
        # The lease expires one TTL after its last renewal; etcd may add up to ~0.5 s of expiry checking.
        assert time.monotonic() - cut_at < 2 * TTL + 0.6
        # Healing the partition: the old leader campaigns again and stays a follower.
        cut_store.heal()
        await asyncio.sleep(3 * TTL / 2)
        assert not doomed.is_leader
        assert sum(e.is_leader for e in [doomed, *others]) == 1
    finally:
        for e in [doomed, *others]:
            await e.stop()
    timeline.assert_never_two_leaders()


async def test_leader_work_runs_only_while_leading(any_store: Store) -> None:
    ticks: list[str] = []

    async def reconcile() -> None:
        while True:
            ticks.append("tick")
            await asyncio.sleep(0.05)

    elector = LeaderElector(any_store, MemberInfo(id="solo"), ttl=TTL, on_elected=reconcile)
    async with elector:
        await asyncio.wait_for(elector.wait_leader(), 5)
        await asyncio.sleep(0.3)
        assert len(ticks) >= 3
    count = len(ticks)
    await asyncio.sleep(0.2)
    assert len(ticks) == count, "leader work must stop when leadership ends"


async def test_leader_key_deleted_behind_its_back(any_store: Store) -> None:
    timeline = Timeline()
    electors = [timeline.elector(any_store, f"nm{i}") for i in range(3)]
    for e in electors:
        await e.start()
    try:
        await until(lambda: any(e.is_leader for e in electors), 5, "a leader")
        old = next(e for e in electors if e.is_leader)
        await any_store.delete(old.key)
        # The old leader notices the key is gone and steps down; someone leads again promptly. A
        # follower may win the key a moment before the old leader sees the deletion: deleting the
        # key by hand is not a clean hand-over (stopping the leader, which revokes its lease, is).
        await until(lambda: (old.terms == 1 and not old.is_leader) or old.terms > 1, 1, "step-down")
        await until(lambda: sum(e.is_leader for e in electors) == 1, 3 * TTL, "a new leader")
        await asyncio.sleep(TTL)
        assert sum(e.is_leader for e in electors) == 1
        current = await read_leader(any_store)
        assert current is not None
        assert current.id == next(e for e in electors if e.is_leader).identity.id
    finally:
        for e in electors:
            await e.stop()
