"""Contiv's aci-gw API against apic_mock over HTTPS: every payload shape of reference §6.2, what lands
in the APIC, and invalid payloads that must be refused without any APIC write."""

from __future__ import annotations

import copy
import json

import pytest
from aci_gw_harness import RunningGateway, read_tree, user_post, writes

from aci_gw.mo import Mo
from aci_gw.ownership import SHARED_TAG, app_tag
from testbed.aci_gw_payloads import LEAF, PATH, PHYS_DOMAIN, app_profile, contract, epg, gw_config, link


def child(mo: Mo | None, rn: str) -> Mo:
    assert mo is not None
    found = mo.child(rn)
    assert found is not None, f"{rn} not under {mo.rn}: {[c.rn for c in mo.children]}"
    return found


def test_three_tier_profile_lands_in_the_apic(apic, gateway: RunningGateway) -> None:
    result = gateway.create(app_profile())
    assert result["result"] == "success", result
    assert writes(apic) == 1  # the whole profile is one POST

    tenant = read_tree(apic, "uni/tn-t1")
    assert tenant is not None
    assert tenant.attrs["annotation"] == SHARED_TAG
    vrf = child(tenant, "ctx-t1-Vrf")
    assert vrf.attrs["annotation"] == SHARED_TAG
    bd1 = child(tenant, "BD-net1")
    assert child(bd1, "rsctx").attrs["tnFvCtxName"] == "t1-Vrf"
    child(bd1, "subnet-[10.1.1.1/24]")
    child(child(tenant, "BD-net2"), "subnet-[10.2.2.1/24]")

    ap = child(tenant, "ap-app1")
    assert ap.attrs["annotation"] == app_tag("app1")
    web = child(ap, "epg-web")
    assert child(web, "rsbd").attrs["tnFvBDName"] == "net1"
    child(web, f"rsdomAtt-[uni/phys-{PHYS_DOMAIN}]")
    assert child(web, f"rsnodeAtt-[{LEAF}]").attrs["encap"] == "vlan-1001"
    child(web, "rsprov-webPolicyExpose")
    app_epg = child(ap, "epg-app")
    child(app_epg, "rscons-webPolicyExpose")
    child(app_epg, "rsprov-dbPolicyFrmapp")
    assert child(child(ap, "epg-db"), "rsbd").attrs["tnFvBDName"] == "net2"

    flt = child(tenant, "flt-filt-webPolicyExpose")
    entry = child(flt, "e-entry-ip-tcp-80")
    assert entry.attrs["etherT"] == "ip"
    assert entry.attrs["prot"] in ("tcp", "6")
    assert entry.attrs["dFromPort"] in ("80", "http")
    child(flt, "e-entry-ip-tcp-443")
    child(child(tenant, "flt-filt-dbPolicyFrmapp"), "e-entry-ip-icmp")
    subject = child(child(tenant, "brc-webPolicyExpose"), "subj-subj-webPolicyExpose")
    assert child(subject, "rssubjFiltAtt-filt-webPolicyExpose")
    for node in tenant.walk():  # everything the gateway created carries its tag
        if node.cls in ("fvAp", "fvAEPg", "vzBrCP", "vzFilter", "vzEntry", "fvRsBd", "fvRsProv"):
            assert node.attrs.get("annotation", "").startswith(SHARED_TAG), node.rn


def test_path_bindings_and_gw_config_override_env(apic, gateway: RunningGateway) -> None:
    body = app_profile(gw=gw_config(nodeBindings="", pathBindings=PATH))
    assert gateway.create(body)["result"] == "success"
    web = child(child(read_tree(apic, "uni/tn-t1"), "ap-app1"), "epg-web")
    path_att = child(web, f"rspathAtt-[{PATH}]")
    assert path_att.attrs["encap"] == "vlan-1001"
    assert path_att.attrs["instrImedcy"] == "immediate"
    # the empty nodeBindings in gw-config keeps the environment's leaf, as documented
    child(web, f"rsnodeAtt-[{LEAF}]")


def test_vmm_domain_instead_of_physical(apic, start_gateway) -> None:
    user_post(apic, "uni/vmmp-VMware", {"vmmDomP": {"attributes": {"name": "dvs1"}}})
    gw = start_gateway(APIC_VMM_DOMAIN="dvs1")
    body = app_profile(epgs=[epg("web", 1001)], contracts=[])
    assert gw.create(body)["result"] == "success", body
    web = child(child(read_tree(apic, "uni/tn-t1"), "ap-app1"), "epg-web")
    dom = child(web, "rsdomAtt-[uni/vmmp-VMware/dom-dvs1]")
    assert dom.attrs["encap"] == "vlan-1001"
    assert dom.attrs["resImedcy"] == "immediate"
    sec = child(dom, "sec")
    assert sec.attrs["forgedTransmits"] == sec.attrs["macChanges"] == "accept"
    assert not [c for c in web.children if c.cls in ("fvRsNodeAtt", "fvRsPathAtt")]


