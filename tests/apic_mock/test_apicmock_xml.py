"""APIC's XML encoding (``.xml`` URLs), which Cobra uses by default."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import httpx

from testbed.apic import ApicMock


def test_xml_query_and_error(api: httpx.Client) -> None:
    r = api.get("/api/mo/uni/tn-common.xml?rsp-subtree=children&rsp-subtree-class=fvCtx")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "imdata"
    assert root.get("totalCount") == "1"
    tenant = root[0]
    assert (tenant.tag, tenant.get("dn")) == ("fvTenant", "uni/tn-common")
    assert [(c.tag, c.get("rn")) for c in tenant] == [("fvCtx", "ctx-default")]
    r = api.get("/api/class/fvNope.xml")
    assert r.status_code == 400
    error = ET.fromstring(r.content)[0]
    assert (error.tag, error.get("code"), error.get("text")) == (
        "error",
        "400",
        "Request failed, unresolved class for fvNope",
    )


def test_cobra_style_xml_commit(api: httpx.Client) -> None:
    body = (
        '<fvTenant name="x1" status="created,modified"><fvCtx name="x1-Vrf" status="created,modified"/>'
        '<fvBD name="b"><fvRsCtx tnFvCtxName="x1-Vrf"/><fvSubnet ip="10.0.0.1/24"/></fvBD></fvTenant>'
    )
    r = api.post("/api/mo/uni/tn-x1.xml", content=body)
    assert r.status_code == 200
    assert ET.fromstring(r.content).get("totalCount") == "0"
    rsctx = api.get("/api/mo/uni/tn-x1/BD-b/rsctx.json").json()["imdata"][0]["fvRsCtx"]["attributes"]
    assert rsctx["state"] == "formed"
    r = api.post("/api/mo/uni/tn-x1.xml", content='<fvTenant name="x1" status="created"/>')
    assert ET.fromstring(r.content)[0].get("code") == "103"
    for bad in ("<fvTenant", "<a><b></a>", "", '<!DOCTYPE x [<!ENTITY a "aaaa">]><fvTenant name="&a;"/>'):
        r = api.post("/api/mo/uni.xml", content=bad)
        assert r.status_code in (200, 400), bad
        ET.fromstring(r.content)  # always a well-formed XML reply


def test_xml_login(apic_mock: ApicMock) -> None:
    with apic_mock.client(login=False) as c:
        r = c.post("/api/aaaLogin.xml", content='<aaaUser name="admin" pwd="password"/>')
        assert r.status_code == 200
        login = ET.fromstring(r.content)[0]
        assert login.tag == "aaaLogin"
        assert login.get("token") == c.cookies["APIC-cookie"]
        assert login.get("refreshTimeoutSeconds") == "600"
        assert c.get("/api/aaaListDomains.xml").status_code == 200
