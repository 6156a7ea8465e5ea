"""Several VLAN uplinks become an active-backup OVS bond: h1 has two trunk links on the same underlay
bridge, h2 one. Cross-host traffic works, is not duplicated by the backup link's copies of floods,
and survives the active link going down (carrier loss), and then the other one."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.state import DesiredState, Endpoint, Network
from testbed.cluster import REPO, Cluster, in_ns, sh
from testbed.cluster.prereq import running
from testbed.netcheck import Pinger, ping_eventually
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath

NET = Network("t1", "vlan-net", "vlan", "10.1.0.0/24", vlan=100)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from running(Cluster(n_hosts=2, trunks={"h1": 2}))


def _pair(env: ClusterEnv) -> tuple[str, str]:
    a, b = env.container("a"), env.container("b")
    env.apply(DesiredState(networks=(NET,), endpoints=(
        Endpoint("a", "t1", NET.name, "10.1.0.1", "h1", netns=a),
        Endpoint("b", "t1", NET.name, "10.1.0.2", "h2", netns=b))))
    return a, b


def _ping(ns: str, ip: str, count: int, interval: str = "0.2") -> str:
    return in_ns(ns, "ping", "-c", str(count), "-i", interval, "-W", "1", ip, check=False).stdout


def _received(out: str) -> int:
    line = next(x for x in out.splitlines() if "transmitted" in x)
    return int(line.split(",")[1].split()[0])


def test_two_uplinks_form_a_bond(env: ClusterEnv) -> None:
    _pair(env)
    h1 = env.cluster.hosts[0]
    ports = h1.ovs.run("ovs-vsctl", "list-ports", h1.bridge).split()
    assert "uplink-bond" in ports
    assert "trunk0" not in ports
    ifaces = h1.ovs.run("ovs-vsctl", "list-ifaces", h1.bridge).split()
    assert {"trunk0", "trunk1"} <= set(ifaces)
    mode = h1.ovs.run("ovs-vsctl", "get", "port", "uplink-bond", "bond_mode").strip()
    assert mode == "active-backup"
    for name, ofport in (("trunk0", "2"), ("trunk1", "3")):
        assert h1.ovs.run("ovs-vsctl", "get", "interface", name, "ofport").strip() == ofport
    _, info = h1.get("/inspect/driver?flows=1")
    assert info["uplink"]["bond"] == "uplink-bond"
    assert [(m["interface"], m["ofport"], m["link_state"]) for m in info["uplink"]["members"]] == [
        ("trunk0", 2, "up"), ("trunk1", 3, "up")]
    assert info["uplink"]["active"] == "trunk0"
    assert any("bundle(" in f for f in info["flows"]["output"])
    assert any("bundle_load(" in f for f in info["flows"]["classifier"])


def test_cross_host_ping_over_the_bond_without_duplicates(env: ClusterEnv) -> None:
    a, b = _pair(env)
    # b speaks first: the underlay bridge has not learnt a's MAC yet and floods the request to both of
    # h1's links; only the active member's copy may be taken.
    out = _ping(b, "10.1.0.1", 5)
    assert _received(out) >= 4, out
    assert "DUP" not in out, out
    assert ping_eventually(a, "10.1.0.2")


def _continuous_ping(ns: str, ip: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-i", "0.05", "-W", "1", ip],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(2)  # SIGINT: ping prints its summary
    out, _ = proc.communicate(timeout=10)
    return out


def test_ping_survives_active_link_going_down(env: ClusterEnv) -> None:
    a, b = _pair(env)
    assert ping_eventually(a, "10.1.0.2")
    h1 = env.cluster.hosts[0]
    first, second = h1.trunk_root_ends
    try:
        sh("ip", "link", "set", first, "down")
        assert ping_eventually(a, "10.1.0.2", timeout=10), "no failover to the backup link"
        _, info = h1.get("/inspect/driver")
        assert info["uplink"]["active"] == "trunk1"
        _, metrics = h1.get("/metrics")
        assert 'contiv_agent_uplink_link_up{interface="trunk0"} 0.0' in metrics
        assert "contiv_agent_uplink_failover_count_total 1.0" in metrics
        out = _ping(a, "10.1.0.2", 10, "0.1")
        assert _received(out) == 10, out
        assert "DUP" not in out, out
        assert _received(_ping(b, "10.1.0.1", 5)) == 5, "return path after failover"
        # While pinging every 50 ms: restore the first link, then take the second down.
        pinger = _continuous_ping(a, "10.1.0.2")
        time.sleep(1)
        sh("ip", "link", "set", first, "up")
        time.sleep(2)
        sh("ip", "link", "set", second, "down")
        time.sleep(3)
        out = _stop(pinger)
        assert _received(_ping(a, "10.1.0.2", 10, "0.1")) == 10, "second failover"
        received = _received(out)
        assert received > 0, out
    finally:
        sh("ip", "link", "set", first, "up", check=False)
        sh("ip", "link", "set", second, "up", check=False)


def test_both_links_down_then_one_back(env: ClusterEnv) -> None:
    a, _ = _pair(env)
    assert ping_eventually(a, "10.1.0.2")
    first, second = env.cluster.hosts[0].trunk_root_ends
    try:
        sh("ip", "link", "set", first, "down")
        sh("ip", "link", "set", second, "down")
        time.sleep(0.5)
        assert _received(_ping(a, "10.1.0.2", 3)) == 0, "no link: nothing can pass"
        sh("ip", "link", "set", second, "up")
        assert ping_eventually(a, "10.1.0.2", timeout=10)
    finally:
        sh("ip", "link", "set", first, "up", check=False)
        sh("ip", "link", "set", second, "up", check=False)


def test_agent_restart_leaves_the_bond_alone(env: ClusterEnv) -> None:
    a, _ = _pair(env)
    assert ping_eventually(a, "10.1.0.2")
    h1 = env.cluster.hosts[0]
    uuid = h1.ovs.run("ovs-vsctl", "get", "port", "uplink-bond", "_uuid").strip()
    pinger = Pinger(a, "10.1.0.2", interval=0.05)
    time.sleep(0.5)
    env.cluster.kill_agent(h1)
    env.cluster.start_agent(h1)
    restarted = time.time()
    time.sleep(1.0)
    result = pinger.stop()
    assert h1.ovs.run("ovs-vsctl", "get", "port", "uplink-bond", "_uuid").strip() == uuid, "bond recreated"
    # none lost (the echo in flight when the pinger stops is not counted), and replies after the restart
    assert result.lost == 0, result
    assert max(result.replies.values(), default=0.0) > restarted, result


def test_lacp_without_a_partner_falls_back_to_active_backup(env: ClusterEnv) -> None:
    """Restarting with --bond-lacp active replaces the bond (configuration changed); the underlay
    bridge speaks no LACP, so the bond must fall back to active-backup rather than stop."""
    a, _ = _pair(env)
    assert ping_eventually(a, "10.1.0.2")
    h1 = env.cluster.hosts[0]
    uuid = h1.ovs.run("ovs-vsctl", "get", "port", "uplink-bond", "_uuid").strip()
    env.cluster.kill_agent(h1)
    env.cluster.start_agent(h1, ("--bond-lacp", "active"))
    try:
        assert h1.ovs.run("ovs-vsctl", "get", "port", "uplink-bond", "lacp").strip() == "active"
        assert h1.ovs.run("ovs-vsctl", "get", "port", "uplink-bond", "_uuid").strip() != uuid
        assert ping_eventually(a, "10.1.0.2", timeout=10), "no traffic with LACP on and no partner"
        out = _ping(a, "10.1.0.2", 5)
        assert _received(out) == 5, out
        lacp = h1.ovs.run("ovs-appctl", "lacp/show", "uplink-bond")
        assert "active" in lacp
    finally:
        env.cluster.kill_agent(h1)
        env.cluster.start_agent(h1)
    assert h1.ovs.run("ovs-vsctl", "get", "port", "uplink-bond", "lacp").strip() == "off"
    assert ping_eventually(a, "10.1.0.2", timeout=10)


@pytest.mark.parametrize(("uplinks", "message"), [
    ("eth1,eth1", "at most 13 distinct interfaces"),
    (",".join(f"eth{i}" for i in range(14)), "at most 13 distinct interfaces"),  # ofport 15 is the host port
])
def test_bad_uplink_lists_are_refused_at_start(tmp_path: Path, uplinks: str, message: str) -> None:
    state = tmp_path / "state.json"
    DesiredState().save(state)
    proc = subprocess.run([sys.executable, "-m", "agent", "--host-label", "h1", "--state-file", str(state),
                           "--vlan-uplinks", uplinks], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert proc.returncode == 2
    assert message in proc.stderr
