"""Fixtures for the apic_mock conformance suite: a real server on a free 127.0.0.1 port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from apic_mock.initial import mo
from apic_mock.testing import ApicMock, apic_mock, apic_mock_server  # noqa: F401


@pytest.fixture
def api(apic_mock: ApicMock) -> Iterator[httpx.Client]:  # noqa: F811
    """A client logged in as admin on the shared (freshly reset) mock."""
    with apic_mock.client() as client:
        yield client


def error_of(response: httpx.Response) -> tuple[str, str]:
    """``(code, text)`` of an APIC error envelope (and check the envelope's shape on the way)."""
    body = response.json()
    assert body["totalCount"] == "1"
    attrs = body["imdata"][0]["error"]["attributes"]
    return attrs["code"], attrs["text"]


def attrs_of(item: dict[str, Any]) -> dict[str, str]:
    (body,) = item.values()
    return body["attributes"]


def tenant_tree(name: str = "t1") -> dict[str, Any]:
    """A small Contiv-style tenant: VRF, BD with subnet, AP with an EPG, contract and filter."""
    return mo(
        "fvTenant",
        {"name": name},
        mo("fvCtx", {"name": f"{name}-Vrf"}),
        mo(
            "fvBD",
            {"name": "BD-net"},
            mo("fvRsCtx", {"tnFvCtxName": f"{name}-Vrf"}),
            mo("fvSubnet", {"ip": "20.1.1.254/24"}),
        ),
        mo(
            "fvAp",
            {"name": "app"},
            mo(
                "fvAEPg",
                {"name": "web"},
                mo("fvRsBd", {"tnFvBDName": "BD-net"}),
                mo("fvRsProv", {"tnVzBrCPName": "c1"}),
                mo("fvRsDomAtt", {"tDn": "uni/phys-d1"}),
                mo(
                    "fvRsPathAtt",
                    {
                        "tDn": "topology/pod-1/paths-101/pathep-[eth1/1]",
                        "encap": "vlan-101",
                        "instrImedcy": "immediate",
                    },
                ),
            ),
        ),
        mo(
            "vzFilter",
            {"name": "filt-c1"},
            mo(
                "vzEntry",
                {"name": "entry-ip-tcp-80", "etherT": "ip", "prot": "6", "dFromPort": "80", "dToPort": "80"},
            ),
        ),
        mo(
            "vzBrCP",
            {"name": "c1"},
            mo("vzSubj", {"name": "subj-c1"}, mo("vzRsSubjFiltAtt", {"tnVzFilterName": "filt-c1"})),
        ),
    )
