"""Issue 5 HA: every netmaster serves the API; one leads; SIGKILL of the leader hands over within the TTL."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testbed.etcd import shared_etcd
from testbed.netmaster import NetmasterProcess

TTL = 2.0


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[NetmasterProcess]]:
    shared_etcd().wipe()
    nms = [
        NetmasterProcess.spawn(shared_etcd().url, args=["--leader-ttl", str(TTL)], log_path=tmp_path / f"nm{i}.log")
        for i in range(2)
    ]
    yield nms
    for nm in nms:
        nm.stop()


def _info(nm: NetmasterProcess) -> dict:
    return httpx.get(nm.url + "/info", timeout=5).json()


def _wait_for(predicate, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def test_one_leader_then_failover_after_sigkill(pair: list[NetmasterProcess]) -> None:
    _wait_for(lambda: sorted(_info(nm)["current-state"] for nm in pair) == ["follower", "leader"], 10)
    leader, follower = sorted(pair, key=lambda nm: _info(nm)["current-state"] != "leader")
    info = _info(follower)
    assert info["leader"]["url"] == leader.url.removeprefix("http://")
    assert sorted(info["netmaster-nodes"]) == sorted(nm.url.removeprefix("http://") for nm in pair)
    # Both serve the API, on one shared state.
    assert httpx.post(leader.url + "/api/v1/tenants/ha/", json={}).status_code == 200
    assert httpx.get(follower.url + "/api/v1/tenants/ha/").status_code == 200

    leader.stop(signal.SIGKILL)
    took = _wait_for(lambda: _info(follower)["current-state"] == "leader", TTL + 5)
    assert took < TTL + 2, f"failover took {took:.1f}s with a {TTL}s lease"
    assert httpx.post(follower.url + "/api/v1/tenants/ha2/", json={}).status_code == 200


def test_clean_stop_hands_over_at_once(pair: list[NetmasterProcess]) -> None:
    _wait_for(lambda: any(_info(nm)["current-state"] == "leader" for nm in pair), 10)
    leader, follower = sorted(pair, key=lambda nm: _info(nm)["current-state"] != "leader")
    leader.stop(signal.SIGTERM)
    took = _wait_for(lambda: _info(follower)["current-state"] == "leader", TTL + 5)
    assert took < 1.5, f"a resigning leader should hand over at once, took {took:.1f}s"
