"""The list+watch client and informer against real netmaster processes (SQLite and etcd stores)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from contiv_api.informer import Informer
from contiv_api.netmaster_client import AGENT_HEADER, NetmasterClient, NetmasterError, NetmasterUnavailableError
from testbed.etcd import EtcdCluster, shared_etcd
from testbed.netmaster import NetmasterProcess
from testbed.ports import free_port
from testbed.waiting import until
from tests.cluster_state.follow import Recorder, cache_matches_snapshot, make_network


@pytest.fixture
def sqlite_netmaster(tmp_path: Path) -> Iterator[NetmasterProcess]:
    with NetmasterProcess.start(f"sqlite:///{tmp_path}/nm.db", log_path=tmp_path / "nm.log") as nm:
        yield nm


async def test_informer_follows_objects_and_endpoints(sqlite_netmaster: NetmasterProcess) -> None:
    rec = Recorder()
    async with NetmasterClient(sqlite_netmaster.url, retry_for=5) as client:
        await make_network(client, "t1", "net1")
        informer = rec.informer(client)
        async with informer:
            await asyncio.wait_for(informer.wait_synced(), 10)
            assert informer.get("network", "t1:net1") is not None
            assert ("resync", "", str(informer.revision)) == rec.calls[-1]
            rec.calls.clear()

            record = await client.create_endpoint("ep1", tenant="t1", network="net1", container_id="c1", host="h1")
            assert record["ipAddress"]
            again = await client.create_endpoint("ep1", tenant="t1", network="net1", container_id="c1", host="h1")
            assert again["ipAddress"] == record["ipAddress"], "a retried create must return the same endpoint"
            await until(lambda: _has(informer, "endpoint", "ep1"), what="endpoint in cache")
            cached = informer.get("endpoint", "ep1")
            assert cached is not None
            assert cached.object is not None
            assert cached.object["ipAddress"] == record["ipAddress"]

            await client.delete_endpoint("ep1")
            await client.delete_endpoint("ep1")  # idempotent
            await until(lambda: _gone(informer, "endpoint", "ep1"), what="endpoint deleted from cache")
            assert ("add", "endpoint", "ep1") in rec.calls
            assert ("delete", "endpoint", "ep1") in rec.calls
            assert rec.calls.count(("add", "endpoint", "ep1")) == 1
            assert await cache_matches_snapshot(informer, client)


async def _has(informer: Informer, kind: str, key: str) -> bool:
    return informer.get(kind, key) is not None


async def _gone(informer: Informer, kind: str, key: str) -> bool:
    return informer.get(kind, key) is None


async def test_watch_resumes_across_netmaster_restart(tmp_path: Path) -> None:
    port = free_port()
    store_url = f"sqlite:///{tmp_path}/nm.db"
    nm = NetmasterProcess.spawn(store_url, port=port, log_path=tmp_path / "nm.log")
    rec = Recorder()
    try:
        async with NetmasterClient(nm.url, retry_for=20) as client:
            await make_network(client, "default", "n1")
            informer = rec.informer(client)
            async with informer:
                await asyncio.wait_for(informer.wait_synced(), 10)
                nm.stop(signal.SIGKILL)
                nm = await asyncio.to_thread(NetmasterProcess.spawn, store_url, port=port, log_path=tmp_path / "nm.log")
                for i in range(5):
                    await client.create_endpoint(f"ep{i}", network="n1", host="h1")
                await until(lambda: _has(informer, "endpoint", "ep4"), what="events after the restart")
                await until(lambda: cache_matches_snapshot(informer, client), what="cache == snapshot")
                assert informer.resyncs == 1, "a restart within history must resume, not re-list"
                assert [c for c in rec.calls if c[1] == "endpoint"] == [("add", "endpoint", f"ep{i}") for i in range(5)]
    finally:
        nm.stop()


@pytest.fixture
def two_netmasters_on_etcd(tmp_path: Path) -> Iterator[list[NetmasterProcess]]:
    shared_etcd().wipe()
    url = shared_etcd().url
    nms = [NetmasterProcess.spawn(url, log_path=tmp_path / f"nm{i}.log") for i in range(2)]
    yield nms
    for nm in nms:
        nm.stop()


async def test_watcher_misses_nothing_when_its_netmaster_dies(two_netmasters_on_etcd: list[NetmasterProcess]) -> None:
    first, second = two_netmasters_on_etcd
    rec = Recorder()
    async with (
        NetmasterClient([first.url, second.url], retry_for=10) as watcher_client,
        NetmasterClient(second.url, retry_for=10) as writer,
    ):
        await make_network(writer, "default", "ha")
        informer = rec.informer(watcher_client)
        async with informer:
            await asyncio.wait_for(informer.wait_synced(), 10)
            assert watcher_client.url == first.url
            await writer.create_endpoint("before", network="ha", host="h")
            await until(lambda: _has(informer, "endpoint", "before"), what="first endpoint")
            first.stop(signal.SIGKILL)
            # Changes made while the watcher is reconnecting must all arrive through the other netmaster.
            for i in range(10):
                await writer.create_endpoint(f"during{i}", network="ha", host="h")
            await writer.delete_endpoint("before")
            await until(lambda: _has(informer, "endpoint", "during9"), what="changes via the second netmaster")
            await until(lambda: cache_matches_snapshot(informer, writer), what="cache == snapshot")
            assert watcher_client.url == second.url
            assert informer.resyncs == 1
            endpoint_calls = [c for c in rec.calls if c[1] == "endpoint"]
            assert endpoint_calls == [
                ("add", "endpoint", "before"),
                *[("add", "endpoint", f"during{i}") for i in range(10)],
                ("delete", "endpoint", "before"),
            ]


async def test_compacted_revision_relists_and_diffs(tmp_path: Path) -> None:
    shared_etcd().wipe()
    rec = Recorder()
    # netmaster serves resuming watchers from its ring of recent events (--watch-history) before the
    # store: both keep 20 revisions here, so the revision is gone from both.
    args = ["--watch-history", "20"]
    with NetmasterProcess.start(shared_etcd().url + "?history=20", args=args, log_path=tmp_path / "nm.log") as nm:
        async with NetmasterClient(nm.url, retry_for=10) as client:
            await make_network(client, "default", "c")
            await client.create_endpoint("old", network="c", host="h")
            informer = rec.informer(client)
            await informer.start()
            await asyncio.wait_for(informer.wait_synced(), 10)
            await informer.stop()  # the agent is away ...
            rec.calls.clear()
            await client.delete_endpoint("old")
            for i in range(30):  # ... while more than `history` revisions pass
                await client.create_endpoint(f"new{i}", network="c", host="h")
            await asyncio.sleep(0.5)  # let the background compaction land
            async with informer:
                await until(lambda: _has(informer, "endpoint", "new29"), what="resync")
                assert informer.resyncs == 2, "a compacted revision must lead to a new snapshot"
                assert ("delete", "endpoint", "old") in rec.calls, "the resync diff reports what vanished"
                assert sum(c[0] == "add" and c[1] == "endpoint" for c in rec.calls) == 30
                assert rec.calls[-1][0] == "resync"
                assert await cache_matches_snapshot(informer, client)


async def test_endpoint_calls_retry_until_netmaster_is_up(tmp_path: Path) -> None:
    port = free_port()
    store_url = f"sqlite:///{tmp_path}/nm.db"
    with NetmasterProcess.start(store_url, port=port) as nm:
        async with NetmasterClient(nm.url) as client:
            await make_network(client, "default", "r")
    async with NetmasterClient(f"http://127.0.0.1:{port}", retry_for=20) as client:
        pending = asyncio.ensure_future(client.create_endpoint("late", network="r", host="h"))
        await asyncio.sleep(0.5)
        assert not pending.done()
        nm = await asyncio.to_thread(NetmasterProcess.spawn, store_url, port=port)
        try:
            record = await asyncio.wait_for(pending, 20)
            assert record["endpointID"] == "late"
        finally:
            nm.stop()
    async with NetmasterClient(f"http://127.0.0.1:{port}", retry_for=0.3) as client:
        with pytest.raises(NetmasterUnavailableError, match="gave up"):
            await client.delete_endpoint("late")


async def test_503_while_etcd_is_down_then_success(tmp_path: Path) -> None:
    etcd = EtcdCluster(tmp_path / "etcd", 1).start()
    try:
        store_url = etcd.url + "?timeout=1&connect_timeout=0.5"
        with NetmasterProcess.start(store_url, log_path=tmp_path / "nm.log") as nm:
            async with (
                NetmasterClient(nm.url, retry_for=0.5) as impatient,
                NetmasterClient(nm.url, retry_for=30) as patient,
            ):
                await make_network(patient, "default", "o")
                etcd.members[0].stop()
                with pytest.raises(NetmasterUnavailableError) as info:
                    await impatient.create_endpoint("x", network="o", host="h")
                assert "503" in str(info.value)
                pending = asyncio.ensure_future(patient.create_endpoint("x", network="o", host="h"))
                await asyncio.sleep(1)
                await asyncio.to_thread(etcd.restart, etcd.members[0])
                record = await asyncio.wait_for(pending, 30)
                assert record["endpointID"] == "x"
                again = await patient.create_endpoint("x", network="o", host="h")
                assert again["ipAddress"] == record["ipAddress"], "nothing half-written or duplicated"
    finally:
        etcd.stop()


async def test_bearer_token(tmp_path: Path) -> None:
    env = {"CONTIV_NETMASTER_TOKEN": "tok3n"}
    with NetmasterProcess.start("memory://", env=env) as nm:
        async with NetmasterClient(nm.url, retry_for=1) as anonymous:
            with pytest.raises(NetmasterError) as info:
                await anonymous.snapshot()
            assert info.value.status == 401
        async with NetmasterClient(nm.url, token="tok3n", retry_for=5) as client:
            informer = Informer(client)
            async with informer:
                await asyncio.wait_for(informer.wait_synced(), 10)
                assert informer.list("tenant")


async def test_agent_identity_header() -> None:
    async with NetmasterClient("http://127.0.0.1:1", agent_id="host-7", token="t") as client:
        assert client._http.headers[AGENT_HEADER] == "host-7"
        assert client._http.headers["Authorization"] == "Bearer t"


def test_no_netmaster_urls_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        NetmasterClient([])
