"""netmaster in ACI mode with no aci-gw to talk to still gives every EPG its VLAN: agents can program
endpoints while the gateway is down (the allocation is part of the EPG's create transaction)."""

from __future__ import annotations

from pathlib import Path

from testbed.aci_stack import AciApi
from testbed.netmaster import NetmasterProcess
from testbed.ports import free_port
from testbed.waiting import eventually


def test_epg_vlans_are_served_without_aci_gw(tmp_path: Path) -> None:
    dead_gw = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    args = ["--infra", "aci", "--aci-gw-url", dead_gw, "--aci-retry-max", "1"]
    with NetmasterProcess.start("memory://", args=args, log_path=tmp_path / "netmaster.log") as nm:
        api = AciApi(nm.url)
        try:
            api.tenant("t")
            api.network("t", "net", "10.9.0.0/24", "10.9.0.254")
            net_vlan = int(api.inspect("networks", "t:net")["Oper"]["pktTag"])
            vlans = [api.group("t", g) for g in ("a", "b")]
            snapshot = api.get("/api/v1/snapshot")["objects"]
            key = api.profile("t", "app", "a", "b")
            failed = eventually(lambda: (st := api.sync_state(key)).get("state") == "failed" and st,
                                what="the push failing without a gateway")
        finally:
            api.close()
    assert "unreachable" in failed["reason"], failed
    assert len({net_vlan, *vlans}) == 3
    assert all(1 <= v <= 4094 for v in vlans)
    status = {o["key"]: o["status"] for o in snapshot if o["kind"] == "endpointGroup"}
    assert [status["t:a"]["aciVlan"], status["t:b"]["aciVlan"]] == vlans
