"""More networks than etcd's 128 compares per transaction: a network create lists every network (the
host-access overlap check), and that listing must not cost one compare per network."""

from __future__ import annotations

from pathlib import Path

import httpx

from testbed.etcd import shared_etcd
from testbed.netmaster import NetmasterProcess

NETWORKS = 140


def test_network_creates_beyond_etcds_compare_limit(tmp_path: Path) -> None:
    shared_etcd().wipe()
    with (
        NetmasterProcess.start(shared_etcd().url, log_path=tmp_path / "nm.log") as nm,
        httpx.Client(base_url=nm.url, timeout=30) as http,
    ):
        for t in range(NETWORKS):
            tenant = f"t{t}"
            assert http.post(f"/api/v1/tenants/{tenant}/", json={"tenantName": tenant}).status_code == 200
            body = {"tenantName": tenant, "networkName": "net", "encap": "vxlan", "subnet": f"10.{t}.0.0/24"}
            response = http.post(f"/api/v1/networks/{tenant}:net/", json=body)
            assert response.status_code == 200, (t, response.text)
        assert len(http.get("/api/v1/networks/").json()) == NETWORKS
        # The overlap check saw every network: a subnet of the first tenant's, in a new tenant.
        assert http.post("/api/v1/tenants/late/", json={"tenantName": "late"}).status_code == 200
        body = {"tenantName": "late", "networkName": "net", "encap": "vxlan", "subnet": "10.0.0.0/24"}
        response = http.post("/api/v1/networks/late:net/", json=body)
        assert response.status_code == 200, response.text
        oper = http.get("/api/v1/inspect/networks/late:net/").json()["Oper"]
        assert oper["hostAccess"].startswith("refused: subnet 10.0.0.0/24 overlaps network t0:net"), oper
