"""Helpers shared by the apic_mock tests (a uniquely named module, so that ``from ... import`` in
test files never picks up another package's ``conftest``)."""

from __future__ import annotations

from typing import Any

import httpx

from apic_mock.initial import mo

__all__ = ["attrs_of", "error_of", "mo", "tenant_tree"]


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
