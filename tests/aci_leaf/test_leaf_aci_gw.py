"""The leaf enforces what aci_gw writes: a Contiv app profile pushed through a real aci-gw process
(node binding to leaf 101, as APIC_LEAF_NODE / gw-config nodeBindings give it), packets checked
against each push, and /getEndpoint answering from the leaf's endpoint reports."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from apic_mock.leaf import SimLeaf
from testbed.aci_gw import AciGwProcess, apic_env
from testbed.aci_gw_payloads import PHYS_DOMAIN, app_profile, contract, epg, gw_config, link
from testbed.apic import ApicMock
from testbed.waiting import eventually
from testbed.wiring import Wiring, connects, pings, serve_tcp
from tests.aci_leaf.conftest import Apic

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(apic: Apic, apic_mock: ApicMock) -> Iterator[httpx.Client]:
    apic.post("uni", {"physDomP": {"attributes": {"name": PHYS_DOMAIN}}})
    gw = AciGwProcess.spawn(apic_env(apic_mock))
    try:
        with httpx.Client(base_url=gw.url, timeout=30) as client:
            yield client
    finally:
        gw.stop()


def push(gw: httpx.Client, *rules: tuple[str, int | None]) -> None:
    body = app_profile("ct", "app", epgs=[
        epg("web", 1001, gw="10.1.1.1/24", links=[link("PROVIDE", "expose")]),
        epg("client", 1002, gw="10.1.1.1/24", links=[link("CONSUME", "expose")]),
    ], contracts=[contract("expose", *rules)], gw=gw_config())
    reply = gw.post("/createAppProf", json=body).json()
    assert reply["result"] == "success", reply


def test_contiv_profile_through_aci_gw(gateway: httpx.Client, leaf: SimLeaf, wiring: Wiring) -> None:
    push(gateway, ("icmp", None), ("tcp", 8000))
    web = wiring.container(wiring.host("h1", "eth1/1"), "w", 1001, "10.1.1.10/24", "10.1.1.1")
    client = wiring.container(wiring.host("h2", "eth1/2"), "c", 1002, "10.1.1.20/24", "10.1.1.1")
    serve_tcp(wiring, web, 8000)
    serve_tcp(wiring, web, 8001)
    leaf.wait_synced()
    for c in (web, client):
        wiring.garp(c)
    eventually(lambda: len(leaf.endpoints()) == 2)
    leaf.wait_synced()

    assert pings(client, web.ip)
    assert connects(client, web.ip, 8000)
    assert not connects(client, web.ip, 8001)
    assert pings(client, "10.1.1.1"), "the BD gateway aci_gw configured answers"

    push(gateway, ("tcp", 8000))
    leaf.wait_synced()
    assert not pings(client, web.ip, count=2), "icmp rule removed by the re-push"
    assert connects(client, web.ip, 8000)

    answer = gateway.post("/getEndpoint", json={"tenant": "ct", "app-prof": "app", "epg": "web",
                                                "epmac": web.mac}).json()
    assert (answer["result"], answer["ip"], answer["vlan"]) == ("success", web.ip, "1001")

    reply = gateway.post("/deleteAppProf", json={"aci-gw-api-version": "v1.2", "tenant": "ct",
                                                 "app-prof": "app"}).json()
    assert reply["result"] == "success", reply
    leaf.wait_synced()
    assert not connects(client, web.ip, 8000), "the profile's EPGs and bindings are gone"
    assert leaf.endpoints() == []
