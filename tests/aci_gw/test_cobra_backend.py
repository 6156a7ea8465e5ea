"""The cobra SDK backend against apic_mock. The SDK (acicobra, acimodel) is only distributed by an APIC,
so these tests skip where it is not installed."""

from __future__ import annotations

import pytest
from aci_gw_harness import RunningGateway, read_tree

from testbed.aci_gw_payloads import LEAF, PHYS_DOMAIN, app_profile

pytest.importorskip("cobra.mit.access", reason="cobra SDK (acicobra) not installed: only an APIC ships it")
pytest.importorskip("cobra.model.fv", reason="cobra model (acimodel) not installed: only an APIC ships it")


@pytest.fixture
def cobra_gateway(start_gateway) -> RunningGateway:
    return start_gateway(APIC_SDK="cobra", APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF)


def test_cobra_backend_pushes_and_reconciles(apic, cobra_gateway: RunningGateway) -> None:
    assert cobra_gateway.gateway.client.backend == "cobra"
    assert cobra_gateway.create(app_profile())["result"] == "success"
    assert read_tree(apic, "uni/tn-t1/ap-app1/epg-web") is not None
    apic.admin.reset_stats()
    assert cobra_gateway.create(app_profile())["changes"] == 0
    assert apic.admin.stats(log=False)["writes"] == 0
    assert cobra_gateway.delete("t1", "app1")["result"] == "success"
    assert read_tree(apic, "uni/tn-t1") is None