def test_l2_only_network_gets_a_bd_without_subnet(apic, gateway: RunningGateway) -> None:
    body = app_profile(epgs=[epg("web", 1001, network="l2net", gw="")], contracts=[])
    assert gateway.create(body)["result"] == "success"
    bd = child(read_tree(apic, "uni/tn-t1"), "BD-l2net")
    assert not bd.children_of("fvSubnet")


def test_configured_bridge_domain_is_used_and_not_created(apic, start_gateway) -> None:
    user_post(apic, "uni/tn-common", {"fvBD": {"attributes": {"name": "shared-bd"}}})
    gw = start_gateway(APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF, APIC_EPG_BRIDGE_DOMAIN="shared-bd")
    assert gw.create(app_profile())["result"] == "success"
    tenant = read_tree(apic, "uni/tn-t1")
    assert not tenant.children_of("fvBD")
    for e in child(tenant, "ap-app1").children_of("fvAEPg"):
        assert child(e, "rsbd").attrs["tnFvBDName"] == "shared-bd"


def test_configured_bridge_domain_as_a_dn(apic, start_gateway) -> None:
    user_post(apic, "uni/tn-common", {"fvBD": {"attributes": {"name": "shared-bd"}}})
    gw = start_gateway(APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF,
                       APIC_EPG_BRIDGE_DOMAIN="uni/tn-common/BD-shared-bd")
    assert gw.create(app_profile())["result"] == "success"
    web = child(child(read_tree(apic, "uni/tn-t1"), "ap-app1"), "epg-web")
    assert child(web, "rsbd").attrs["tnFvBDName"] == "shared-bd"
    other = start_gateway(APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF,
                          APIC_EPG_BRIDGE_DOMAIN="uni/tn-elsewhere/BD-x")
    result = other.create(app_profile(tenant="t2"))
    assert result["result"] == "error-gw-config"
    assert "tenant elsewhere" in result["info"]


def test_include_common_tenant_reuses_a_common_bd(apic, gateway: RunningGateway) -> None:
    user_post(apic, "uni/tn-common", {"fvBD": {"attributes": {"name": "net1"}}})
    body = app_profile(gw=gw_config(includeCommonTenant="yes"))
    assert gateway.create(body)["result"] == "success"
    tenant = read_tree(apic, "uni/tn-t1")
    assert tenant.child("BD-net1") is None  # net1 comes from common
    child(tenant, "BD-net2")  # net2 is not in common: created in the tenant


def test_existing_user_tenant_and_bd_are_reused_untouched(apic, gateway: RunningGateway) -> None:
    user_post(apic, "uni", {"fvTenant": {"attributes": {"name": "t1", "descr": "mine"}, "children": [
        {"fvCtx": {"attributes": {"name": "prod"}}},
        {"fvBD": {"attributes": {"name": "net1"}, "children": [
            {"fvRsCtx": {"attributes": {"tnFvCtxName": "prod"}}}]}},
    ]}})
    assert gateway.create(app_profile())["result"] == "success"
    tenant = read_tree(apic, "uni/tn-t1")
    assert tenant.attrs.get("annotation", "") == ""
    assert tenant.attrs["descr"] == "mine"
    assert child(tenant, "BD-net1").attrs.get("annotation", "") == ""
    assert not child(tenant, "BD-net1").children_of("fvSubnet")  # the user's BD is not modified
    assert child(child(tenant, "BD-net2"), "rsctx").attrs["tnFvCtxName"] == "prod"  # the one VRF
    assert tenant.child("ctx-t1-Vrf") is None


