"""Teardown without netmaster: a DEL while netmaster is down succeeds at once, leaves nothing on the
host (veth, OVS port, flows, local record), and the address returns to netmaster's pool when it is
back, also when the agent restarts in between, and also for a delete a crash interrupted. Through
the agent's endpoint API, the real ``contiv`` CNI plugin binary, and the Docker driver's socket.

Real netmaster process, real agents, real namespaces (its own cluster: it stops netmaster).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from agent.plumbing import host_ifname
from testbed.cluster import SimHost, in_ns
from testbed.cluster.prereq import running
from testbed.fe_cluster import FeCluster
from testbed.netcheck import ping_eventually
from testbed.sync_cluster import Netmaster, SyncCluster, add_endpoint, delete_endpoint
from testbed.waiting import eventually

T = "tdown"
SUBNET = "10.191.0"


def _cni(binary: Path, command: str, conf: dict[str, Any], container_id: str, netns: str) -> tuple[int, Any]:
    """The plugin binary run as a runtime runs it: CNI_* environment, configuration on stdin."""
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
           "CNI_PATH": str(binary.parent)}
    proc = subprocess.run([str(binary)], input=json.dumps(conf), env=env, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.fixture(scope="module")
def sync_cluster() -> Iterator[FeCluster]:
    """Agents that also serve the CNI plugin and the Docker driver (no runtime needed here)."""
    yield from running(FeCluster(docker=True))


def _ready(host: SimHost) -> None:
    """The agent follows netmaster again (an earlier test of the module stopped and restarted it)."""
    eventually(lambda: host.get("/status")[0] == 200, 40, f"{host.name} synced with netmaster")


def _add(host: SimHost, ep_id: str, ns: str) -> dict:
    status, body = add_endpoint(host, endpoint_id=ep_id, tenant=T, network="net", netns=ns)
    assert status == 200, body
    return body


def _leftovers(host: SimHost, ep: dict) -> list[str]:
    """What of endpoint *ep* (an add's answer) is still on *host*."""
    found = []
    if in_ns(host.netns, "ip", "link", "show", ep["host_ifname"], check=False).returncode == 0:
        found.append("veth")
    if ep["host_ifname"] in host.ovs.run("ovs-vsctl", "list-ports", host.bridge).split():
        found.append("OVS port")
    if any(ep["mac"] in line for line in host.flows()):
        found.append("flows")
    if ep["endpoint_id"] in {e["endpoint_id"] for e in host.get("/endpoints")[1]}:
        found.append("local record")
    return found


def _pending(host: SimHost) -> float:
    _, text = host.get("/metrics")
    match = re.search(r"^contiv_agent_pending_endpoint_releases ([0-9.]+)$", text, re.M)
    assert match, "pending releases gauge missing"
    return float(match.group(1))


def _in_netmaster(nm: Netmaster, endpoint_id: str) -> bool:
    return nm.endpoint(endpoint_id).status_code == 200


def test_delete_while_netmaster_is_down_and_across_an_agent_restart(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    nm.tenant_with_network(T, "vxlan", f"{SUBNET}.0/24")
    h1, h2 = sync_cluster.hosts
    eps = {x: _add(h1, f"{T}-{x}", sync_cluster.container(f"{T}{x}")) for x in "acd"}
    b = _add(h2, f"{T}-b", sync_cluster.container(f"{T}b"))
    assert ping_eventually(f"{sync_cluster.prefix}c{T}a", b["ip"])
    releases = h1.rundir / "agent-state" / "releases"

    sync_cluster.stop_netmaster()
    started = time.monotonic()
    assert delete_endpoint(h1, f"{T}-a") == (200, {"deleted": True})
    assert time.monotonic() - started < 10, "teardown does not wait for netmaster (--netmaster-wait 2 s at most)"
    assert _leftovers(h1, eps["a"]) == [], "the host side goes at once"
    assert _pending(h1) == 1
    assert delete_endpoint(h1, f"{T}-never") == (200, {"deleted": False}), "an id unknown here: nothing to do"
    eventually(lambda: h1.get("/status")[0] == 503, 20, "h1 noticing netmaster is away")
    started = time.monotonic()
    assert delete_endpoint(h1, f"{T}-a") == (200, {"deleted": False}), "a repeated DEL succeeds"
    assert time.monotonic() - started < 2, "with netmaster known to be away, DEL does not even try"

    # the agent restarts during the outage; d's delete had been recorded when the agent died (as a
    # crash between writing the release and removing the host side leaves it)
    sync_cluster.kill_agent(h1)
    (releases / f"{quote(f'{T}-d', safe='')}.release").touch()
    sync_cluster.start_agent(h1)
    eventually(lambda: _leftovers(h1, eps["d"]) == [], 20, "the interrupted delete finished at start")
    assert delete_endpoint(h1, f"{T}-c") == (200, {"deleted": True})
    assert _leftovers(h1, eps["c"]) == []
    assert _leftovers(h1, eps["a"]) == []
    assert _pending(h1) == 4  # a, c, d, and the unknown id (released only if netmaster holds it for h1)

    sync_cluster.start_netmaster()
    for x in "acd":
        eventually(lambda x=x: not _in_netmaster(nm, f"{T}-{x}"), 40, f"netmaster releasing {T}-{x}")
    eventually(lambda: _pending(h1) == 0, 20, "no release pending")
    assert list(releases.iterdir()) == []
    assert _in_netmaster(nm, f"{T}-b"), "the other host's endpoint is untouched"
    # the addresses are free again: netmaster hands each out to a new endpoint
    for x in "acd":
        resp = nm.http.post("/api/v1/endpoints/", json={"endpointID": f"{T}-again-{x}", "tenantName": T,
                                                        "networkName": "net", "ipAddress": eps[x]["ip"]})
        assert resp.status_code == 200, resp.text
        assert nm.ok(nm.http.delete(f"/api/v1/endpoints/{T}-again-{x}/"))["deleted"]
    assert delete_endpoint(h2, f"{T}-b") == (200, {"deleted": True})


def test_readd_after_a_pending_release_gets_a_fresh_endpoint(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    """ADD of an id whose release is pending: the old endpoint is released first (ADD needs netmaster
    anyway), then the new one is created and plumbed from a fresh netmaster record."""
    nm.tenant_with_network(T, "vxlan", f"{SUBNET}.0/24")
    h1, _ = sync_cluster.hosts
    _ready(h1)
    ns = sync_cluster.container(f"{T}r")
    _add(h1, f"{T}-r", ns)
    sync_cluster.stop_netmaster()
    assert delete_endpoint(h1, f"{T}-r") == (200, {"deleted": True})
    status, body = add_endpoint(h1, endpoint_id=f"{T}-r", tenant=T, network="net", netns=ns)
    assert (status, body["kind"]) == (503, "unavailable"), body
    sync_cluster.start_netmaster()

    def added() -> dict | None:
        status, body = add_endpoint(h1, endpoint_id=f"{T}-r", tenant=T, network="net", netns=ns)
        return body if status == 200 else None

    again = eventually(added, 40, "the add once netmaster is back")
    assert h1.get(f"/endpoints/{T}-r/check") == (200, {"ok": True})
    assert nm.ok(nm.endpoint(f"{T}-r"))["ipAddress"] == again["ip"]
    assert _pending(h1) == 0
    assert delete_endpoint(h1, f"{T}-r") == (200, {"deleted": True})
    eventually(lambda: not _in_netmaster(nm, f"{T}-r"), 20, "the release")


def test_cni_del_and_docker_delete_endpoint_while_netmaster_is_down(sync_cluster: FeCluster, nm: Netmaster,
                                                                     tmp_path: Path) -> None:
    from agent.cni.install import install

    nm.tenant_with_network(T, "vxlan", f"{SUBNET}.0/24")
    h1, _ = sync_cluster.hosts
    _ready(h1)
    cni = install(tmp_path / "bin")[0]
    conf = {"cniVersion": "1.1.0", "name": "td", "type": "contiv", "tenant": T, "network": "net",
            "agentSocket": sync_cluster.cni_socket(h1)}
    ns = sync_cluster.container(f"{T}cni")
    code, added = _cni(cni, "ADD", conf, "tdcni1", f"/var/run/netns/{ns}")
    assert code == 0, added
    cni_ep = {"endpoint_id": "tdcni1:eth0", "host_ifname": host_ifname("tdcni1:eth0"),
              "mac": added["interfaces"][1]["mac"]}
    docker = httpx.Client(transport=httpx.HTTPTransport(uds=str(sync_cluster.docker_plugin_dir(h1) / "contiv.sock")),
                          base_url="http://docker", timeout=30)

    def driver(call: str, **body: Any) -> dict[str, Any]:
        resp = docker.post(f"/NetworkDriver.{call}", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    net_id, ep_id = "d0" * 32, "e1" * 32
    assert driver("CreateNetwork", NetworkID=net_id, Options={"com.docker.network.generic": {
        "tenant": T, "network": "net"}}, IPv4Data=[]) == {}
    created = driver("CreateEndpoint", NetworkID=net_id, EndpointID=ep_id, Interface={})
    assert "Err" not in created, created
    joined = driver("Join", NetworkID=net_id, EndpointID=ep_id, SandboxKey="/var/run/docker/netns/x")
    docker_ep = {"endpoint_id": ep_id, "host_ifname": host_ifname(ep_id),
                 "mac": created["Interface"]["MacAddress"]}
    assert joined["InterfaceName"]["SrcName"]

    sync_cluster.stop_netmaster()
    assert _cni(cni, "DEL", conf, "tdcni1", f"/var/run/netns/{ns}") == (0, None)
    assert _leftovers(h1, cni_ep) == []
    assert driver("Leave", NetworkID=net_id, EndpointID=ep_id) == {}
    assert driver("DeleteEndpoint", NetworkID=net_id, EndpointID=ep_id) == {}
    assert _leftovers(h1, docker_ep) == []
    assert _cni(cni, "DEL", conf, "tdcni1", f"/var/run/netns/{ns}") == (0, None), "a repeated DEL"

    sync_cluster.start_netmaster()
    for endpoint_id in (cni_ep["endpoint_id"], ep_id):
        eventually(lambda e=endpoint_id: not _in_netmaster(nm, e), 40, f"netmaster releasing {endpoint_id}")
    eventually(lambda: _pending(h1) == 0, 20, "no release pending")
    assert driver("DeleteNetwork", NetworkID=net_id) == {}


def test_add_right_after_netmaster_returns_waits_for_the_first_state(sync_cluster: FeCluster, nm: Netmaster) -> None:
    """An agent started while netmaster is down has no state; its watch retries with a backoff that
    grows to seconds. The ADD that comes the moment netmaster is back does not fail on that delay:
    it tells the watch to reconnect now and waits (at most --netmaster-wait) for the first state."""
    nm.tenant_with_network(T, "vxlan", f"{SUBNET}.0/24")
    h1, _ = sync_cluster.hosts
    _ready(h1)
    ns = sync_cluster.container(f"{T}w")
    sync_cluster.stop_netmaster()
    sync_cluster.kill_agent(h1)
    log_before = len(sync_cluster.agent_log(h1))
    sync_cluster.start_agent(h1)

    def long_retry_delay() -> bool:
        delays = re.findall(r"(?:snapshot failed|watch interrupted) .* in ([0-9.]+)s$",
                            sync_cluster.agent_log(h1)[log_before:], re.M)
        return bool(delays) and float(delays[-1]) >= 1.5

    eventually(long_retry_delay, 60, "the agent's watch backing off by seconds")
    sync_cluster.start_netmaster()
    status, body = add_endpoint(h1, endpoint_id=f"{T}-w", tenant=T, network="net", netns=ns)
    assert status == 200, body
    assert h1.get(f"/endpoints/{T}-w/check") == (200, {"ok": True})
    assert delete_endpoint(h1, f"{T}-w") == (200, {"deleted": True})
    eventually(lambda: not _in_netmaster(nm, f"{T}-w"), 20, "the release")
