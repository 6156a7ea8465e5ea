"""Property tests of the allocators: no duplicate ever, release and reuse, edges, clean exhaustion."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netmaster.alloc import tags
from netmaster.alloc.ipam import NetworkIpam, Subnet
from netmaster.alloc.rangeset import RangeSet
from netmaster.errors import ConflictError
from netmaster.store.memory import MemoryStore
from netmaster.store.txn import Txn, run_txn

ops = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "add_range", "remove_range"]), st.integers(0, 60), st.integers(0, 8)),
    max_size=60,
)


@given(ops)
def test_rangeset_matches_a_plain_set(operations: list[tuple[str, int, int]]) -> None:
    rs, model = RangeSet(), set()
    for op, a, width in operations:
        if op == "add":
            rs.add(a)
            model.add(a)
        elif op == "remove":
            rs.remove(a)
            model.discard(a)
        elif op == "add_range":
            rs.add_range(a, a + width)
            model.update(range(a, a + width + 1))
        else:
            rs.remove_range(a, a + width)
            model.difference_update(range(a, a + width + 1))
        assert len(rs) == len(model)
        assert all((x in rs) == (x in model) for x in range(-1, 72))
        los = [lo for lo, _ in rs.ranges()]
        his = [hi for _, hi in rs.ranges()]
        assert all(his[i] + 1 < los[i + 1] for i in range(len(los) - 1)), "ranges must stay disjoint and merged"
        free = [x for x in range(0, 70) if x not in model]
        assert rs.lowest_free(0, 69) == (free[0] if free else None)
        assert set(rs.free_within(5, 50).ranges()) == set(
            RangeSet((x, x) for x in range(5, 51) if x not in model).ranges()
        )
        assert RangeSet.parse(rs.dump()) == rs


subnets = st.sampled_from(["10.0.0.0/28", "10.0.0.0/29", "192.168.1.16-192.168.1.30/24", "10.1.0.0/30"])


@given(subnets, st.booleans(), st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=80))
@settings(max_examples=150)
def test_ipam_never_hands_out_twice(subnet_text: str, with_gateway: bool, steps: list[tuple[bool, int]]) -> None:
    subnet = Subnet.parse(subnet_text)
    gateway = subnet.address(subnet.first) if with_gateway and subnet.first <= subnet.last else ""
    ipam = NetworkIpam.new(subnet, gateway)
    held: list[int] = []
    for allocate, pick in steps:
        if allocate:
            before = ipam.dump()
            try:
                off = ipam.allocate()
            except ConflictError as exc:
                assert "address exhaustion" in str(exc)
                assert ipam.dump() == before, "a failed allocation must change nothing"
                assert len(held) + (1 if gateway else 0) == subnet.last - subnet.first + 1
                continue
            assert off not in held
            assert subnet.first <= off <= subnet.last, "only host addresses inside the range"
            assert off != ipam.gateway
            free_before = [o for o in range(subnet.first, subnet.last + 1) if o not in held and o != ipam.gateway]
            assert off == free_before[0], "lowest free first"
            held.append(off)
        elif held:
            off = held.pop(pick % len(held))
            ipam.release(off)
    assert sorted(held) == [o for lo, hi in ipam.used.ranges() for o in range(lo, hi + 1)]


@given(st.lists(st.integers(1, 14), min_size=1, max_size=20))
def test_requested_addresses_never_duplicate(requests: list[int]) -> None:
    subnet = Subnet.parse("10.0.0.0/28")
    ipam = NetworkIpam.new(subnet, "")
    granted = set()
    for off in requests:
        ip = subnet.address(off)
        if off in granted:
            with pytest.raises(ConflictError, match="already in use"):
                ipam.allocate(ip)
        else:
            assert ipam.allocate(ip) == off
            granted.add(off)


def test_pool_edges() -> None:
    subnet = Subnet.parse("10.0.0.0/24")
    ipam = NetworkIpam.new(subnet, "10.0.0.254")
    ipam.add_pool("g", "10.0.0.1-10.0.0.1")
    assert ipam.allocate(group="g") == 1
    with pytest.raises(ConflictError, match=re.escape("exhaustion in pool 10.0.0.1-10.0.0.1")):
        ipam.allocate(group="g")
    assert ipam.allocate() == 2, "network allocations skip the pool"
    with pytest.raises(ConflictError, match="not available"):
        ipam.add_pool("h", "10.0.0.250-10.0.0.254")


def test_tag_range_edges() -> None:
    assert tags.parse_tag_range("1-4094", "vlan") == (1, 4094)
    assert tags.parse_tag_range("7-7", "vlan") == (7, 7)
    assert tags.parse_tag_range("1-16000", "vxlan") == (1, 16000)
    for bad in ("0-10", "1-4095", "10-1", "x-1"):
        with pytest.raises(Exception, match="invalid vlan range"):
            tags.parse_tag_range(bad, "vlan")


async def test_concurrent_tag_allocation_is_unique_and_exhausts_cleanly() -> None:
    store = MemoryStore()

    async def take(txn: Txn) -> int:
        return await tags.allocate(txn, tags.VLAN, 100, 149)

    async def one() -> int | None:
        try:
            value, _ = await run_txn(store, take)
            return value
        except ConflictError as exc:
            assert "no vlans available" in str(exc)
            return None

    results = await asyncio.gather(*(one() for _ in range(80)))
    granted = [r for r in results if r is not None]
    assert sorted(granted) == list(range(100, 150))
    assert results.count(None) == 30
    kv = await store.get(tags.VLAN.key)
    assert kv.value == '{"used":"100-149"}'


@given(st.lists(st.booleans(), min_size=1, max_size=60))
@settings(max_examples=40, deadline=None)
def test_tag_release_and_reuse(steps: list[bool]) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        held: list[int] = []
        for allocate in steps:
            if allocate or not held:
                value, _ = await run_txn(store, lambda txn: tags.allocate(txn, tags.EPG_ID, 1, 65535))
                assert value not in held
                assert value == min(set(range(1, 100)) - set(held))
                held.append(value)
            else:
                victim = held.pop(0)
                await run_txn(store, lambda txn, v=victim: tags.release(txn, tags.EPG_ID, v))

    asyncio.run(scenario())
