"""Agents following a real netmaster: objects created over REST reach both hosts, endpoints added
through EndpointOps (the front ends' path) talk across hosts, policy rules apply and go, and the
agent and netmaster can each go away without existing traffic noticing.

Every test uses its own tenant and subnet on the module's cluster; the netmaster outage test runs
last because it restarts netmaster.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from testbed.cluster import SimHost, in_ns
from testbed.netcheck import Pinger, http_ok, http_server, ping, ping_eventually
from testbed.sync_cluster import Netmaster, SyncCluster, add_endpoint, delete_endpoint, wait_revision
from testbed.waiting import eventually

_n = itertools.count(1)


def _tenant() -> tuple[str, int]:
    """A fresh tenant name and a /24 index for its subnet."""
    i = next(_n)
    return f"t{i}", 60 + i


def _add(host: SimHost, ep_id: str, tenant: str, ns: str | None, **kw: object) -> dict:
    status, body = add_endpoint(host, endpoint_id=ep_id, tenant=tenant, network="net", netns=ns, **kw)
    assert status == 200, body
    return body


def _ports(host: SimHost) -> set[str]:
    return set(host.ovs.run("ovs-vsctl", "list-ports", host.bridge).split())


def _link_exists(host: SimHost, name: str) -> bool:
    return in_ns(host.netns, "ip", "link", "show", name, check=False).returncode == 0


def _mtu(netns: str, name: str) -> int:
    return int(json.loads(in_ns(netns, "ip", "-j", "link", "show", name).stdout)[0]["mtu"])


def _flows_without_cookies(host: SimHost) -> list[str]:
    return sorted(re.sub(r"cookie=0x[0-9a-f]+, ?", "", line) for line in host.flows())


def test_agents_register_and_converge(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    agents = {a["hostLabel"]: a for a in nm.ok(nm.http.get("/api/v1/agents/"))}
    for i, host in enumerate(sync_cluster.hosts, start=1):
        assert agents[host.name]["vtepIP"] == host.vtep_ip
        assert agents[host.name]["ctrlIP"] == f"{sync_cluster.ctrl_net}.{i}"
    t, _ = _tenant()
    nm.tenant_with_network(t, "vxlan", "10.59.0.0/24")
    nm.post("policys", f"{t}:p", tenantName=t, policyName="p")
    nm.post("endpointGroups", f"{t}:g", tenantName=t, groupName="g", networkName="net", policies=["p"])
    rev = nm.post("rules", f"{t}:p:1", tenantName=t, policyName="p", ruleId="1", direction="in", action="deny",
                  protocol="tcp", priority=1)
    wait_revision(sync_cluster, rev)
    for host in sync_cluster.hosts:
        assert host.get("/status") == (200, {"ready": True, "reason": "ready"})
        _, info = host.get("/inspect/driver")
        assert sorted(info["vteps"]) == sorted(h.vtep_ip for h in sync_cluster.hosts if h is not host)


@pytest.mark.parametrize("encap", ["vlan", "vxlan"])
def test_endpoints_on_two_hosts_reach_each_other(sync_cluster: SyncCluster, nm: Netmaster, encap: str) -> None:
    t, i = _tenant()
    nm.tenant_with_network(t, encap, f"10.{i}.0.0/24", gateway=f"10.{i}.0.254")
    h1, h2 = sync_cluster.hosts
    a, b = sync_cluster.container(f"{t}a"), sync_cluster.container(f"{t}b")
    ra = _add(h1, f"{t}-a", t, f"/var/run/netns/{a}")  # a path, as CNI passes it
    rb = _add(h2, f"{t}-b", t, b)  # a name under /run/netns
    assert (ra["ip"], rb["ip"]) == (f"10.{i}.0.1", f"10.{i}.0.2")
    assert ra["gateway"] == f"10.{i}.0.254"
    assert ra["prefix_len"] == 24
    if encap == "vxlan":
        assert (ra["mtu"], ra["vlan"]) == (1450, 0)
        assert ra["vni"] > 0
    else:
        assert (ra["mtu"], ra["vni"]) == (1500, 0)
        assert ra["vlan"] > 0
    # The veth is made before netmaster's answer, with the MTU this host expected: both ends end up right.
    for host, res, ns in ((h1, ra, a), (h2, rb, b)):
        assert (_mtu(host.netns, res["host_ifname"]), _mtu(ns, "eth0")) == (res["mtu"], res["mtu"])
    assert ping_eventually(a, rb["ip"])
    assert ping(b, ra["ip"])
    assert h1.get(f"/endpoints/{t}-a/check") == (200, {"ok": True})
    assert [e["endpoint_id"] for e in h1.get("/endpoints")[1]].count(f"{t}-a") == 1
    # The same add again (a runtime retrying) answers the same endpoint; another container may not take it.
    assert _add(h1, f"{t}-a", t, f"/var/run/netns/{a}") == ra
    status, body = add_endpoint(h1, endpoint_id=f"{t}-a", tenant=t, network="net", netns=b, container_id="x")
    assert (status, body["kind"]) == (409, "conflict")
    for host, ep in ((h1, f"{t}-a"), (h2, f"{t}-b")):
        assert delete_endpoint(host, ep) == (200, {"deleted": True})


def test_policy_rule_from_netmaster_is_enforced(sync_cluster: SyncCluster, nm: Netmaster, tmp_path: Path) -> None:
    t, i = _tenant()
    nm.tenant_with_network(t, "vxlan", f"10.{i}.0.0/24")
    nm.post("policys", f"{t}:p", tenantName=t, policyName="p")
    nm.post("endpointGroups", f"{t}:srv", tenantName=t, groupName="srv", networkName="net", policies=["p"])
    h1, h2 = sync_cluster.hosts
    c, s = sync_cluster.container(f"{t}c"), sync_cluster.container(f"{t}s")
    _add(h1, f"{t}-c", t, c)
    server_ip = _add(h2, f"{t}-s", t, s, group="srv")["ip"]
    servers = [http_server(s, port, tmp_path) for port in (8000, 8001)]
    try:
        assert ping_eventually(c, server_ip)
        assert http_ok(c, server_ip, 8001)  # a group whose policy has no rules allows everything
        nm.post("rules", f"{t}:p:1", tenantName=t, policyName="p", ruleId="1", direction="in", action="deny",
                protocol="tcp", priority=1)
        rev = nm.post("rules", f"{t}:p:2", tenantName=t, policyName="p", ruleId="2", direction="in",
                      action="allow", protocol="tcp", port=8000, priority=10)
        wait_revision(sync_cluster, rev)
        assert http_ok(c, server_ip, 8000)
        assert not http_ok(c, server_ip, 8001, timeout=1)
        wait_revision(sync_cluster, nm.delete("rules", f"{t}:p:2"))
        assert not http_ok(c, server_ip, 8000, timeout=1)
        wait_revision(sync_cluster, nm.delete("rules", f"{t}:p:1"))
        assert http_ok(c, server_ip, 8000)
        assert http_ok(c, server_ip, 8001)
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        delete_endpoint(h1, f"{t}-c")
        delete_endpoint(h2, f"{t}-s")


def _remote_ids(host: SimHost) -> set[str]:
    return {ep["id"] for ep in host.get("/inspect/driver")[1].get("remote_endpoints", [])}


def test_a_host_gets_a_tenants_endpoints_once_it_has_one_there(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    """Per-host span (netmaster.api.span, tenant grain by default): h1, without an endpoint in tenant u,
    is not sent h2's endpoint there (not in its state at a revision after its creation); h1's first
    endpoint in u brings it, and the two containers talk."""
    t, i = _tenant()
    u, j = _tenant()
    nm.tenant_with_network(t, "vxlan", f"10.{i}.0.0/24")
    nm.tenant_with_network(u, "vxlan", f"10.{j}.0.0/24")
    h1, h2 = sync_cluster.hosts
    a, b, c, d = (sync_cluster.container(f"{t}{x}") for x in "abcd")
    try:
        _add(h1, f"{t}-a", t, a)
        _add(h2, f"{t}-b", t, b)
        rc = _add(h2, f"{t}-c", u, c)
        wait_revision(sync_cluster, int(nm.http.get("/healthz").json()["revision"]))
        assert f"{t}-b" in _remote_ids(h1), "an endpoint of a tenant h1 has an endpoint in"
        assert f"{t}-c" not in _remote_ids(h1)
        assert h1.get(f"/inspect/endpoint/{t}-c")[0] == 404, "h1 does not know c at all"

        rd = _add(h1, f"{t}-d", u, d)
        eventually(lambda: f"{t}-c" in _remote_ids(h1), what="c on h1 after h1's first endpoint in u")
        assert ping_eventually(d, rc["ip"])
        assert ping(c, rd["ip"])
    finally:
        for host, ep in ((h1, "a"), (h2, "b"), (h2, "c"), (h1, "d")):
            delete_endpoint(host, f"{t}-{ep}")


def test_delete_removes_port_veth_flows_and_netmaster_endpoint(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    t, i = _tenant()
    nm.tenant_with_network(t, "vxlan", f"10.{i}.0.0/24")
    h1 = sync_cluster.hosts[0]
    ns = sync_cluster.container(f"{t}a")
    res = _add(h1, f"{t}-a", t, ns)
    assert res["host_ifname"] in _ports(h1)
    assert any(res["ip"] in f for f in h1.flows())
    assert delete_endpoint(h1, f"{t}-a") == (200, {"deleted": True})
    assert res["host_ifname"] not in _ports(h1)
    assert not _link_exists(h1, res["host_ifname"])
    assert in_ns(ns, "ip", "link", "show", "eth0", check=False).returncode != 0
    assert not any(res["ip"] in f or res["mac"] in f for f in h1.flows())
    assert nm.endpoint(f"{t}-a").status_code == 404
    assert all(e["endpoint_id"] != f"{t}-a" for e in h1.get("/endpoints")[1])
    assert delete_endpoint(h1, f"{t}-a") == (200, {"deleted": False})  # idempotent


def test_failed_add_leaves_nothing_behind(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    t, i = _tenant()
    nm.tenant_with_network(t, "vxlan", f"10.{i}.0.0/24")
    h1 = sync_cluster.hosts[0]
    ns = sync_cluster.container(f"{t}a")
    ports, links = _ports(h1), in_ns(h1.netns, "ip", "-o", "link").stdout.count("\n")
    endpoints = nm.ok(nm.http.get("/api/v1/endpoints/"))

    status, body = add_endpoint(h1, endpoint_id=f"{t}-a", tenant=t, network="nope", netns=ns)
    assert (status, body["kind"]) == (404, "not_found")
    # Plumbing fails after netmaster allocated the endpoint ("lo" exists in the namespace): rolled back.
    status, body = add_endpoint(h1, endpoint_id=f"{t}-b", tenant=t, network="net", netns=ns, ifname="lo")
    assert (status, body["kind"]) == (500, "internal"), body
    status, body = add_endpoint(h1, endpoint_id=f"{t}-c", tenant=t, network="net", netns=f"{ns}-missing")
    assert (status, body["kind"]) == (400, "invalid")
    # netmaster refuses an address outside the subnet, after the agent made the veth and port meanwhile
    status, body = add_endpoint(h1, endpoint_id=f"{t}-e", tenant=t, network="net", netns=ns,
                                requested_ip="10.250.250.250")
    assert (status, body["kind"]) in ((400, "invalid"), (409, "conflict")), body

    assert _ports(h1) == ports
    assert in_ns(ns, "ip", "-o", "link").stdout.count("\n") == 1  # only lo
    assert in_ns(h1.netns, "ip", "-o", "link").stdout.count("\n") == links
    assert nm.ok(nm.http.get("/api/v1/endpoints/")) == endpoints
    assert h1.get("/endpoints")[1] == []
    assert nm.endpoint(f"{t}-b").status_code == 404
    # The address went back to the pool: the next endpoint gets the first one.
    assert _add(h1, f"{t}-d", t, ns)["ip"] == f"10.{i}.0.1"
    delete_endpoint(h1, f"{t}-d")


def test_create_delete_cycles_leak_nothing(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    t, i = _tenant()
    wait_revision(sync_cluster, nm.tenant_with_network(t, "vxlan", f"10.{i}.0.0/24"))  # a settled baseline
    h1 = sync_cluster.hosts[0]
    ns = sync_cluster.container(f"{t}a")
    ports, links, flows = _ports(h1), in_ns(h1.netns, "ip", "-o", "link").stdout.count("\n"), len(h1.flows())
    endpoints = nm.ok(nm.http.get("/api/v1/endpoints/"))
    for n in range(100):
        assert _add(h1, f"{t}-{n}", t, ns)["ip"] == f"10.{i}.0.1"  # the address is released each time
        assert delete_endpoint(h1, f"{t}-{n}") == (200, {"deleted": True})
    assert _ports(h1) == ports
    assert in_ns(h1.netns, "ip", "-o", "link").stdout.count("\n") == links
    assert len(h1.flows()) == flows
    assert nm.ok(nm.http.get("/api/v1/endpoints/")) == endpoints
    assert h1.get("/endpoints")[1] == []
    assert in_ns(ns, "ip", "-o", "link").stdout.count("\n") == 1  # only lo


def test_concurrent_adds_on_both_hosts(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    """A runtime starting many containers at once: parallel adds, each reconciled in turn."""
    t, i = _tenant()
    nm.tenant_with_network(t, "vlan", f"10.{i}.0.0/24")
    jobs = [(host, f"{t}-{n}", sync_cluster.container(f"{t}{n}")) for n in range(8)
            for host in [sync_cluster.hosts[n % 2]]]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: _add(job[0], job[1], t, job[2]), jobs))
    assert len({r["ip"] for r in results}) == len(jobs)
    first_ns = jobs[0][2]
    for result in results[1:]:
        assert ping_eventually(first_ns, result["ip"])
    with ThreadPoolExecutor(len(jobs)) as pool:
        assert all(pool.map(lambda job: delete_endpoint(job[0], job[1])[0] == 200, jobs))


def test_docker_style_add_leaves_container_end_in_host_namespace(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    t, i = _tenant()
    nm.tenant_with_network(t, "vlan", f"10.{i}.0.0/24")
    h1 = sync_cluster.hosts[0]
    res = _add(h1, f"{t}-d", t, None)
    assert res["netns"] is None
    assert res["host_ifname"] in _ports(h1)
    out = in_ns(h1.netns, "ip", "link", "show", res["container_ifname"]).stdout
    assert res["mac"] in out
    assert h1.get(f"/endpoints/{t}-d/check") == (200, {"ok": True})
    assert delete_endpoint(h1, f"{t}-d") == (200, {"deleted": True})
    assert not _link_exists(h1, res["container_ifname"])
    assert res["host_ifname"] not in _ports(h1)


def test_agent_restart_keeps_traffic_and_endpoints(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    t, i = _tenant()
    nm.tenant_with_network(t, "vxlan", f"10.{i}.0.0/24")
    h1, h2 = sync_cluster.hosts
    a, b = sync_cluster.container(f"{t}a"), sync_cluster.container(f"{t}b")
    _add(h1, f"{t}-a", t, a)
    rb = _add(h2, f"{t}-b", t, b)
    assert ping_eventually(a, rb["ip"])
    before = _flows_without_cookies(h1)
    pinger = Pinger(a, rb["ip"])
    time.sleep(1.0)
    sync_cluster.kill_agent(h1)
    time.sleep(0.5)
    sync_cluster.start_agent(h1)
    time.sleep(4.5)  # the restarted agent resyncs while the ping goes on (about 300 pings in all)
    result = pinger.stop()
    assert len(result.replies) > 200
    assert result.lost == 0, f"lost {result.lost} pings during the restart"
    assert _flows_without_cookies(h1) == before
    assert h1.get(f"/endpoints/{t}-a/check") == (200, {"ok": True})  # the local record survived
    for host, ep in ((h1, f"{t}-a"), (h2, f"{t}-b")):
        assert delete_endpoint(host, ep) == (200, {"deleted": True})


def test_agent_killed_right_after_add_converges_on_restart(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    """An add answers before the host's full reconcile, which runs in the background: an agent killed
    in between leaves the endpoint's own port and flows, and a restart converges to the same flows.
    The flow set the add's quick apply left equals the restarted agent's full sync exactly."""
    t, i = _tenant()
    wait_revision(sync_cluster, nm.tenant_with_network(t, "vxlan", f"10.{i}.0.0/24"))
    h1, h2 = sync_cluster.hosts
    a, b, w = (sync_cluster.container(f"{t}{x}") for x in "abw")
    _add(h1, f"{t}-w", t, w)  # h1 has an endpoint on the network, so b is in its span (netmaster.api.span)
    rb = _add(h2, f"{t}-b", t, b)
    deadline = time.monotonic() + 15  # h1 knows b before a is added: nothing else changes meanwhile
    while f"{t}-b" not in {e["id"] for e in h1.get("/inspect/driver")[1]["remote_endpoints"]}:
        assert time.monotonic() < deadline, "h1 never learned the remote endpoint"
        time.sleep(0.1)
    _add(h1, f"{t}-a", t, a)
    sync_cluster.kill_agent(h1)  # within milliseconds of the answer, before the background reconcile
    after_add = _flows_without_cookies(h1)
    sync_cluster.start_agent(h1)
    assert ping_eventually(a, rb["ip"])
    deadline = time.monotonic() + 20
    while _flows_without_cookies(h1) != after_add and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _flows_without_cookies(h1) == after_add
    assert h1.get(f"/endpoints/{t}-a/check") == (200, {"ok": True})
    for host, ep in ((h1, f"{t}-a"), (h2, f"{t}-b"), (h1, f"{t}-w")):
        assert delete_endpoint(host, ep) == (200, {"deleted": True})


def test_netmaster_outage(sync_cluster: SyncCluster, nm: Netmaster) -> None:
    """netmaster stops: traffic goes on, an agent restarted meanwhile serves its last state, adds fail
    fast with 'unavailable'; netmaster returns: adds succeed and the agents resume their watch."""
    t, i = _tenant()
    nm.tenant_with_network(t, "vxlan", f"10.{i}.0.0/24")
    h1, h2 = sync_cluster.hosts
    a, b, c = (sync_cluster.container(f"{t}{x}") for x in "abc")
    _add(h1, f"{t}-a", t, a)
    rb = _add(h2, f"{t}-b", t, b)
    assert ping_eventually(a, rb["ip"])
    before = _flows_without_cookies(h1)

    sync_cluster.stop_netmaster()
    assert ping(a, rb["ip"])
    sync_cluster.kill_agent(h1)
    sync_cluster.start_agent(h1)  # healthy on the state it saved, though netmaster is away
    eventually(lambda: "waiting for netmaster" in sync_cluster.agent_log(h1).rsplit("following netmaster", 1)[-1],
               15, "the agent saying it waits for netmaster")
    assert _flows_without_cookies(h1) == before
    assert ping(a, rb["ip"])
    started = time.monotonic()
    status, body = add_endpoint(h1, endpoint_id=f"{t}-c", tenant=t, network="net", netns=c)
    assert (status, body["kind"]) == (503, "unavailable"), body
    assert time.monotonic() - started < 10  # --netmaster-wait 2 s, plus the connect attempts
    deadline = time.monotonic() + 20
    while h2.get("/status")[0] != 503 and time.monotonic() < deadline:  # noticed at the next heartbeat
        time.sleep(0.2)
    assert h2.get("/status")[1]["ready"] is False

    sync_cluster.start_netmaster()
    deadline = time.monotonic() + 30
    while True:
        status, body = add_endpoint(h1, endpoint_id=f"{t}-c", tenant=t, network="net", netns=c)
        if status == 200 or time.monotonic() > deadline:
            break
        assert body["kind"] == "unavailable"
        time.sleep(0.5)
    assert status == 200, body
    assert ping_eventually(b, body["ip"])  # h2 learnt the new endpoint from its resumed watch
    for host, ep in ((h1, f"{t}-a"), (h2, f"{t}-b"), (h1, f"{t}-c")):
        assert delete_endpoint(host, ep) == (200, {"deleted": True})


def test_add_during_outage_waits_and_succeeds_when_netmaster_returns(sync_cluster: SyncCluster,
                                                                     nm: Netmaster) -> None:
    """With a --netmaster-wait longer than the outage, an add made while netmaster is down is not
    refused: it waits, and completes once netmaster is back. Existing traffic (a ping every 20 ms)
    loses nothing meanwhile."""
    t, i = _tenant()
    nm.tenant_with_network(t, "vxlan", f"10.{i}.0.0/24")
    h1, h2 = sync_cluster.hosts
    a, b, c = (sync_cluster.container(f"{t}{x}") for x in "abc")
    sync_cluster.kill_agent(h1)
    sync_cluster.start_agent(h1, ("--netmaster-wait", "60"))
    try:
        _add(h1, f"{t}-a", t, a)
        rb = _add(h2, f"{t}-b", t, b)
        assert ping_eventually(a, rb["ip"])
        pinger = Pinger(a, rb["ip"])
        sync_cluster.stop_netmaster()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(add_endpoint, h1, 90, endpoint_id=f"{t}-c", tenant=t, network="net", netns=c)
            time.sleep(3)
            assert not pending.done(), f"the add did not wait: {pending.result()}"
            sync_cluster.start_netmaster()
            status, body = pending.result(timeout=80)
        assert status == 200, body
        result = pinger.stop()
        assert result.lost == 0, f"existing traffic lost {result.lost} pings during the outage"
        assert ping_eventually(b, body["ip"]), "h2 learnt the endpoint added during the outage"
        for host, ep in ((h1, f"{t}-a"), (h2, f"{t}-b"), (h1, f"{t}-c")):
            assert delete_endpoint(host, ep) == (200, {"deleted": True})
    finally:
        sync_cluster.kill_agent(h1)
        sync_cluster.start_agent(h1)