def test_multi_vrf_tenant_needs_a_choice(apic, start_gateway) -> None:
    user_post(apic, "uni", {"fvTenant": {"attributes": {"name": "t1"}, "children": [
        {"fvCtx": {"attributes": {"name": "red"}}}, {"fvCtx": {"attributes": {"name": "blue"}}},
    ]}})
    apic.admin.reset_stats()
    gw = start_gateway(APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF)
    result = gw.create(app_profile())
    assert result["result"] == "error-gw-config"
    assert "blue" in result["info"]
    assert "red" in result["info"]
    assert "APIC_VRF" in result["info"]
    assert writes(apic) == 0

    result = gw.create(app_profile(gw=gw_config(vrf="blue")))
    assert result["result"] == "success", result
    assert child(child(read_tree(apic, "uni/tn-t1"), "BD-net1"), "rsctx").attrs["tnFvCtxName"] == "blue"

    gw2 = start_gateway(APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF, APIC_VRF="red")
    body = app_profile(app="app2", epgs=[epg("x", 1500, network="net9", gw="10.9.0.1/16")], contracts=[])
    assert gw2.create(body)["result"] == "success"
    assert child(child(read_tree(apic, "uni/tn-t1"), "BD-net9"), "rsctx").attrs["tnFvCtxName"] == "red"


def test_unenforced_mode_consumes_common_default(apic, start_gateway) -> None:
    gw = start_gateway(
        APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF, APIC_CONTRACTS_UNRESTRICTED_MODE="yes"
    )
    assert gw.create(app_profile())["result"] == "success"
    tenant = read_tree(apic, "uni/tn-t1")
    assert not tenant.children_of("vzBrCP")
    assert not tenant.children_of("vzFilter")
    for e in child(tenant, "ap-app1").children_of("fvAEPg"):
        assert [r.attrs["tnVzBrCPName"] for r in e.children_of("fvRsCons")] == ["default"]
        assert not e.children_of("fvRsProv")


def test_unenforced_by_gw_config(apic, gateway: RunningGateway) -> None:
    assert gateway.create(app_profile(gw=gw_config(enforcePolicies="no")))["result"] == "success"
    web = child(child(read_tree(apic, "uni/tn-t1"), "ap-app1"), "epg-web")
    assert [r.attrs["tnVzBrCPName"] for r in web.children_of("fvRsCons")] == ["default"]


def test_external_contracts_present(apic, gateway: RunningGateway) -> None:
    user_post(apic, "uni/tn-common", {"vzBrCP": {"attributes": {"name": "allow-dns"}}})
    body = app_profile()
    body["epgs"][0]["contract-links"] += [
        link("CONSUME", dn="uni/tn-common/brc-allow-dns", external=True),
        link("PROVIDE", dn="uni/tn-common/brc-default", external=True),
    ]
    result = gateway.create(body)
    assert result["result"] == "success", result
    web = child(child(read_tree(apic, "uni/tn-t1"), "ap-app1"), "epg-web")
    child(web, "rscons-allow-dns")
    child(web, "rsprov-default")
    assert read_tree(apic, "uni/tn-common/brc-allow-dns").attrs.get("annotation", "") == ""


def test_external_contract_in_own_tenant(apic, gateway: RunningGateway) -> None:
    user_post(apic, "uni", {"fvTenant": {"attributes": {"name": "t1"}, "children": [
        {"vzBrCP": {"attributes": {"name": "legacy"}}}]}})
    legacy = link("CONSUME", dn="uni/tn-t1/brc-legacy", external=True)
    body = app_profile(epgs=[epg("web", 1001, links=[legacy])], contracts=[])
    assert gateway.create(body)["result"] == "success"
    child(child(child(read_tree(apic, "uni/tn-t1"), "ap-app1"), "epg-web"), "rscons-legacy")


@pytest.mark.parametrize("dn", ["uni/tn-common/brc-nope", "uni/tn-other/brc-x", "uni/tn-t1/brc-missing"])
def test_external_contract_missing_is_refused_without_writes(apic, gateway: RunningGateway, dn: str) -> None:
    body = app_profile()
    body["epgs"][1]["contract-links"].append(link("CONSUME", dn=dn, external=True))
    result = gateway.create(body)
    assert result["result"] == "invalid-args"
    assert result["info"] == f"External contract {dn} not found in APIC."
    assert writes(apic) == 0
    assert read_tree(apic, "uni/tn-t1") is None


def test_external_contract_of_another_tenant_is_explained(apic, gateway: RunningGateway) -> None:
    user_post(apic, "uni", {"fvTenant": {"attributes": {"name": "shared"}, "children": [
        {"vzBrCP": {"attributes": {"name": "x", "scope": "global"}}}]}})
    apic.admin.reset_stats()
    body = app_profile()
    body["epgs"][0]["contract-links"].append(link("CONSUME", dn="uni/tn-shared/brc-x", external=True))
    result = gateway.create(body)
    assert result["result"] == "invalid-args", result
    assert "cif-" in result["info"]
    assert writes(apic) == 0


