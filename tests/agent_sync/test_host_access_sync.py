"""Host access from a real netmaster to the agents (docs/host-access.md): a network has it by default, its
container reaches the outside server as its host; the network switched off through the API loses it on
every host, a second tenant's overlapping subnet is refused (the first keeps it), and deleting the network
leaves no route, port or iptables rule behind."""

from __future__ import annotations

from pathlib import Path

from testbed.cluster import OUTSIDE_SERVER_IP, SimHost, in_ns
from testbed.netcheck import ping, ping_eventually
from testbed.sync_cluster import Netmaster, SyncCluster, add_endpoint, delete_endpoint, wait_revision
from testbed.traffic import EchoClient, EchoServer
from testbed.waiting import eventually


def _host_side(host: SimHost) -> tuple[list[str], list[str]]:
    routes = in_ns(host.netns, "ip", "-4", "route", "show", "table", "5354", "dev", "contivh0",
                   check=False).stdout.splitlines()
    rules = [r for r in in_ns(host.netns, "iptables", "-w", "5", "-t", "nat", "-S").stdout.splitlines()
             if "CONTIV-HOST" in r]
    return sorted(r.split()[0] for r in routes if "proto kernel" not in r), rules


def _served(host: SimHost) -> list[str]:
    return host.get("/inspect/driver")[1]["host_access"]["networks"]


def test_host_access_follows_netmaster(sync_cluster: SyncCluster, nm: Netmaster, tmp_path: Path) -> None:
    t, twin = "hacc", "hacc2"
    wait_revision(sync_cluster, nm.tenant_with_network(t, "vxlan", "10.93.0.0/24", gateway="10.93.0.254"))
    h1, h2 = sync_cluster.hosts
    assert nm.ok(nm.http.get(f"/api/v1/inspect/networks/{t}:net/"))["Oper"]["hostAccess"] == "enabled"
    a = sync_cluster.container(f"{t}a")
    status, ep = add_endpoint(h1, endpoint_id=f"{t}-a", tenant=t, network="net", netns=a)
    assert status == 200, ep
    echo = EchoServer(sync_cluster.outside_server(), 7002, tmp_path)
    try:
        client = EchoClient(a, OUTSIDE_SERVER_IP, 7002)
        client.close()
        assert client.connected
        assert eventually(echo.peers, what="the server's accepted connection") == [h1.vtep_ip]
        assert ping_eventually(h1.netns, ep["ip"]), "the host reaches its container"
        for host in (h1, h2):
            assert f"{t}:net" in _served(host)
            routes, rules = _host_side(host)
            assert "10.93.0.0/24" in routes
            assert "-A CONTIV-HOST-SNAT -s 10.93.0.0/24 ! -o contivh0 -j MASQUERADE" in rules

        wait_revision(sync_cluster, nm.tenant_with_network(twin, "vxlan", "10.93.0.0/24", gateway="10.93.0.254"))
        refused = nm.ok(nm.http.get(f"/api/v1/inspect/networks/{twin}:net/"))["Oper"]["hostAccess"]
        assert refused.startswith(f"refused: subnet 10.93.0.0/24 overlaps network {t}:net"), refused
        assert f"{twin}:net" not in _served(h1)
        assert f"{t}:net" in _served(h1), "the first network keeps host access"

        body = {k: v for k, v in nm.ok(nm.http.get(f"/api/v1/networks/{t}:net/")).items() if k != "key"}
        wait_revision(sync_cluster, nm.post("networks", f"{t}:net", **{**body, "hostAccess": "disabled"}))
        for host in (h1, h2):
            assert f"{t}:net" not in _served(host)
            assert "10.93.0.0/24" not in _host_side(host)[0]
        assert not ping(a, OUTSIDE_SERVER_IP, count=2)
    finally:
        echo.stop()
        delete_endpoint(h1, f"{t}-a")
    for tenant in (t, twin):
        nm.delete("networks", f"{tenant}:net")
        wait_revision(sync_cluster, nm.delete("tenants", tenant))
    for host in (h1, h2):
        routes, rules = _host_side(host)
        assert "10.93.0.0/24" not in routes
        assert not [r for r in rules if "10.93.0.0/24" in r]
