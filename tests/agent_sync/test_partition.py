"""Partition safety (issue 14 item 4): a host cut off from netmaster for longer than the endpoint GC
grace period loses nothing. netmaster collects its endpoints meanwhile; its containers keep talking to
the other host (a ping every 20 ms loses no packet, also while its agent, then the other host's,
restarts during the partition), and when the partition heals its agent re-claims them with their
addresses. An address given to another endpoint meanwhile is a conflict: the container
is kept, flagged in inspect and metrics, and reported in its agent record in netmaster.

The cluster of this module runs netmaster with a 3 s GC grace and agents whose records live 3 s.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from netmaster.cli.netctl import cli
from testbed.cluster import SimHost
from testbed.cluster.prereq import running
from testbed.netcheck import Pinger, gap_report, ping_eventually, quiet_gap
from testbed.netctl import parse_table
from testbed.sync_cluster import Netmaster, SyncCluster, add_endpoint, delete_endpoint, wait_revision
from testbed.waiting import eventually

GRACE = 3


@pytest.fixture(scope="module")
def cluster() -> Iterator[SyncCluster]:
    yield from running(SyncCluster(n_hosts=2, netmaster_args=("--endpoint-gc-grace", str(GRACE)),
                                   agent_args=("--agent-ttl", "3")))


@pytest.fixture
def nm(cluster: SyncCluster) -> Netmaster:
    assert cluster.netmaster is not None
    return Netmaster(cluster.netmaster.url)


def _add(host: SimHost, ep_id: str, tenant: str, ns: str, **kw: object) -> dict:
    status, body = add_endpoint(host, endpoint_id=ep_id, tenant=tenant, network="net", netns=ns, **kw)
    assert status == 200, body
    return body


def _listed(nm: Netmaster) -> dict[str, dict]:
    return {ep["endpointID"]: ep for ep in nm.ok(nm.http.get("/api/v1/endpoints/"))}


def _no_address_held_twice(nm: Netmaster) -> None:
    held = Counter((ep["tenantName"], ep["networkName"], ep["ipAddress"]) for ep in _listed(nm).values())
    assert not [a for a, n in held.items() if n > 1], held


def _metric(host: SimHost, name: str) -> float:
    _, text = host.get("/metrics")
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in the agent's metrics"
    return float(found.group(1))


def _partition_until_collected(cluster: SyncCluster, nm: Netmaster, host: SimHost, ep_ids: list[str]) -> float:
    """Cut *host* off until netmaster has collected *ep_ids*; the seconds it took."""
    started = time.monotonic()
    cluster.cut_off(host)
    eventually(lambda: not set(ep_ids) & set(_listed(nm)), timeout=60, what="endpoint GC of the cut-off host")
    return time.monotonic() - started


def test_a_host_cut_off_longer_than_the_gc_grace_keeps_its_traffic_and_endpoints(
        cluster: SyncCluster, nm: Netmaster) -> None:
    nm.tenant_with_network("p1", "vxlan", "10.81.0.0/24")
    h1, h2 = cluster.hosts
    a, b = cluster.container("p1a"), cluster.container("p1b")
    ra, rb = _add(h1, "p1-a", "p1", a), _add(h2, "p1-b", "p1", b)
    assert ping_eventually(a, rb["ip"])
    quiet = quiet_gap(a, rb["ip"])
    pinger = Pinger(a, rb["ip"])
    try:
        cut_for = _partition_until_collected(cluster, nm, h1, ["p1-a"])
        assert cut_for > GRACE
        assert h1.get("/status")[1]["reason"].startswith("netmaster unreachable")
        time.sleep(1)  # traffic goes on after the collection, on both hosts
        cluster.kill_agent(h1)  # and across a restart of the cut-off agent (it applies its saved state)
        cluster.start_agent(h1)
        cluster.kill_agent(h2)  # and of the other one, which keeps the collected endpoint it retained
        cluster.start_agent(h2)
        assert h2.get("/inspect/driver")[1]["netmaster"]["retained_remote"] == ["p1-a"]
        time.sleep(1)
        cluster.reconnect(h1)
        eventually(lambda: _listed(nm).get("p1-a", {}).get("ipAddress") == ra["ip"], timeout=30,
                   what="the returned agent re-claiming its endpoint")
        time.sleep(1)
    finally:
        result = pinger.stop()
    print("\n" + gap_report(f"partition of {cut_for:.1f} s from netmaster, endpoint collected", result, quiet))
    assert len(result.replies) > 100
    assert (result.lost, result.duplicates) == (0, 0), f"lost {result.lost} pings, {result.duplicates} duplicates"
    listed = _listed(nm)
    assert (listed["p1-a"]["host"], listed["p1-a"]["macAddress"]) == (h1.name, ra["mac"])
    _no_address_held_twice(nm)
    assert h1.get("/endpoints/p1-a/check") == (200, {"ok": True})
    eventually(lambda: h1.get("/status")[0] == 200, timeout=20, what="h1 ready again")
    assert _metric(h1, "contiv_agent_endpoint_reclaimed_count_total") >= 1
    assert _metric(h1, "contiv_agent_endpoint_conflicts") == 0
    eventually(lambda: not h2.get("/inspect/driver")[1]["netmaster"]["retained_remote"], timeout=20,
               what="h2 following the re-claimed endpoint instead of its retained copy")
    wait_revision(cluster, nm.post("tenants", "p1", tenantName="p1"))
    assert ping_eventually(b, ra["ip"])
    for host, ep in ((h1, "p1-a"), (h2, "p1-b")):
        assert delete_endpoint(host, ep) == (200, {"deleted": True})


def test_an_address_reassigned_during_the_partition_is_a_flagged_conflict(
        cluster: SyncCluster, nm: Netmaster) -> None:
    nm.tenant_with_network("p2", "vxlan", "10.82.0.0/24")
    h1, h2 = cluster.hosts
    a, b, x = cluster.container("p2a"), cluster.container("p2b"), cluster.container("p2x")
    ra, rb = _add(h1, "p2-a", "p2", a), _add(h2, "p2-b", "p2", b)
    assert ping_eventually(a, rb["ip"])
    _partition_until_collected(cluster, nm, h1, ["p2-a"])
    rx = _add(h2, "p2-x", "p2", x, requested_ip=ra["ip"])  # the freed address goes to a new container
    cluster.reconnect(h1)

    def reported() -> list[dict]:
        resp = nm.http.get(f"/api/v1/agents/{h1.name}/")  # 404 until h1's first heartbeat after the heal
        return resp.json().get("conflicts", []) if resp.status_code == 200 else []

    eventually(lambda: [c["endpointID"] for c in reported()] == ["p2-a"], timeout=30,
               what="the conflict reported in h1's agent record")
    assert reported()[0]["ipAddress"] == ra["ip"]
    listing = CliRunner().invoke(cli, ["--netmaster", cluster.netmaster_url, "agent", "ls"])
    assert {r["Host"]: r["Conflicts"] for r in parse_table(listing.output)}[h1.name] == "p2-a", listing.output
    listed = _listed(nm)
    assert "p2-a" not in listed
    assert listed["p2-x"]["ipAddress"] == rx["ip"] == ra["ip"]
    _no_address_held_twice(nm)
    # kept: port, veth and address in place, flagged in inspect and metrics
    assert h1.get("/endpoints/p2-a/check") == (200, {"ok": True})
    assert "p2-a" in h1.get("/inspect/driver")[1]["netmaster"]["conflicts"]
    assert any(e["id"] == "p2-a" for e in h1.get("/inspect/driver")[1]["endpoints"])
    assert _metric(h1, "contiv_agent_endpoint_conflicts") == 1
    assert "address conflict" in cluster.agent_log(h1)
    # The other holder goes: the re-claim retried meanwhile succeeds and the flag clears by itself.
    assert delete_endpoint(h2, "p2-x") == (200, {"deleted": True})
    eventually(lambda: _listed(nm).get("p2-a", {}).get("ipAddress") == ra["ip"], timeout=30,
               what="the re-claim after the conflict ended")
    eventually(lambda: not reported(), timeout=20, what="the conflict withdrawn from h1's agent record")
    assert _metric(h1, "contiv_agent_endpoint_conflicts") == 0
    _no_address_held_twice(nm)
    assert ping_eventually(b, ra["ip"], timeout=15)
    for host, ep in ((h1, "p2-a"), (h2, "p2-b")):
        assert delete_endpoint(host, ep) == (200, {"deleted": True})