def test_linked_but_undefined_internal_contract_is_created_empty(apic, gateway: RunningGateway) -> None:
    body = app_profile(epgs=[epg("web", 1001, links=[link("CONSUME", "adhoc")])], contracts=[])
    assert gateway.create(body)["result"] == "success"
    brc = child(read_tree(apic, "uni/tn-t1"), "brc-adhoc")
    assert brc.attrs["annotation"] == app_tag("app1")
    assert not brc.children_of("vzSubj")


def test_long_contract_names_are_shortened_consistently(apic, gateway: RunningGateway) -> None:
    name = "averyveryverylongpolicynamethatkeepsgoing" + "Frm" + "anotherquitelongendpointgroupname"
    body = app_profile(
        epgs=[epg("web", 1001, links=[link("PROVIDE", name)])], contracts=[contract(name, ("tcp", 22))]
    )
    assert gateway.create(body)["result"] == "success"
    tenant = read_tree(apic, "uni/tn-t1")
    brcs = tenant.children_of("vzBrCP")
    assert len(brcs) == 1
    assert len(brcs[0].attrs["name"]) <= 64
    web = child(child(tenant, "ap-app1"), "epg-web")
    assert web.children_of("fvRsProv")[0].attrs["tnVzBrCPName"] == brcs[0].attrs["name"]
    assert gateway.create(body)["changes"] == 0


def test_validate_never_contacts_the_apic(apic, gateway: RunningGateway) -> None:
    assert gateway.call("/validateAppProf", app_profile()) == {"result": "success", "info": "LGTM"}
    assert apic.admin.stats(log=False)["total"] == 0


def _without(body: dict, *path: str | int) -> dict:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(body: dict, value: object, *path: str | int) -> dict:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


