"""The testbed's server outside the cluster (``Cluster.outside_server``), which host access and external
SNAT are tested against: the hosts reach it over the underlay, it sees a host's underlay address as the
source, it has no way back to a container's own address, and ``down`` removes it."""

from __future__ import annotations

from pathlib import Path

from testbed.cluster import OUTSIDE_SERVER_IP, Cluster, in_ns, leftovers
from testbed.netcheck import http_ok, http_server, ping, ping_eventually
from testbed.traffic import Capture
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath


def test_hosts_reach_the_outside_server_from_their_underlay_address(env: ClusterEnv, tmp_path: Path) -> None:
    server = env.cluster.outside_server()
    assert env.cluster.outside_server() == server, "a second call returns the same namespace"
    h1, h2 = env.cluster.hosts
    assert ping_eventually(h1.netns, OUTSIDE_SERVER_IP)
    assert ping_eventually(h2.netns, OUTSIDE_SERVER_IP)
    capture = Capture(server, "icmp[icmptype] == icmp-echo", tmp_path)
    try:
        assert ping(h2.netns, OUTSIDE_SERVER_IP, count=2)
    finally:
        seen = capture.stop()
    assert f"{h2.vtep_ip} > {OUTSIDE_SERVER_IP}" in seen, seen


def test_tcp_from_the_outside_server_reaches_a_host(env: ClusterEnv, tmp_path: Path) -> None:
    """TCP both ways: the server's frames cross a host's userspace datapath (brphy), which completes no
    offloaded checksum, so this fails if the server's TX checksum offload is left on."""
    server = env.cluster.outside_server()
    proc = http_server(server, 8080, tmp_path)
    try:
        assert http_ok(env.cluster.hosts[0].netns, OUTSIDE_SERVER_IP, 8080)
    finally:
        proc.kill()
        proc.wait(5)


def test_the_outside_server_has_no_route_to_containers(env: ClusterEnv) -> None:
    """Only its own /24 is on-link and there is no default route: an untranslated reply to a
    container's address cannot leave it, so a test that gets a reply proves a host translated."""
    routes = in_ns(env.cluster.outside_server(), "ip", "-4", "route", "show").stdout.splitlines()
    assert routes == [f"{OUTSIDE_SERVER_IP.rsplit('.', 1)[0]}.0/24 dev eth0 proto kernel scope link src "
                      f"{OUTSIDE_SERVER_IP} "], routes


def test_down_removes_the_outside_server() -> None:
    cluster = Cluster(n_hosts=1)
    try:
        cluster.up(start_agents=False)
        server = cluster.outside_server()
        assert in_ns(server, "ip", "-4", "addr", "show", "eth0").stdout.count(OUTSIDE_SERVER_IP) == 1
    finally:
        cluster.down()
    assert leftovers(cluster.prefix) == []
