"""The simulated leaf enforces the APIC's policy on real packets.

Layout (tenant ``t``, VRF ``v``): BD ``b1`` 10.1.1.254/24 holds EPGs A (vlan 101) and B (vlan 102);
BD ``b2`` 10.1.2.254/24 holds EPG C (vlan 103). Host h1 plugs into eth1/1, h2 into eth1/2; both carry
every VLAN (h2's trunk is adopted from the root namespace, as a simulated cluster's would be).
Containers: a1 (h1, A), a2 (h2, A), b1 (h2, B), b2 (h1, B: same port as a1, so A<->B traffic between
them hairpins), c1 (h2, C, routed).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from apic_mock.initial import mo
from apic_mock.leaf import SimLeaf
from testbed.waiting import eventually
from testbed.wiring import Container, Wiring, connects, pings, serve_tcp
from tests.aci_leaf.conftest import Apic, bd, contract, epg, path_binding

pytestmark = pytest.mark.slow

TENANT = "uni/tn-t"
EPG_DN = {name: f"{TENANT}/ap-app/epg-{name}" for name in "ABC"}


def tenant_tree() -> dict:
    def bindings(vlan: int) -> list[dict]:
        return [path_binding("eth1/1", vlan), path_binding("eth1/2", vlan)]

    return mo("fvTenant", {"name": "t"},
              mo("fvCtx", {"name": "v"}),
              bd("b1", "v", "10.1.1.254/24"),
              bd("b2", "v", "10.1.2.254/24"),
              mo("fvAp", {"name": "app"},
                 epg("A", "b1", *bindings(101)),
                 epg("B", "b1", *bindings(102)),
                 epg("C", "b2", *bindings(103))))


@dataclass
class Lab:
    apic: Apic
    leaf: SimLeaf
    wiring: Wiring
    a1: Container
    a2: Container
    b1: Container
    b2: Container
    c1: Container

    def sync(self) -> None:
        self.leaf.wait_synced()

    def learn_all(self) -> None:
        """Every container sends a gratuitous ARP, as agents do; wait until the leaf knows them all."""
        everyone = [self.a1, self.a2, self.b1, self.b2, self.c1]
        for c in everyone:
            self.wiring.garp(c)
        macs = {c.mac for c in everyone}
        eventually(lambda: macs <= {e["mac"] for e in self.leaf.endpoints() if e["ip"]})
        self.sync()

    def consume(self, epg_name: str, name: str) -> None:
        self.apic.post(EPG_DN[epg_name], mo("fvAEPg", {}, mo("fvRsCons", {"tnVzBrCPName": name})))

    def provide(self, epg_name: str, name: str) -> None:
        self.apic.post(EPG_DN[epg_name], mo("fvAEPg", {}, mo("fvRsProv", {"tnVzBrCPName": name})))


@pytest.fixture
def lab(apic: Apic, leaf: SimLeaf, wiring: Wiring) -> Lab:
    leaf.wait_synced()  # the leaf started before the tenant existed
    apic.post("uni", mo("polUni", {}, tenant_tree()))
    h1 = wiring.host("h1", "eth1/1")
    h2 = wiring.host("h2", "eth1/2", adopt=True)
    lab = Lab(apic, leaf, wiring,
              a1=wiring.container(h1, "a1", 101, "10.1.1.1/24", "10.1.1.254"),
              a2=wiring.container(h2, "a2", 101, "10.1.1.2/24", "10.1.1.254"),
              b1=wiring.container(h2, "b1", 102, "10.1.1.3/24", "10.1.1.254"),
              b2=wiring.container(h1, "b2", 102, "10.1.1.4/24", "10.1.1.254"),
              c1=wiring.container(h2, "c1", 103, "10.1.2.1/24", "10.1.2.254"))
    lab.sync()
    lab.learn_all()
    return lab


def test_same_epg_allowed_cross_epg_blocked_gateway_answers(lab: Lab) -> None:
    assert pings(lab.a1, lab.a2.ip)
    assert pings(lab.a1, "10.1.1.254"), "the BD gateway answers ping"
    assert pings(lab.c1, "10.1.2.254")
    assert not pings(lab.a1, lab.b1.ip, count=2)
    assert not pings(lab.a1, lab.b2.ip, count=2), "hairpin A->B on one port is blocked too"
    assert not pings(lab.a1, lab.c1.ip, count=2), "routed A->C is blocked without a contract"


def test_contract_opens_exactly_its_entries_and_closes_on_delete(lab: Lab) -> None:
    serve_tcp(lab.wiring, lab.b1, 8000)
    serve_tcp(lab.wiring, lab.b1, 8001)
    lab.apic.post(TENANT, mo("fvTenant", {}, *contract("web", {"etherT": "ip", "prot": "icmp"},
                                                       {"etherT": "ip", "prot": "tcp", "dFromPort": "8000",
                                                        "dToPort": "8000"})))
    lab.consume("A", "web")
    lab.sync()
    assert not pings(lab.a1, lab.b1.ip, count=2), "a contract without provider opens nothing"
    lab.provide("B", "web")
    lab.sync()
    assert pings(lab.a1, lab.b1.ip)
    assert pings(lab.a1, lab.b2.ip), "hairpin back out of the same port in B's VLAN"
    assert connects(lab.a1, lab.b1.ip, 8000)
    assert not connects(lab.a1, lab.b1.ip, 8001)
    assert not pings(lab.a1, lab.c1.ip, count=2), "C is not part of the contract"

    lab.apic.delete(f"{TENANT}/brc-web")
    eventually(lambda: not pings(lab.a1, lab.b1.ip), timeout=2.5, what='closed within 2 s of the delete')
    assert not connects(lab.a1, lab.b1.ip, 8000)


def test_routing_between_subnets_follows_contracts(lab: Lab) -> None:
    lab.apic.post(TENANT, mo("fvTenant", {}, *contract("db", {"etherT": "ip", "prot": "icmp"})))
    lab.consume("A", "db")
    lab.provide("C", "db")
    lab.sync()
    assert pings(lab.a1, lab.c1.ip)
    assert pings(lab.c1, lab.a2.ip), "the reverse rule lets C answer and ping back over icmp"
    assert not pings(lab.b1, lab.c1.ip, count=2)


def test_vzany_unenforced_vrf_and_preferred_group(lab: Lab) -> None:
    lab.apic.post(TENANT, mo("fvTenant", {}, *contract("any-icmp", {"etherT": "ip", "prot": "icmp"})))
    vz_any = f"{TENANT}/ctx-v/any"
    lab.apic.post(vz_any, mo("vzAny", {}, mo("vzRsAnyToCons", {"tnVzBrCPName": "any-icmp"}),
                             mo("vzRsAnyToProv", {"tnVzBrCPName": "any-icmp"})))
    lab.sync()
    assert pings(lab.a1, lab.b1.ip)
    assert pings(lab.b1, lab.c1.ip)
    lab.apic.delete(f"{vz_any}/rsanyToCons-any-icmp")
    lab.sync()
    assert not pings(lab.a1, lab.b1.ip, count=2)

    lab.apic.post(vz_any, mo("vzAny", {"prefGrMemb": "enabled"}))
    for name in "AB":
        lab.apic.post(EPG_DN[name], mo("fvAEPg", {"prefGrMemb": "include"}))
    lab.sync()
    assert pings(lab.a1, lab.b1.ip), "preferred group members talk without contracts"
    assert not pings(lab.a1, lab.c1.ip, count=2), "C is not in the preferred group"

    lab.apic.post(f"{TENANT}/ctx-v", mo("fvCtx", {"pcEnfPref": "unenforced"}))
    lab.sync()
    assert pings(lab.a1, lab.c1.ip), "an unenforced VRF needs no contracts"


def test_isolated_epg_and_unclassified_vlan(lab: Lab) -> None:
    lab.apic.post(EPG_DN["A"], mo("fvAEPg", {"pcEnfPref": "enforced"}))
    lab.sync()
    assert not pings(lab.a1, lab.a2.ip, count=2), "pcEnfPref=enforced isolates the EPG's endpoints"
    assert pings(lab.a1, "10.1.1.254")
    lab.apic.post(EPG_DN["A"], mo("fvAEPg", {"pcEnfPref": "unenforced"}))
    lab.apic.delete(f"{EPG_DN['A']}/rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/2]]")
    lab.sync()
    assert not pings(lab.a1, lab.a2.ip, count=2), "vlan 101 on eth1/2 is no longer classified"
    assert not any(e["mac"] == lab.a2.mac for e in lab.leaf.endpoints())
