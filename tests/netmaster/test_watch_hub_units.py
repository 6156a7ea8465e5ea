"""The watch hub (netmaster.api.watch.WatchHub) fed by a real in-memory store through the watch cache:
what an agent's subscriber is given when its span widens, and how often its stream is woken."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from netmaster.api.watch import Subscriber, WatchHub
from netmaster.store import keys
from netmaster.store.base import Delete, Put
from netmaster.store.cache import CachedStore
from netmaster.store.memory import MemoryStore


@pytest.fixture
async def cache() -> AsyncIterator[CachedStore]:
    store = CachedStore(MemoryStore())
    await store.start()
    yield store
    await store.close()


async def _put(cache: CachedStore, key: str, value: Any) -> int:
    result = await cache.txn([], [Put(key, json.dumps(value))])
    await cache.wait_for(result.revision)
    return result.revision


async def _endpoint(cache: CachedStore, ep: str, host: str, network: str, **extra: str) -> int:
    record = {"endpointID": ep, "tenantName": "t", "networkName": network, "host": host, **extra}
    return await _put(cache, keys.endpoint(ep), record)


def _lines(sub: Subscriber) -> list[dict[str, Any]]:
    out = []
    while (entry := sub.take()) is not None:
        out.extend(json.loads(line) for line in entry.line.splitlines())
    return out


async def test_a_widened_span_gets_the_endpoints_it_gained_in_revision_order(cache: CachedStore) -> None:
    hub = WatchHub(cache, network_grain=True)
    await _endpoint(cache, "a1", "hA", "n1")
    b1 = await _endpoint(cache, "b1", "hB", "n2")
    await _endpoint(cache, "c1", "hC", "n3")
    b2 = await _endpoint(cache, "b2", "hB", "n2")
    b1_again = await _endpoint(cache, "b1", "hB", "n2", containerID="moved")  # moves after b2
    d1 = await _endpoint(cache, "d1", "hC", "n3")
    result = await cache.txn([], [Delete(keys.endpoint("c1"))])
    await cache.wait_for(result.revision)
    assert b1 < b2 < b1_again < d1

    sub = hub.subscribe(cache.at_revision, "hA")
    assert sub is not None
    assert sub.closed_reason is None
    assert _lines(sub) == []
    # A rule naming a group makes tenant t wide: hA gains n2 and n3, merged by revision, c1 gone.
    rule = keys.obj("rule", "t:p:1")
    rule_rev = await _put(cache, rule, {"config": {"tenantName": "t", "toEndpointGroup": "g"}, "status": {}})
    got = _lines(sub)
    assert [(e["key"], e["revision"]) for e in got[:-1]] == [("b2", b2), ("b1", b1_again), ("d1", d1)]
    assert got[1]["object"]["containerID"] == "moved", "the endpoint as it is now"
    assert (got[-1]["kind"], got[-1]["revision"]) == ("rule", rule_rev), "the event itself follows"
    assert hub.span_adds == 3


async def test_a_hosts_first_endpoint_on_a_network_brings_the_others_then_itself(cache: CachedStore) -> None:
    hub = WatchHub(cache, network_grain=True)
    await _endpoint(cache, "a1", "hA", "n1")
    b1 = await _endpoint(cache, "b1", "hB", "n2")
    b2 = await _endpoint(cache, "b2", "hB", "n2")
    sub = hub.subscribe(cache.at_revision, "hA")
    assert sub is not None
    a2 = await _endpoint(cache, "a2", "hA", "n2")
    assert [(e["key"], e["revision"]) for e in _lines(sub)] == [("b1", b1), ("b2", b2), ("a2", a2)]
    # Already covered: a further endpoint of n2 is one line, and one of n3 (not covered) none.
    b3 = await _endpoint(cache, "b3", "hB", "n2")
    await _endpoint(cache, "c1", "hC", "n3")
    assert [(e["key"], e["revision"]) for e in _lines(sub)] == [("b3", b3)]


async def test_lines_queued_before_the_flush_wake_the_stream_once(cache: CachedStore) -> None:
    hub = WatchHub(cache, network_grain=True, flush=30.0)  # longer than the test: only the timer can wake
    await _endpoint(cache, "a1", "hA", "n1")
    sub = hub.subscribe(cache.at_revision, "hA")
    assert sub is not None
    revisions = [await _endpoint(cache, f"a{i}", "hA", "n1") for i in range(2, 5)]
    assert not sub.wake.is_set(), "queued lines wait for the flush"
    assert hub._flush_at is not None, "one timer for every stream"
    hub._flush_at.cancel()
    hub._flush_due()  # what the timer runs
    assert sub.wake.is_set()
    assert [e["revision"] for e in _lines(sub)] == revisions


async def test_without_a_flush_interval_each_line_wakes_the_stream(cache: CachedStore) -> None:
    hub = WatchHub(cache, network_grain=True, flush=0)
    sub = hub.subscribe(cache.at_revision, "hA")
    assert sub is not None
    await _endpoint(cache, "a1", "hA", "n1")
    assert sub.wake.is_set()
    assert hub._flush_at is None


async def test_a_writes_worth_of_lines_wakes_the_stream_before_the_flush(cache: CachedStore) -> None:
    """A burst must not wait for the timer while it fills the stream's buffer (a 410 for a reader that
    keeps up)."""
    hub = WatchHub(cache, network_grain=True, flush=30.0)
    sub = hub.subscribe(cache.at_revision, "hA")
    assert sub is not None
    await _endpoint(cache, "a1", "hA", "n1", containerName="x" * 70_000)
    assert sub.wake.is_set()


async def test_an_object_line_wakes_the_stream_at_once_with_the_endpoints_before_it(cache: CachedStore) -> None:
    """What an agent adding an endpoint may wait for (its network) must not wait for the flush."""
    hub = WatchHub(cache, network_grain=True, flush=30.0)
    await _endpoint(cache, "a1", "hA", "n1")
    sub = hub.subscribe(cache.at_revision, "hA")
    assert sub is not None
    a2 = await _endpoint(cache, "a2", "hA", "n1")
    assert not sub.wake.is_set()
    net = await _put(cache, keys.obj("network", "t:n2"), {"config": {"tenantName": "t"}, "status": {}})
    assert sub.wake.is_set()
    assert [e["revision"] for e in _lines(sub)] == [a2, net]
