"""Service discovery fed by a real netmaster: a service and a container (its name as the runtime gave it)
resolve from a container, and keep resolving while netmaster is stopped (the agents answer from their
last state)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.cluster.prereq import running
from testbed.dnscheck import query
from testbed.sync_cluster import Netmaster, SyncCluster, add_endpoint, delete_endpoint
from testbed.waiting import eventually

GATEWAY = "10.92.0.254"


@pytest.fixture(scope="module")
def dns_cluster() -> Iterator[SyncCluster]:
    yield from running(SyncCluster(n_hosts=2, agent_args=("--dns", "--dns-upstream", "127.0.0.1:5300")))


def _a(ns: str, name: str) -> list[str]:
    got = query(ns, name, "A", GATEWAY)
    return sorted(got.get("answers", [])) if got["rcode"] == "NOERROR" else []


def test_names_from_netmaster_answer_while_netmaster_is_down(dns_cluster: SyncCluster) -> None:
    assert dns_cluster.netmaster is not None
    nm = Netmaster(dns_cluster.netmaster.url)
    t = "dns"
    nm.tenant_with_network(t, "vxlan", "10.92.0.0/24", gateway=GATEWAY)
    nm.post("serviceLBs", f"{t}:www", tenantName=t, serviceName="www", networkName="net", selectors=["app=www"],
            ports=["80:8080:TCP"])
    vip = nm.ok(nm.http.get(f"/api/v1/inspect/serviceLBs/{t}:www/"))["Oper"]["serviceVip"]
    h1, h2 = dns_cluster.hosts
    web, client = dns_cluster.container(f"{t}w"), dns_cluster.container(f"{t}c")
    status, body = add_endpoint(h2, endpoint_id=f"{t}-w", tenant=t, network="net", netns=web,
                                container_name="webserver", labels={"app": "www"})
    assert status == 200, body
    status, cbody = add_endpoint(h1, endpoint_id=f"{t}-c", tenant=t, network="net", netns=client)
    assert status == 200, cbody
    try:
        eventually(lambda: _a(client, "webserver.dns.contiv") == [body["ip"]], timeout=10,
                   what="the container's name resolves")
        assert _a(client, "www") == [vip]
        dns_cluster.stop_netmaster()
        assert _a(client, "www") == [vip]
        assert _a(client, "webserver") == [body["ip"]]
    finally:
        if dns_cluster.netmaster is None:
            dns_cluster.start_netmaster()
        delete_endpoint(h2, f"{t}-w")
        delete_endpoint(h1, f"{t}-c")
