"""podman (CNI backend) runs containers on a Contiv network on two simulated hosts: they reach each
other, obey an EPG policy, leave nothing behind when removed, and a GC after a runtime crash cleans
up what the crashed runtime left."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.cluster import in_ns, leftovers
from testbed.cluster.prereq import requires
from testbed.cni import CniReply, invoke
from testbed.fe_cluster import FeCluster, busybox_rootfs, missing
from testbed.sync_cluster import Netmaster, wait_revision
from tests.frontends.podman_runtime import Podman

pytestmark = [pytest.mark.slow, requires(missing("podman", "runc"))]
T = "fepod"


@dataclass
class Env:
    cluster: FeCluster
    nm: Netmaster
    podman: list[Podman]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    cluster = FeCluster()
    try:
        cluster.up()
        nm = Netmaster(cluster.netmaster_url)
        nm.tenant_with_network(T, "vxlan", "10.61.0.0/24", gateway="10.61.0.254")
        nm.post("policys", f"{T}:no-ping", tenantName=T, policyName="no-ping")
        nm.post("rules", f"{T}:no-ping:1", tenantName=T, policyName="no-ping", ruleId="1", direction="in",
                action="deny", protocol="icmp")
        nm.post("endpointGroups", f"{T}:web", tenantName=T, groupName="web", networkName="net")
        rev = nm.post("endpointGroups", f"{T}:db", tenantName=T, groupName="db", networkName="net",
                      policies=["no-ping"])
        wait_revision(cluster, rev)
        rootfs = busybox_rootfs(tmp_path_factory.mktemp("rootfs"))
        runtimes = []
        for host in cluster.hosts:
            pm = Podman(cluster.root / host.name / "podman", host.netns, rootfs)
            for group in ("web", "db"):
                pm.network(f"fe-{group}", cluster.cni_socket(host), tenant=T, network="net", group=group)
            runtimes.append(pm)
        yield Env(cluster, nm, runtimes)
    finally:
        for pm in locals().get("runtimes", []):
            pm("rm", "-a", "-f", "-t", "0", check=False)
        cluster.down()
    assert leftovers(cluster.prefix) == []


def unmount_under(path: str) -> None:
    with open("/proc/mounts") as f:
        targets = [line.split()[1] for line in f if line.split()[1].startswith(path)]
    for target in sorted(targets, reverse=True):
        subprocess.run(["umount", target], check=False)
    if path.startswith("/run/netns/") and os.path.exists(path):
        os.unlink(path)


def pings(pm: Podman, name: str, ip: str, attempts: int = 1) -> bool:
    for _ in range(attempts):
        if pm.exec(name, "ping", "-c", "1", "-W", "1", ip).returncode == 0:
            return True
        time.sleep(0.3)
    return False


def endpoints_of(env: Env, container_id: str) -> list[dict]:
    return [ep for ep in env.nm.ok(env.nm.http.get("/api/v1/endpoints/")) if ep.get("containerID") == container_id]


def host_ports_and_veths(env: Env, i: int) -> tuple[list[str], list[str]]:
    host = env.cluster.hosts[i]
    ports = [p for p in host.ovs.run("ovs-vsctl", "list-ports", host.bridge).split() if p.startswith("ve")]
    links = in_ns(host.netns, "ip", "-o", "link", "show").stdout
    veths = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()
             if line.split(":")[1].strip().startswith(("ve", "vc"))]
    return ports, veths


def test_containers_on_two_hosts_ping_and_obey_policy(env: Env) -> None:
    p1, p2 = env.podman
    ida = p1.run_detached("a", "fe-web")
    idb = p2.run_detached("b", "fe-web")
    p2.run_detached("c", "fe-db")
    ip_a, ip_b, ip_c = p1.ip("a", "fe-web"), p2.ip("b", "fe-web"), p2.ip("c", "fe-db")
    assert {ip_a, ip_b, ip_c} <= {f"10.61.0.{i}" for i in range(1, 254)}
    (ep_a,) = endpoints_of(env, ida)
    assert (ep_a["endpointID"], ep_a["host"], ep_a["groupName"], ep_a["ipAddress"]) == (f"{ida}:eth0", "h1", "web",
                                                                                         ip_a)
    assert endpoints_of(env, idb)[0]["host"] == "h2"
    # the container sees what the CNI result said: netmaster's MAC, the gateway route, the VXLAN MTU
    link = p1.exec("a", "ip", "-o", "link", "show", "eth0").stdout
    assert f"link/ether {ep_a['macAddress']} " in link
    assert "mtu 1450" in link
    assert "default via 10.61.0.254" in p1.exec("a", "ip", "route").stdout
    assert pings(p1, "a", ip_b, attempts=20), "web on h1 cannot reach web on h2"
    assert pings(p2, "b", ip_a)
    assert not pings(p1, "a", ip_c, attempts=3), "policy no-ping on db was not enforced"
    assert pings(p2, "c", ip_b), "db may ping out (the policy is inbound only)"


def test_removed_containers_leave_nothing(env: Env) -> None:
    p1, p2 = env.podman
    ids = [p1.run_detached("r1", "fe-web"), p2.run_detached("r2", "fe-db")]
    assert all(endpoints_of(env, i) for i in ids)
    before = [host_ports_and_veths(env, i) for i in range(2)]
    p1.remove("r1")
    p2.remove("r2")
    assert [endpoints_of(env, i) for i in ids] == [[], []]
    reservations = env.nm.ok(env.nm.http.get("/api/v1/addressReservations/"))
    assert [r for r in reservations if r["tenantName"] == T] == []
    for i in range(2):
        ports, veths = host_ports_and_veths(env, i)
        assert len(ports) == len(before[i][0]) - 1
        assert len(veths) == len(before[i][1]) - 1
        _, local = env.cluster.hosts[i].request("GET", "/endpoints")
        assert not any(ep["endpoint_id"].startswith(tuple(ids)) for ep in local)


def test_gc_after_a_runtime_crash(env: Env, tmp_path: Path) -> None:
    """A runtime that dies with its state never sends DEL; its next GC, listing only the
    attachments it still has, releases the rest."""
    host = env.cluster.hosts[0]
    crashing = Podman(env.cluster.root / "h1" / "podman-crash", host.netns, env.podman[0].rootfs)
    crashing.network("fe-web", env.cluster.cni_socket(host), tenant=T, network="net", group="web")
    lost = crashing.run_detached("lost", "fe-web")
    info = json.loads(crashing("inspect", "lost").stdout)[0]
    netns_path = info["NetworkSettings"]["SandboxKey"]
    for pid in (info["State"]["Pid"], info["State"]["ConmonPid"]):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(crashing.root / "run", ignore_errors=True)  # the runtime's state is gone with it
    assert endpoints_of(env, lost)
    ports_before, _ = host_ports_and_veths(env, 0)

    survivors = [json.loads(env.podman[0]("inspect", n).stdout)[0]["Id"] for n in ("a",)]
    conf = {"cniVersion": "1.1.0", "name": "fe-web", "type": "contiv", "tenant": T, "network": "net", "group": "web",
            "agentSocket": env.cluster.cni_socket(host),
            "cni.dev/valid-attachments": [{"containerID": c, "ifname": "eth0"} for c in survivors]}
    reply = invoke(crashing.bin_dir / "contiv", "GC", conf)
    assert (reply.code, reply.out) == (0, None), reply
    assert endpoints_of(env, lost) == []
    assert len(host_ports_and_veths(env, 0)[0]) == len(ports_before) - 1
    assert endpoints_of(env, survivors[0]), "GC removed a listed attachment"
    unmount_under(netns_path)  # the crashed runtime's own leftovers, not ours
    unmount_under(str(crashing.root))
    assert pings(env.podman[0], "a", env.podman[1].ip("b", "fe-web"), attempts=5)


def test_check_sees_what_the_runtime_cannot(env: Env) -> None:
    """CHECK through the real agent: fine while everything is there, code 101 once the endpoint's veth
    is gone behind the agent's back; DEL still cleans up after that."""
    p1 = env.podman[0]
    host = env.cluster.hosts[0]
    cid = p1.run_detached("k", "fe-web")
    info = json.loads(p1("inspect", "k").stdout)[0]
    ip, netns = p1.ip("k", "fe-web"), info["NetworkSettings"]["SandboxKey"]
    conf = {"cniVersion": "1.1.0", "name": "fe-web", "type": "contiv", "tenant": T, "network": "net", "group": "web",
            "agentSocket": env.cluster.cni_socket(host),
            "prevResult": {"cniVersion": "1.1.0", "ips": [{"address": f"{ip}/24", "interface": 1}]}}
    binary = p1.bin_dir / "contiv"
    reply = invoke(binary, "CHECK", conf, container_id=cid, netns=netns)
    assert (reply.code, reply.out) == (0, None), reply
    _, local = host.request("GET", "/endpoints")
    (veth,) = [ep["host_ifname"] for ep in local if ep["endpoint_id"] == f"{cid}:eth0"]
    in_ns(host.netns, "ip", "link", "del", veth)
    reply = invoke(binary, "CHECK", conf, container_id=cid, netns=netns)
    assert reply.error_code == 101, reply
    assert "missing" in reply.out["msg"]
    p1.remove("k")
    assert endpoints_of(env, cid) == []


def test_status_follows_netmaster(env: Env) -> None:
    """STATUS is 0 while the agent can serve ADD, 50 with the reason while netmaster is away."""
    host = env.cluster.hosts[0]
    binary = env.podman[0].bin_dir / "contiv"
    conf = {"cniVersion": "1.1.0", "name": "fe-web", "type": "contiv", "agentSocket": env.cluster.cni_socket(host)}

    def status_code(want: int, timeout: float = 40) -> CniReply:
        deadline = time.monotonic() + timeout
        while True:
            reply = invoke(binary, "STATUS", conf)
            if (reply.error_code or 0) == want or time.monotonic() > deadline:
                return reply
            time.sleep(0.5)

    assert status_code(0).code == 0
    env.cluster.stop_netmaster()
    try:
        reply = status_code(50)
        assert reply.error_code == 50, reply
        assert "netmaster" in reply.out["details"]
    finally:
        env.cluster.start_netmaster()
    assert status_code(0).code == 0
