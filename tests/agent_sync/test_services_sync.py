"""A serviceLB from a real netmaster to the agents: providers are the endpoints whose labels (given at
endpoint creation, as CNI args carry them) match the selectors; netmaster's inspect and the agents'
flows agree on them, a provider deleted stops getting connections, a label-less client gets none."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from testbed.lbcheck import NameServer, connect
from testbed.sync_cluster import Netmaster, SyncCluster, add_endpoint, delete_endpoint, wait_revision
from testbed.waiting import eventually


def _providers(nm: Netmaster, key: str) -> list[str]:
    return [p["endpointID"] for p in nm.ok(nm.http.get(f"/api/v1/inspect/serviceLBs/{key}/"))["Oper"]["providers"]]


def test_service_from_netmaster_balances_over_labelled_endpoints(sync_cluster: SyncCluster, nm: Netmaster,
                                                                 tmp_path: Path) -> None:
    t = "svc"
    nm.tenant_with_network(t, "vxlan", "10.91.0.0/24")
    nm.post("serviceLBs", f"{t}:web", tenantName=t, serviceName="web", networkName="net",
            selectors=["app=web"], ports=["80:8080:TCP", "81:8080:UDP"])
    oper = nm.ok(nm.http.get(f"/api/v1/inspect/serviceLBs/{t}:web/"))["Oper"]
    vip = oper["serviceVip"]
    assert oper["ports"] == ["80:8080:TCP", "81:8080:UDP"]
    h1, h2 = sync_cluster.hosts
    spaces = {n: sync_cluster.container(f"{t}{n}") for n in ("p1", "p2", "c")}
    created = []
    servers = []
    try:
        for name, host, labels in (("p1", h1, {"app": "web"}), ("p2", h2, {"app": "web", "tier": "x"}),
                                   ("c", h1, {"app": "client"})):
            status, body = add_endpoint(host, endpoint_id=f"{t}-{name}", tenant=t, network="net",
                                        netns=spaces[name], labels=labels)
            assert status == 200, body
            created.append((host, f"{t}-{name}"))
        servers = [NameServer(spaces[n], n, 8080, tmp_path) for n in ("p1", "p2")]
        assert _providers(nm, f"{t}:web") == [f"{t}-p1", f"{t}-p2"]
        eventually(lambda: connect(spaces["c"], vip, 80, "tcp", 1)[0], timeout=15, what="the VIP answers")
        for port, proto in ((80, "tcp"), (81, "udp")):
            counts, failed = connect(spaces["c"], vip, port, proto, 60)
            assert failed == 0, counts
            assert set(counts) == {"p1", "p2"}, f"{proto}: {counts}"

        cli = subprocess.run([sys.executable, "-m", "netmaster.cli.netctl", "--netmaster", sync_cluster.netmaster_url,
                              "service", "inspect", "-t", t, "web"], capture_output=True, text=True, timeout=30)
        assert cli.returncode == 0, cli.stderr
        assert vip in cli.stdout, cli.stdout
        assert f"{t}-p2" in cli.stdout, cli.stdout

        wait_revision(sync_cluster, _delete(nm, h2, f"{t}-p2"))
        created.remove((h2, f"{t}-p2"))
        assert _providers(nm, f"{t}:web") == [f"{t}-p1"]
        counts, failed = connect(spaces["c"], vip, 80, "tcp", 20)
        assert (counts, failed) == (Counter({"p1": 20}), 0)
    finally:
        for server in servers:
            server.stop()
        for host, ep in created:
            delete_endpoint(host, ep)
        nm.delete("serviceLBs", f"{t}:web")


def _delete(nm: Netmaster, host: object, endpoint_id: str) -> int:
    status, body = delete_endpoint(host, endpoint_id)  # type: ignore[arg-type]
    assert status == 200, body
    return int(nm.http.get("/api/v1/snapshot").json()["revision"])
