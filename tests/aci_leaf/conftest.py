"""A simulated leaf (real OVS in its own namespace, a real leaf process) against a real apic_mock.

One HTTPS mock per session (reset before each test); one leaf and its hosts per test, torn down after
the test whatever happened. Tenants are written straight into the mock over the APIC REST API, as an
administrator (or aci_gw) would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apic_mock.initial import mo
from apic_mock.leaf import SimLeaf
from testbed.apic import Apic, ApicMock
from testbed.cluster.prereq import missing_prerequisites, unavailable
from testbed.wiring import Wiring

NODE = 101


@pytest.fixture(scope="session", autouse=True)
def _prerequisites() -> None:
    """First of every fixture here: skip (fail under CI=true) on a machine without OVS or root."""
    reason = missing_prerequisites()
    if reason:
        unavailable(reason)


def path_binding(port: str, vlan: int, node: int = NODE) -> dict[str, Any]:
    return mo("fvRsPathAtt", {"tDn": f"topology/pod-1/paths-{node}/pathep-[{port}]", "encap": f"vlan-{vlan}"})


def node_binding(vlan: int, node: int = NODE) -> dict[str, Any]:
    return mo("fvRsNodeAtt", {"tDn": f"topology/pod-1/node-{node}", "encap": f"vlan-{vlan}"})


def epg(name: str, bd: str, *children: dict[str, Any], **attrs: str) -> dict[str, Any]:
    return mo("fvAEPg", {"name": name, **attrs}, mo("fvRsBd", {"tnFvBDName": bd}), *children)


def bd(name: str, vrf: str, *gateways: str) -> dict[str, Any]:
    return mo("fvBD", {"name": name}, mo("fvRsCtx", {"tnFvCtxName": vrf}),
              *[mo("fvSubnet", {"ip": g}) for g in gateways])


def contract(name: str, *entries: dict[str, str], rev: str = "yes") -> list[dict[str, Any]]:
    """A filter with ``entries`` and a contract whose one subject uses it."""
    flt = mo("vzFilter", {"name": f"flt-{name}"},
             *[mo("vzEntry", {"name": f"e{i}", **e}) for i, e in enumerate(entries)])
    brc = mo("vzBrCP", {"name": name}, mo("vzSubj", {"name": "s", "revFltPorts": rev},
                                          mo("vzRsSubjFiltAtt", {"tnVzFilterName": f"flt-{name}"})))
    return [flt, brc]


@pytest.fixture
def apic(apic_mock: ApicMock) -> Iterator[Apic]:
    client = Apic(apic_mock)
    yield client
    client.http.close()


@pytest.fixture
def leaf(apic_mock: ApicMock) -> Iterator[SimLeaf]:
    sim = SimLeaf(NODE, apic_url=apic_mock.url, ca_file=apic_mock.ca_file, poll_interval=0.3)
    try:
        sim.start()
        yield sim
    finally:
        print(sim.log()[-6000:])  # shown by pytest when the test failed
        sim.stop()


@pytest.fixture
def wiring(leaf: SimLeaf) -> Iterator[Wiring]:
    w = Wiring(leaf)
    try:
        yield w
    finally:
        w.cleanup()
