"""The read API, /healthz, /metrics and the bearer token, against apic_mock."""

from __future__ import annotations

from aci_gw_harness import RunningGateway, user_post

from testbed.aci_gw_payloads import LEAF, PHYS_DOMAIN, app_profile


def test_tenants_list_and_detail(apic, gateway: RunningGateway) -> None:
    user_post(apic, "uni", {"fvTenant": {"attributes": {"name": "hand-made"}}})
    assert gateway.create(app_profile())["result"] == "success"
    tenants = gateway.http.get("/api/v1/tenants").json()
    by_name = {t["name"]: t for t in tenants}
    assert {"common", "t1", "hand-made"} <= set(by_name)
    t1 = by_name["t1"]
    assert t1["managed"] is True
    assert by_name["hand-made"]["managed"] is False
    assert [v["name"] for v in t1["vrfs"]] == ["t1-Vrf"]
    bds = {b["name"]: b for b in t1["bridge-domains"]}
    assert bds["net1"] == {"name": "net1", "managed": True, "vrf": "t1-Vrf", "subnets": ["10.1.1.1/24"]}
    (ap,) = t1["app-profiles"]
    assert ap["name"] == "app1"
    assert ap["appProfile"] == "app1"
    web = next(e for e in ap["epgs"] if e["name"] == "web")
    assert web["bridgeDomain"] == "net1"
    assert web["encap"] == ["vlan-1001"]
    assert web["provides"] == ["webPolicyExpose"]
    assert web["domains"] == [f"uni/phys-{PHYS_DOMAIN}"]

    detail = gateway.http.get("/api/v1/tenants/t1").json()
    contracts = {c["name"]: c for c in detail["contracts"]}
    assert contracts["webPolicyExpose"]["dn"] == "uni/tn-t1/brc-webPolicyExpose"
    assert contracts["webPolicyExpose"]["subjects"] == [
        {"name": "subj-webPolicyExpose", "filters": ["filt-webPolicyExpose"]}
    ]
    filters = {f["name"]: f for f in detail["filters"]}
    entries = {e["name"] for e in filters["filt-webPolicyExpose"]["entries"]}
    assert entries == {"entry-ip-tcp-80", "entry-ip-tcp-443"}
    section = gateway.http.get("/api/v1/tenants/t1/bridge-domains").json()
    assert sorted(b["name"] for b in section) == ["net1", "net2"]


def test_missing_tenant_and_section(apic, gateway: RunningGateway) -> None:
    assert gateway.http.get("/api/v1/tenants/nope").status_code == 404
    assert gateway.http.get("/api/v1/tenants/nope/contracts").status_code == 404
    assert gateway.http.get("/api/v1/tenants/common/colours").status_code == 404


def test_contracts_across_the_fabric(apic, gateway: RunningGateway) -> None:
    assert gateway.create(app_profile())["result"] == "success"
    contracts = gateway.http.get("/api/v1/contracts").json()
    dns = {c["dn"]: c for c in contracts}
    assert dns["uni/tn-common/brc-default"]["tenant"] == "common"
    assert dns["uni/tn-common/brc-default"]["managed"] is False
    assert dns["uni/tn-t1/brc-dbPolicyFrmapp"]["managed"] is True


def test_healthz_reports_the_apic_session(apic, gateway: RunningGateway) -> None:
    health = gateway.http.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "apic": apic.url, "backend": "rest", "auth": "password",
                             "loggedIn": True}


def test_metrics(apic, gateway: RunningGateway) -> None:
    gateway.create(app_profile())
    gateway.create(app_profile())
    gateway.create({"tenant": "x"})
    text = gateway.http.get("/metrics").text
    assert 'aci_gw_pushes_total{operation="create",result="success"} 2.0' in text
    assert 'aci_gw_pushes_total{operation="create",result="invalid-args"} 1.0' in text
    assert 'aci_gw_apic_requests_total{method="GET",status="200"}' in text
    assert 'aci_gw_apic_requests_total{method="POST",status="200"} 2.0' in text  # login + one push
    assert "aci_gw_apic_request_duration_seconds_bucket" in text
    assert 'aci_gw_apic_logins_total{kind="password",result="ok"} 1.0' in text
    assert "aci_gw_apic_object_changes_total" in text


def test_bearer_token_protects_the_api(apic, start_gateway) -> None:
    gw = start_gateway(token="s3cret", APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF)
    refused = gw.http.post("/createAppProf", json=app_profile())
    assert refused.status_code == 401
    assert refused.json()["result"] == "ERROR"
    assert gw.http.get("/api/v1/tenants").status_code == 401
    wrong = gw.http.get("/api/v1/tenants", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert apic.admin.stats(log=False)["writes"] == 0
    ok = gw.call("/createAppProf", app_profile(), headers={"Authorization": "Bearer s3cret"})
    assert ok["result"] == "success"
    assert gw.http.get("/api/v1/tenants", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert gw.http.get("/healthz").status_code == 200  # probes need no token
    assert gw.http.get("/metrics").status_code == 200
