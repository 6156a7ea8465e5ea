"""Issue 5 endpoint garbage collection: the leader deletes endpoints of hosts whose agent is gone."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from netmaster.ha.endpoint_gc import EndpointCollector
from netmaster.objects.endpoints import EndpointService, ReservationService
from netmaster.objects.service import ObjectService
from netmaster.store.memory import MemoryStore
from testbed.etcd import shared_etcd
from testbed.netmaster import NetmasterProcess

GRACE = 1.5


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[NetmasterProcess]]:
    shared_etcd().wipe()
    args = ["--endpoint-gc-grace", str(GRACE), "--leader-ttl", "2"]
    nms = [
        NetmasterProcess.spawn(shared_etcd().url, args=args, log_path=tmp_path / f"nm{i}.log") for i in range(2)
    ]
    yield nms
    for nm in nms:
        nm.stop()


def _metric(nm: NetmasterProcess, name: str) -> float:
    text = httpx.get(nm.url + "/metrics").text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def _wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def test_leader_collects_endpoints_of_a_host_whose_agent_is_gone(pair: list[NetmasterProcess]) -> None:
    _wait_for(lambda: any(httpx.get(nm.url + "/info").json()["current-state"] == "leader" for nm in pair), 10, "leader")
    leader, follower = sorted(pair, key=lambda nm: httpx.get(nm.url + "/info").json()["current-state"] != "leader")
    api = httpx.Client(base_url=follower.url, timeout=10)
    net = {"tenantName": "default", "networkName": "gc", "encap": "vxlan", "subnet": "10.77.0.0/24"}
    assert api.post("/api/v1/networks/default:gc/", json=net).status_code == 200
    for host in ("dying", "alive", "flapping"):
        assert api.put(f"/api/v1/agents/{host}/", json={"ttl": 300}).status_code == 200
    for host, count in (("dying", 3), ("alive", 2), ("flapping", 2), ("", 1)):
        for i in range(count):
            body = {"endpointID": f"{host or 'nohost'}-{i}", "networkName": "gc", "host": host}
            assert api.post("/api/v1/endpoints/", json=body).status_code == 200
    dying_ips = {ep["ipAddress"] for ep in api.get("/api/v1/endpoints").json() if ep["host"] == "dying"}

    # "flapping" restarts: its record goes and comes back well within the grace period.
    assert api.delete("/api/v1/agents/flapping/").json()["deleted"]
    assert api.put("/api/v1/agents/flapping/", json={"ttl": 300}).status_code == 200
    gone_at = time.monotonic()
    assert api.delete("/api/v1/agents/dying/").json()["deleted"]

    def remaining() -> list[str]:
        return sorted(ep["endpointID"] for ep in api.get("/api/v1/endpoints").json())

    _wait_for(lambda: not [e for e in remaining() if e.startswith("dying")], GRACE + 10, "collection")
    assert time.monotonic() - gone_at >= GRACE, "collected before the grace period was over"
    assert remaining() == ["alive-0", "alive-1", "flapping-0", "flapping-1", "nohost-0"]
    oper = api.get("/api/v1/inspect/networks/default:gc/").json()["Oper"]
    assert oper["numEndpoints"] == 5
    assert not {ip.split("/")[0] for ip in dying_ips} & set(_addresses(oper["allocatedIPAddresses"]))

    assert _metric(leader, "netmaster_endpoints_collected_total") == 3
    assert _metric(follower, "netmaster_endpoints_collected_total") == 0
    assert leader.log_path is not None
    collected = [line for line in leader.log_path.read_text().splitlines() if '"endpoint collected"' in line]
    assert len(collected) == 3
    assert all('"host":"dying"' in line for line in collected)

    # The collector runs only while leading: after a failover the other netmaster collects.
    leader.stop()
    _wait_for(lambda: httpx.get(follower.url + "/info").json()["current-state"] == "leader", 10, "failover")
    body = {"endpointID": "alive-9", "networkName": "gc", "host": "alive"}
    assert api.post("/api/v1/endpoints/", json=body).status_code == 200
    assert api.delete("/api/v1/agents/alive/").json()["deleted"]
    _wait_for(lambda: not [e for e in remaining() if e.startswith("alive")], GRACE + 10, "collection by new leader")
    assert _metric(follower, "netmaster_endpoints_collected_total") == 3


def _addresses(ranges: str) -> list[str]:
    """Expand "10.0.0.1-10.0.0.3, 10.0.0.9" into addresses (last octet ranges only, as inspect prints them)."""
    out = []
    for part in filter(None, (p.strip() for p in ranges.split(","))):
        first, _, last = part.partition("-")
        prefix, _, lo = first.rpartition(".")
        hi = last.rpartition(".")[2] if last else lo
        out.extend(f"{prefix}.{i}" for i in range(int(lo), int(hi) + 1))
    return out


async def test_sweep_releases_expired_reservations_and_spares_valid_ones() -> None:
    store = MemoryStore()
    try:
        await ObjectService(store).ensure_defaults()
        net = {"tenantName": "default", "networkName": "r", "encap": "vxlan", "subnet": "10.78.0.0/29"}
        await ObjectService(store).apply("network", "default:r", net)
        short, long = ReservationService(store, ttl=0.05), ReservationService(store, ttl=60)
        expiring, _ = await short.create({"networkName": "r", "owner": "crashed-runtime"})
        kept, _ = await long.create({"networkName": "r"})
        await asyncio.sleep(0.1)
        collector = EndpointCollector(store, grace=60)
        assert await collector.sweep() == 0
        assert [r["reservationID"] for r in (await long.list())[0]] == [kept["reservationID"]]
        assert collector.expired._value.get() == 1
        # The released address is free again for an endpoint.
        record, _ = await EndpointService(store).create(
            {"endpointID": "e", "networkName": "r", "ipAddress": expiring["ipAddress"]}
        )
        assert record["ipAddress"] == expiring["ipAddress"]
    finally:
        await store.close()
