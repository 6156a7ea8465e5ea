"""Datapath properties beyond reachability: ARP answered by flows (works with the agent down), spoof
guard, and existing connections surviving a policy change (stateful semantics)."""

from __future__ import annotations

import select
import subprocess
import time
from pathlib import Path

from agent.state import DesiredState, Endpoint, EndpointGroup, Network, Policy, Rule
from testbed.cluster import in_ns
from testbed.netcheck import http_ok, http_server, ping, ping_eventually
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath

NET = Network("t1", "n", "vxlan", "10.8.0.0/24", vni=9200)


def _pair(env: ClusterEnv, policies: tuple[Rule, ...] = ()) -> tuple[str, str]:
    a, b = env.container("a"), env.container("b")
    _apply_pair(env, a, b, policies)
    assert ping_eventually(a, "10.8.0.2")
    return a, b


def _apply_pair(env: ClusterEnv, a: str, b: str, rules: tuple[Rule, ...]) -> None:
    env.apply(DesiredState(networks=(NET,), groups=(EndpointGroup("t1", "srv", 20, "n", ("p",)),),
                           policies=(Policy("t1", "p", rules),), endpoints=(
        Endpoint("a", "t1", "n", "10.8.0.1", "h1", netns=a),
        Endpoint("b", "t1", "n", "10.8.0.2", "h2", group="srv", netns=b))))


def test_arp_is_answered_by_flows_while_the_agent_is_down(env: ClusterEnv) -> None:
    a, b = _pair(env)
    b_mac = in_ns(b, "cat", "/sys/class/net/eth0/address").stdout.strip()
    h1 = env.cluster.hosts[0]
    env.cluster.kill_agent(h1)
    try:
        in_ns(a, "ip", "neigh", "flush", "all")
        assert ping(a, "10.8.0.2", count=2)
        assert b_mac in in_ns(a, "ip", "neigh", "show", "10.8.0.2").stdout
    finally:
        env.cluster.start_agent(h1)


def test_spoof_guard_drops_forged_addresses(env: ClusterEnv) -> None:
    a, _ = _pair(env)
    in_ns(a, "ip", "addr", "add", "10.8.0.99/24", "dev", "eth0")
    assert not _ping_from(a, "10.8.0.99"), "forged source IP must be dropped"
    in_ns(a, "ip", "addr", "del", "10.8.0.99/24", "dev", "eth0")
    assert ping(a, "10.8.0.2")
    mac = in_ns(a, "cat", "/sys/class/net/eth0/address").stdout.strip()
    in_ns(a, "ip", "link", "set", "eth0", "address", mac[:-2] + ("99" if not mac.endswith("99") else "98"))
    in_ns(a, "ip", "neigh", "flush", "all")
    assert not ping(a, "10.8.0.2", count=2), "forged source MAC must be dropped"


def _ping_from(ns: str, src: str) -> bool:
    return in_ns(ns, "ping", "-c", "2", "-W", "1", "-I", src, "10.8.0.2", check=False).returncode == 0


def test_existing_connection_survives_a_new_deny_rule(env: ClusterEnv, tmp_path: Path) -> None:
    a, b = _pair(env)
    echo = subprocess.Popen(["ip", "netns", "exec", b, "busybox", "nc", "-ll", "-p", "9000", "-e",
                             "/bin/cat"])
    web = http_server(b, 9001, tmp_path)
    client = None
    try:
        time.sleep(0.3)
        client = subprocess.Popen(["ip", "netns", "exec", a, "busybox", "nc", "10.8.0.2", "9000"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        assert _echo(client, b"before\n")
        _apply_pair(env, a, b, (Rule("1", "in", "deny", protocol="tcp"),))
        assert not http_ok(a, "10.8.0.2", 9001, timeout=1), "new connections are denied"
        assert _echo(client, b"after\n"), "the established connection keeps working"
    finally:
        for proc in (client, echo, web):
            if proc is not None:
                proc.kill()
                proc.wait()


def _echo(client: subprocess.Popen[bytes], line: bytes) -> bool:
    assert client.stdin is not None
    assert client.stdout is not None
    client.stdin.write(line)
    ready, _, _ = select.select([client.stdout], [], [], 3)
    return bool(ready) and client.stdout.read(len(line)) == line