BASE = app_profile(gw=gw_config())
INVALID = {
    "missing tenant": (_without(BASE, "tenant"), "missing mandatory fields: tenant"),
    "missing epgs": (_without(BASE, "epgs"), "missing mandatory fields: epgs"),
    "unknown top key": (_with(BASE, 1, "extra"), "unknown fields: extra"),
    "wrong version": (_with(BASE, "v1.1", "aci-gw-api-version"), "aci-gw-api-version"),
    "missing version": (_without(BASE, "aci-gw-api-version"), "missing mandatory fields: aci-gw-api-version"),
    "empty epg list": (_with(BASE, [], "epgs"), "epgs: empty"),
    "epg missing vlan": (_without(BASE, "epgs", 0, "vlan-tag"), "missing mandatory fields: vlan-tag"),
    "unknown epg key": (_with(BASE, "x", "epgs", 0, "color"), "unknown fields: color"),
    "vlan 0": (_with(BASE, "0", "epgs", 0, "vlan-tag"), "invalid VLAN tag"),
    "vlan 4095": (_with(BASE, "4095", "epgs", 0, "vlan-tag"), "invalid VLAN tag"),
    "vlan text": (_with(BASE, "ten", "epgs", 0, "vlan-tag"), "invalid VLAN tag"),
    "duplicate vlan": (_with(BASE, "1001", "epgs", 1, "vlan-tag"), "VLAN tag 1001"),
    "bad cidr": (_with(BASE, "10.1.1.300/24", "epgs", 0, "gw-cidr"), "invalid gateway CIDR"),
    "cidr without length": (_with(BASE, "10.1.1.1", "epgs", 0, "gw-cidr"), "invalid gateway CIDR"),
    "bad epg name": (_with(BASE, "web tier", "epgs", 0, "name"), "invalid name"),
    "bad link kind": (_with(BASE, "USE", "epgs", 0, "contract-links", 0, "link-kind"), "PROVIDE or CONSUME"),
    "external without dn": (_with(BASE, "EXTERNAL", "epgs", 0, "contract-links", 0, "contract-kind"),
                            "needs contract-dn"),
    "bad port": (_with(BASE, "70000", "contract-defs", 0, "filter-info", 0, "servport"), "invalid port"),
    "bad protocol": (
        _with(BASE, "sctp", "contract-defs", 0, "filter-info", 0, "protocol"), "invalid protocol"
    ),
    "unknown gw-config key": (_with(BASE, "x", "gw-config", "color"), "unknown fields: color"),
    "epgs not a list": (_with(BASE, {"name": "web"}, "epgs"), "epgs: empty or not a list"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_payloads_are_refused_without_apic_writes(apic, gateway: RunningGateway, case: str) -> None:
    body, reason = INVALID[case]
    result = gateway.create(body)
    assert result["result"] == "invalid-args", result
    assert reason in result["info"]
    validated = gateway.call("/validateAppProf", body)
    assert validated["result"] == "failed"
    assert reason in validated["info"]
    assert writes(apic) == 0


def test_non_json_body(apic, gateway: RunningGateway) -> None:
    for path in ("/createAppProf", "/deleteAppProf", "/validateAppProf", "/getEndpoint"):
        response = gateway.http.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
        assert response.status_code == 200
        assert response.json() == {"result": "invalid-args", "info": "request body is not valid JSON"}
    assert apic.admin.stats(log=False)["total"] == 0


def test_gw_config_errors(apic, start_gateway) -> None:
    gw = start_gateway()  # no domain in the environment
    result = gw.create(app_profile())
    assert result["result"] == "error-gw-config"
    assert "domain" in result["info"]
    result = gw.create(app_profile(gw=gw_config(nodeBindings="", pathBindings="")))
    assert result["result"] == "error-gw-config"
    assert "bindings" in result["info"]
    result = gw.create(app_profile(gw=gw_config(nodeBindings="leaf101")))
    assert result["result"] == "error-gw-config"
    assert "leaf101" in result["info"]
    assert apic.admin.stats(log=False)["total"] == 0


def test_get_endpoint(apic, gateway: RunningGateway) -> None:
    assert gateway.create(app_profile())["result"] == "success"
    apic.admin.add_endpoint(
        "uni/tn-t1/ap-app1/epg-web", "02:02:0A:01:01:05", ip="10.1.1.5", encap="vlan-1001"
    )
    query = {"tenant": "t1", "app-prof": "app1", "epg": "web", "epmac": "02:02:0a:01:01:05"}
    assert gateway.call("/getEndpoint", query) == {"result": "success", "msg": "ok", "ip": "10.1.1.5",
                                                   "vlan": "1001"}
    missing = gateway.call("/getEndpoint", {**query, "epmac": "02:02:0a:01:01:06"})
    assert missing["result"] == "None"
    assert missing["msg"] == "Not found in APIC"
    bad = gateway.call("/getEndpoint", {**query, "epmac": "nope"})
    assert bad["result"] == "error"
    assert "MAC" in bad["msg"]


def test_dry_run_mode(start_gateway, apic) -> None:
    gw = start_gateway(APIC_URL="SANITY", APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF)
    assert gw.create(app_profile())["result"] == "success"
    assert gw.delete("t1", "app1")["result"] == "success"
    assert gw.create(_with(BASE, "v9", "aci-gw-api-version"))["result"] == "invalid-args"
    assert gw.http.get("/healthz").json()["mode"] == "dry-run"
    assert apic.admin.stats(log=False)["total"] == 0
    json.dumps(gw.http.get("/metrics").text)


def test_internal_errors_answer_in_contivs_shape(apic, gateway: RunningGateway, monkeypatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("aci_gw.gateway.plan_push", broken)
    result = gateway.create(app_profile())
    assert result == {"result": "ERROR", "info": "internal error: RuntimeError: boom"}
    assert writes(apic) == 0


def test_minimal_and_loose_payload_shapes(apic, gateway: RunningGateway) -> None:
    """Optional keys left out, numbers as JSON numbers, an any-protocol rule and a numbered protocol."""
    body = {"aci-gw-api-version": "v1.2", "tenant": "t1", "app-prof": "app1",
            "epgs": [{"name": "web", "nw-name": "net1", "gw-cidr": "10.1.1.1/24", "vlan-tag": 1001}]}
    assert gateway.create(body)["result"] == "success"
    body["epgs"][0]["contract-links"] = [{"link-kind": "provide", "contract-kind": "internal",
                                          "contract-name": "anyPolicyExpose"}]
    body["contract-defs"] = [{"name": "anyPolicyExpose", "filter-info": [
        {"protocol": "", "servport": "0"}, {"protocol": "47"}, {"servport": "8080", "protocol": "udp"}]}]
    result = gateway.create(body)
    assert result["result"] == "success", result
    flt = child(read_tree(apic, "uni/tn-t1"), "flt-filt-anyPolicyExpose")
    assert sorted(c.rn for c in flt.children_of("vzEntry")) == [
        "e-entry-ip", "e-entry-ip-47", "e-entry-ip-udp-8080",
    ]
    assert child(flt, "e-entry-ip").attrs.get("prot", "unspecified") == "unspecified"
    assert gateway.create(body)["changes"] == 0
    full_delete = {**body}  # netmaster may send the whole profile to /deleteAppProf
    assert gateway.call("/deleteAppProf", full_delete)["result"] == "success"
    assert read_tree(apic, "uni/tn-t1") is None
