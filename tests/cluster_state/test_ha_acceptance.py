"""Issue 5 acceptance, with real processes: a watcher through a follower across a leader SIGKILL and a
restart of its own netmaster, while a writer keeps writing; and a complete etcd outage (SIGKILL, restart
on the same data dir) that the API reports as 503 and recovers from by itself."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contiv_api.netmaster_client import NetmasterClient, NetmasterError, NetmasterUnavailableError
from testbed.etcd import EtcdCluster, shared_etcd
from testbed.netmaster import NetmasterProcess
from testbed.waiting import until
from tests.cluster_state.follow import Recorder, cache_matches_snapshot, make_network

TTL = 2.0


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[list[NetmasterProcess]]:
    shared_etcd().wipe()
    args = ["--leader-ttl", str(TTL)]
    nms = [
        NetmasterProcess.spawn(shared_etcd().url, args=args, log_path=tmp_path / f"nm{i}.log") for i in range(3)
    ]
    yield nms
    for nm in nms:
        nm.stop()


async def _state(nm: NetmasterProcess) -> str:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(nm.url + "/info")).json()["current-state"]


class Writer:
    """Creates endpoints one after the other (deleting every fourth one's predecessor) until stopped.

    ``ops`` is what it did, in order, as the informer should report it: a create or delete the API
    confirmed. Requests are retried by the client across netmaster failures; both are idempotent, so a
    retry never produces a second event.
    """

    def __init__(self, client: NetmasterClient, network: str) -> None:
        self.client = client
        self.network = network
        self.ops: list[tuple[str, str, str]] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        i = 0
        while not self._stop.is_set():
            name = f"w{i:04}"
            await self.client.create_endpoint(name, network=self.network, host="h1")
            self.ops.append(("add", "endpoint", name))
            if i % 4 == 3:
                await self.client.delete_endpoint(f"w{i - 1:04}")
                self.ops.append(("delete", "endpoint", f"w{i - 1:04}"))
            i += 1
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()


async def test_watcher_via_follower_across_leader_kill_and_its_netmaster_restart(
    trio: list[NetmasterProcess], tmp_path: Path
) -> None:
    await until(lambda: _one_leader(trio), within=10, what="a leader")
    states = [await _state(nm) for nm in trio]
    leader = trio[states.index("leader")]
    follower, other = (nm for nm in trio if nm is not leader)
    rec = Recorder()
    async with (
        NetmasterClient([follower.url, other.url], retry_for=30, idle_timeout=8) as watch_client,
        NetmasterClient([other.url, follower.url], retry_for=30) as write_client,
    ):
        await make_network(write_client, "default", "ha")
        informer = rec.informer(watch_client)
        async with informer:
            await asyncio.wait_for(informer.wait_synced(), 10)
            assert watch_client.url == follower.url
            writer = Writer(write_client, "ha")
            writing = asyncio.ensure_future(writer.run())
            try:
                await until(lambda: _seen(rec, 20), what="events before the failover")

                leader.stop(signal.SIGKILL)
                await until(lambda: _new_leader([follower, other]), within=TTL + 8, what="a new leader")
                seen = _endpoint_calls(rec)
                await until(lambda: _seen(rec, len(seen) + 20), what="events after the failover")

                # The watcher's own netmaster restarts (on the same address): the watch moves on.
                port = int(follower.url.rsplit(":", 1)[1])
                follower.stop(signal.SIGKILL)
                seen = _endpoint_calls(rec)
                await until(lambda: _seen(rec, len(seen) + 20), what="events while its netmaster is down")
                restarted = await asyncio.to_thread(
                    NetmasterProcess.spawn,
                    shared_etcd().url,
                    port=port,
                    args=["--leader-ttl", str(TTL)],
                    log_path=tmp_path / "restarted.log",
                )
                trio.append(restarted)  # stopped by the fixture
                seen = _endpoint_calls(rec)
                await until(lambda: _seen(rec, len(seen) + 20), what="events after the restart")
            finally:
                writer.stop()
                await writing
            last = writer.ops[-1]
            await until(lambda: _last_is(rec, last), within=15, what="the writer's last change")
            await until(lambda: cache_matches_snapshot(informer, write_client), what="cache == snapshot")
            # Exactly the writer's changes, in its order: nothing missed, nothing twice, no re-list.
            assert _endpoint_calls(rec) == writer.ops
            assert len(writer.ops) >= 80
            assert informer.resyncs == 1


async def _one_leader(nms: list[NetmasterProcess]) -> bool:
    return sorted([await _state(nm) for nm in nms]) == ["follower", "follower", "leader"]


async def _new_leader(nms: list[NetmasterProcess]) -> bool:
    return "leader" in [await _state(nm) for nm in nms]


def _endpoint_calls(rec: Recorder) -> list[tuple[str, str, str]]:
    return [c for c in rec.calls if c[1] == "endpoint"]


async def _last_is(rec: Recorder, call: tuple[str, str, str]) -> bool:
    return _endpoint_calls(rec)[-1:] == [call]


async def _seen(rec: Recorder, n: int) -> bool:
    return len(_endpoint_calls(rec)) >= n


async def test_etcd_killed_then_restarted(tmp_path: Path) -> None:
    etcd = EtcdCluster(tmp_path / "etcd", 1).start()
    member = etcd.members[0]
    try:
        store_url = etcd.url + "?timeout=1&connect_timeout=0.5"
        with NetmasterProcess.start(store_url, args=["--leader-ttl", str(TTL)], log_path=tmp_path / "nm.log") as nm:
            http = httpx.AsyncClient(base_url=nm.url, timeout=10)
            rec = Recorder()
            async with NetmasterClient(nm.url, retry_for=30, idle_timeout=8) as client, http:
                await make_network(client, "default", "o", subnet="10.9.0.0/24")
                created = [(await client.create_endpoint(f"pre{i}", network="o", host="h"))["ipAddress"]
                           for i in range(10)]  # fmt: skip
                informer = rec.informer(client)
                async with informer:
                    await asyncio.wait_for(informer.wait_synced(), 10)
                    member.kill()

                    # Every kind of request answers 503 with a message that says what is wrong.
                    attempts = [
                        http.get("/healthz"),
                        http.get("/api/v1/endpoints"),
                        http.get("/api/v1/networks/"),
                        http.get("/api/v1/networks/default:o/"),
                        http.post("/api/v1/tenants/t-outage/", json={"tenantName": "t-outage"}),
                        http.post("/api/v1/endpoints/", json={"endpointID": "during", "networkName": "o"}),
                        http.delete("/api/v1/endpoints/pre0/"),
                    ]
                    for attempt in attempts:
                        resp = await attempt
                        assert resp.status_code == 503, f"{resp.request.method} {resp.request.url}: {resp.text}"
                        message = resp.json()["error"]
                        assert "state store unavailable" in message
                        assert member.endpoint in message, message
                    with pytest.raises(NetmasterUnavailableError):
                        async with NetmasterClient(nm.url, retry_for=0.5) as impatient:
                            await impatient.create_endpoint("during2", network="o")

                    await asyncio.to_thread(etcd.restart, member)
                    # Service resumes by itself: the same netmaster process, nothing restarted.
                    await until(lambda: _healthy(http), within=15, what="/healthz 200 again")
                    record = await client.create_endpoint("after", network="o", host="h")
                    await until(lambda: _has_endpoint(informer, "after"), within=15, what="watch resumes")
                    await until(lambda: _leads(http), within=TTL + 10, what="a leader again")

                    # Everything written before is there, once; what was refused was not written at all.
                    endpoints = {ep["endpointID"]: ep for ep in await client.request("GET", "/api/v1/endpoints")}
                    assert sorted(endpoints) == sorted([f"pre{i}" for i in range(10)] + ["after"])
                    assert [endpoints[f"pre{i}"]["ipAddress"] for i in range(10)] == created
                    assert record["ipAddress"] not in created
                    oper = (await client.request("GET", "/api/v1/inspect/networks/default:o/"))["Oper"]
                    assert oper["numEndpoints"] == 11
                    assert oper["allocatedAddressesCount"] == 11
                    with pytest.raises(NetmasterError) as missing:
                        await client.request("GET", "/api/v1/tenants/t-outage/")
                    assert missing.value.status == 404
                    await until(lambda: cache_matches_snapshot(informer, client), what="cache == snapshot")
                    assert [c for c in rec.calls if c[1] == "endpoint"].count(("add", "endpoint", "after")) == 1
    finally:
        etcd.stop()


async def _healthy(http: httpx.AsyncClient) -> bool:
    return (await http.get("/healthz")).status_code == 200


async def _leads(http: httpx.AsyncClient) -> bool:
    return (await http.get("/info")).json()["current-state"] == "leader"


async def _has_endpoint(informer, name: str) -> bool:
    return informer.get("endpoint", name) is not None
