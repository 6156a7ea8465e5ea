"""Two tenants with the same subnet and the same container addresses, on the same host and across
hosts, in VLAN and VXLAN, with the MACs netmaster assigns (no MAC is given anywhere here): each
tenant's containers talk to each other and never to the other tenant's twins.

The twins of .1 and .3 live on different hosts, which is the sharp case: the simulated VLAN trunk
is a Linux bridge without VLAN filtering, which learns MACs in one table for all VLANs (as many
physical switches do), so two containers with the same MAC on two VLANs would steal each other's
frames there.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from contiv_api.mac import candidates
from testbed.cluster import in_ns
from testbed.netcheck import http_ok, http_server, ping, ping_eventually
from testbed.sync_cluster import Netmaster, SyncCluster, add_endpoint, delete_endpoint

_n = itertools.count(1)


def _neighbour_mac(ns: str, ip: str) -> str:
    out = in_ns(ns, "ip", "neigh", "show", ip).stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else ""


@pytest.mark.parametrize("encap", ["vlan", "vxlan"])
def test_two_tenants_with_the_same_addresses(sync_cluster: SyncCluster, nm: Netmaster, encap: str,
                                             tmp_path: Path) -> None:
    i = next(_n)
    subnet = f"10.{180 + i}.0"
    tenants = (f"ov{i}a", f"ov{i}b")
    for t in tenants:
        nm.tenant_with_network(t, encap, f"{subnet}.0/24")
    h1, h2 = sync_cluster.hosts
    eps: dict[tuple[str, int], dict] = {}
    # a: .1 .2 on h1, .3 on h2; b: .2 .3 on h1, .1 on h2 (the twins of .1 and of .3 on different hosts)
    placement = {tenants[0]: {1: h1, 2: h1, 3: h2}, tenants[1]: {1: h2, 2: h1, 3: h1}}
    for t in tenants:
        for n, host in placement[t].items():
            ns = sync_cluster.container(f"{t}{n}")
            status, body = add_endpoint(host, endpoint_id=f"{t}-{n}", tenant=t, network="net", netns=ns,
                                        requested_ip=f"{subnet}.{n}")
            assert status == 200, body
            eps[t, n] = {**body, "ns": ns}
    a, b = tenants
    for n in (1, 2, 3):
        ma, mb = eps[a, n]["mac"], eps[b, n]["mac"]
        assert ma != mb, "the same address in two tenants: two MACs"
        assert {ma, mb} <= set(list(candidates(f"{subnet}.{n}"))[:2]), "netmaster's rule: 02:02:<ip>, then 02:03:<ip>"
        record = nm.ok(nm.endpoint(f"{a}-{n}"))
        assert record["macAddress"] == ma, "the agent plumbed netmaster's MAC"
        assert in_ns(eps[a, n]["ns"], "cat", "/sys/class/net/eth0/address").stdout.strip() == ma

    servers = []
    try:
        for t in tenants:
            for n in (2, 3):
                assert ping_eventually(eps[t, 1]["ns"], f"{subnet}.{n}", timeout=10), f"{t}: .1 -> .{n}"
                assert _neighbour_mac(eps[t, 1]["ns"], f"{subnet}.{n}") == eps[t, n]["mac"], "its own tenant's twin"
            assert ping(eps[t, 3]["ns"], f"{subnet}.1"), f"{t}: back"
            assert ping(eps[t, 2]["ns"], f"{subnet}.3"), f"{t}: .2 -> .3"
        # a service only in tenant b: tenant a's identical addresses reach their own (closed) ports, never b's
        servers = [http_server(eps[b, n]["ns"], 8080, tmp_path) for n in (2, 3)]
        for n in (2, 3):
            assert http_ok(eps[b, 1]["ns"], f"{subnet}.{n}", 8080), f"tenant b reaches its .{n}"
            assert not http_ok(eps[a, 1]["ns"], f"{subnet}.{n}", 8080), f"tenant a reached tenant b's .{n}"
        for n in (1, 2, 3):
            assert _neighbour_mac(eps[a, 1]["ns"], f"{subnet}.{n}") in ("", eps[a, n]["mac"])
            assert _neighbour_mac(eps[b, 1]["ns"], f"{subnet}.{n}") in ("", eps[b, n]["mac"])
    finally:
        for proc in servers:
            proc.kill()
            proc.wait(5)
        for t, n in eps:
            assert delete_endpoint(placement[t][n], f"{t}-{n}") == (200, {"deleted": True})
