"""Endpoint learning: the leaf reports what it learns as fvCEp, ages silent endpoints out, follows
bindings, survives an APIC outage, and leaves nothing behind when stopped."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from apic_mock.initial import mo
from apic_mock.leaf import SimLeaf
from testbed.aci_gw import AciGwProcess, apic_env
from testbed.apic import ApicMock
from testbed.waiting import eventually
from testbed.wiring import Wiring, pings, sh
from tests.aci_leaf.conftest import NODE, Apic, bd, epg, node_binding

pytestmark = pytest.mark.slow

EPG = "uni/tn-e/ap-app/epg-web"
AGE = 3.0


def tenant() -> dict:
    return mo("fvTenant", {"name": "e"}, mo("fvCtx", {"name": "v"}), bd("b", "v", "10.2.0.254/24"),
              mo("fvAp", {"name": "app"}, epg("web", "b", node_binding(201))))


@pytest.fixture
def short_age_leaf(apic_mock: ApicMock) -> Iterator[SimLeaf]:
    sim = SimLeaf(NODE, apic_url=apic_mock.url, ca_file=apic_mock.ca_file, poll_interval=0.3, endpoint_age=AGE)
    try:
        yield sim.start()
    finally:
        sim.stop()


def ceps(apic: Apic) -> dict[str, dict[str, str]]:
    response = apic.http.get("/api/class/fvCEp.json")
    assert response.status_code == 200, response.text
    return {item["fvCEp"]["attributes"]["mac"]: item["fvCEp"]["attributes"] for item in response.json()["imdata"]}


def test_learnt_endpoints_reported_aged_and_removed(apic: Apic, apic_mock: ApicMock,
                                                    short_age_leaf: SimLeaf) -> None:
    leaf = short_age_leaf
    wiring = Wiring(leaf)
    gw = AciGwProcess.spawn(apic_env(apic_mock))
    try:
        apic.post("uni", mo("polUni", {}, tenant()))
        host = wiring.host("h1", "eth1/3")
        quiet = wiring.container(host, "q", 201, "10.2.0.1/24", "10.2.0.254")
        chatty = wiring.container(host, "t", 201, "10.2.0.2/24", "10.2.0.254")
        leaf.wait_synced()
        wiring.garp(quiet)
        wiring.garp(chatty)
        want = {quiet.mac.upper(): quiet.ip, chatty.mac.upper(): chatty.ip}
        eventually(lambda: {m: a["ip"] for m, a in ceps(apic).items()} == want, timeout=3)
        cep = ceps(apic)[quiet.mac.upper()]
        assert cep["dn"] == f"{EPG}/cep-{quiet.mac.upper()}"
        assert cep["encap"] == "vlan-201"
        assert cep["fabricPathDn"] == f"topology/pod-1/paths-{NODE}/pathep-[eth1/3]"

        body = {"tenant": "e", "app-prof": "app", "epg": "web", "epmac": quiet.mac}
        answer = httpx.post(f"{gw.url}/getEndpoint", json=body, timeout=10).json()
        assert (answer["result"], answer["ip"], answer["vlan"]) == ("success", quiet.ip, "201")

        # The chatty endpoint keeps talking (to the gateway); the quiet one ages out after AGE seconds.
        proc = subprocess.Popen(["ip", "netns", "exec", chatty.ns, "ping", "-q", "-i", "0.3", "-w", "20",
                                 "10.2.0.254"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            eventually(lambda: quiet.mac.upper() not in ceps(apic), timeout=AGE + 10)
            assert chatty.mac.upper() in ceps(apic), "an endpoint with traffic does not age out"
        finally:
            proc.kill()
            proc.wait()

        apic.delete(f"{EPG}/rsnodeAtt-[topology/pod-1/node-{NODE}]")
        eventually(lambda: not ceps(apic), timeout=3, what='endpoints go with their binding')
    finally:
        gw.stop()
        wiring.cleanup()


def test_apic_outage_keeps_flows_and_converges(apic: Apic, apic_mock: ApicMock, leaf: SimLeaf,
                                               wiring: Wiring) -> None:
    apic.post("uni", mo("polUni", {}, tenant()))
    a = wiring.container(wiring.host("h1", "eth1/3"), "a", 201, "10.2.0.1/24", "10.2.0.254")
    b = wiring.container(wiring.host("h2", "eth1/4"), "b", 201, "10.2.0.2/24", "10.2.0.254")
    leaf.wait_synced()
    eventually(lambda: pings(a, b.ip), timeout=5)
    apic_mock.admin.inject_fault("error", status=503, path="^/api/")
    eventually(lambda: leaf.status().get("apic_error"), timeout=3)
    assert pings(a, b.ip), "forwarding continues while the APIC is unreachable"
    apic_mock.admin.clear_faults()
    apic.post(EPG, mo("fvAEPg", {"pcEnfPref": "enforced"}))
    leaf.wait_synced()
    assert leaf.status()["apic_error"] is None
    assert not pings(a, b.ip, count=2), "the change made during the outage is enforced once the APIC is back"


def test_stop_leaves_nothing(apic: Apic, apic_mock: ApicMock) -> None:
    leaf = SimLeaf(NODE, apic_url=apic_mock.url, ca_file=apic_mock.ca_file, poll_interval=0.3).start()
    wiring = Wiring(leaf)
    try:
        apic.post("uni", mo("polUni", {}, tenant()))
        host = wiring.host("h1", "eth1/3")
        c = wiring.container(host, "c", 201, "10.2.0.1/24", "10.2.0.254")
        wiring.garp(c)
        eventually(lambda: ceps(apic), timeout=3)
        eventually(lambda: leaf.status().get("subscribed"), timeout=5, what='the APIC event subscription is up')
        pids = [int(p.read_text()) for p in (leaf.rundir / "ovs").glob("*.pid")]
        assert len(pids) == 2
        leader = leaf.process
        assert leader is not None
    finally:
        wiring.cleanup()
        leaf.stop()
    assert leader.poll() is not None
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"OVS daemon {pid} still running"
    assert leaf.netns not in sh("ip", "netns", "list").stdout
    assert not [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith(leaf.netns)]
    assert not leaf.rundir.exists()
    assert not leaf.log_file.exists()
    assert not ceps(apic), "a leaf that stops cleanly withdraws its endpoints"


def test_crashed_leaf_is_cleaned_up_by_stop(apic_mock: ApicMock) -> None:
    leaf = SimLeaf(NODE, apic_url=apic_mock.url, ca_file=apic_mock.ca_file, poll_interval=0.3).start()
    try:
        pids = [int(p.read_text()) for p in (leaf.rundir / "ovs").glob("*.pid")]
        assert leaf.process is not None
        leaf.process.kill()  # SIGKILL: the leaf gets no chance to clean up
        leaf.process.wait(10)
        assert leaf.netns in sh("ip", "netns", "list").stdout
    finally:
        leaf.stop()
    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)
    assert leaf.netns not in sh("ip", "netns", "list").stdout
    assert not leaf.rundir.exists()
