"""The drift watch against apic_mock over HTTPS: objects the gateway owns, deleted or changed in the
APIC by hand, come back through the APIC's own event subscriptions; a user's objects next to them are
left alone; the watch survives subscription expiry, an APIC restart and a token expiry; and the
fencing token keeps a stale writer from going backwards."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from aci_gw_harness import RunningGateway, add_phys_domain, gateway_env, read_tree, user_post

from testbed.aci_gw import AciGwProcess
from testbed.aci_gw_payloads import LEAF, PHYS_DOMAIN, app_profile, epg, link
from testbed.apic import ApicMock
from testbed.waiting import eventually

ENV = {"APIC_PHYS_DOMAIN": PHYS_DOMAIN, "APIC_LEAF_NODE": LEAF}
EPG_WEB = "uni/tn-t1/ap-app1/epg-web"
RELATION = "uni/tn-t1/ap-app1/epg-app/rscons-webPolicyExpose"


def metric(gw: RunningGateway, name: str, **labels: str) -> float:
    return gw.metrics.registry.get_sample_value(name, labels) or 0.0


def user_delete(apic: ApicMock, dn: str) -> None:
    """An APIC administrator deletes an object (HTTP DELETE, as the GUI's REST calls do)."""
    with apic.client() as client:
        assert client.delete(f"/api/mo/{dn}.json").status_code == 200


def exists(apic: ApicMock, dn: str) -> bool:
    with apic.client() as client:
        return bool(client.get(f"/api/mo/{dn}.json").json()["imdata"])


def watched(gw: RunningGateway, tenant: str = "t1") -> None:
    eventually(lambda: tenant in gw.gateway.drift_status()["watchedTenants"], what=f"tenant {tenant} watched")


def repairs(gw: RunningGateway, tenant: str = "t1", app: str = "app1") -> int:
    return next((a["repairs"] for a in gw.gateway.drift_status()["appProfiles"]
                 if (a["tenant"], a["app"]) == (tenant, app)), 0)


def filter_entry(apic: ApicMock) -> str:
    """The DN of one vzEntry of the gateway's filter for webPolicyExpose."""
    tenant = read_tree(apic, "uni/tn-t1")
    assert tenant is not None
    for flt in tenant.children_of("vzFilter"):
        for entry in flt.children_of("vzEntry"):
            if entry.attrs.get("dToPort") in ("80", "http"):
                return f"uni/tn-t1/{flt.rn}/{entry.rn}"
    raise AssertionError("no filter entry for port 80")


def test_deleted_epg_filter_entry_and_relation_come_back_and_user_objects_stay(
    apic, start_gateway, caplog: pytest.LogCaptureFixture
) -> None:
    gw = start_gateway(**ENV)
    assert gw.create(app_profile())["result"] == "success"
    user_post(apic, "uni/tn-t1/ap-app1", {"fvAEPg": {"attributes": {"name": "user-epg"}}})
    user_post(apic, "uni/tn-t1", {"vzFilter": {"attributes": {"name": "user-flt"}}})
    watched(gw)
    caplog.set_level(logging.INFO, logger="aci_gw.drift")
    entry = filter_entry(apic)
    for n, dn in enumerate((EPG_WEB, entry, RELATION), start=1):
        user_delete(apic, dn)
        eventually(lambda dn=dn: exists(apic, dn), timeout=10, what=f"{dn} repaired")
        eventually(lambda n=n: repairs(gw) >= n, what="repair counted")
    assert metric(gw, "aci_gw_drift_repairs_total", result="repaired") >= 3
    assert metric(gw, "aci_gw_drift_detected_total", kind="deleted") >= 3
    assert gw.metrics.registry.get_sample_value("aci_gw_drift_repair_seconds_count") >= 3
    assert exists(apic, "uni/tn-t1/ap-app1/epg-user-epg")
    assert exists(apic, "uni/tn-t1/flt-user-flt")
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "aci_gw.drift")
    assert "deleted fvAEPg uni/tn-t1/ap-app1/epg-web" in logged
    assert "deleted fvRsCons " + RELATION in logged
    assert "repaired in one POST" in logged
    assert f"changed by {apic.username}" in logged  # from the APIC's audit log (aaaModLR)
    status = gw.http.get("/api/v1/drift").json()
    (app,) = [a for a in status["appProfiles"] if a["app"] == "app1"]
    assert app["repairs"] >= 3
    assert app["driftRepairedAt"] is not None


def test_modified_attribute_is_set_back(apic, gateway) -> None:
    assert gateway.create(app_profile())["result"] == "success"
    watched(gateway)
    entry = filter_entry(apic)
    user_post(apic, entry, {"vzEntry": {"attributes": {"dFromPort": "8080", "dToPort": "8080"}}})

    def port() -> str:
        tree = read_tree(apic, entry)
        return tree.attrs["dToPort"] if tree else ""

    eventually(lambda: port() in ("80", "http"), timeout=10, what="port set back")
    assert metric(gateway, "aci_gw_drift_detected_total", kind="modified") >= 1


def test_a_user_relation_added_below_an_owned_epg_is_reported_and_left(apic, gateway) -> None:
    assert gateway.create(app_profile())["result"] == "success"
    watched(gateway)
    user_post(apic, "uni/tn-t1", {"vzBrCP": {"attributes": {"name": "user-contract"}}})
    user_post(apic, EPG_WEB, {"fvRsCons": {"attributes": {"tnVzBrCPName": "user-contract"}}})
    eventually(lambda: metric(gateway, "aci_gw_drift_detected_total", kind="foreign") >= 1, what="reported")
    user_delete(apic, RELATION)  # a real drift in the same tenant: its repair must not take the user's
    eventually(lambda: exists(apic, RELATION), timeout=10, what="relation repaired")
    assert exists(apic, f"{EPG_WEB}/rscons-user-contract")


def test_report_only_detects_and_writes_nothing(apic, start_gateway) -> None:
    gw = start_gateway(APIC_DRIFT_REPAIR="no", **ENV)
    assert gw.create(app_profile())["result"] == "success"
    watched(gw)
    user_delete(apic, EPG_WEB)
    eventually(lambda: metric(gw, "aci_gw_drift_repairs_total", result="reported") >= 1, what="drift reported")
    (app,) = gw.gateway.drift_status()["appProfiles"]
    assert app["driftDetectedAt"] is not None
    assert app["repairs"] == 0
    assert not exists(apic, EPG_WEB)
    assert gw.create(app_profile())["changes"] > 0  # a push still repairs, as before


def test_watch_resumes_after_subscription_expiry(apic, start_gateway) -> None:
    gw = start_gateway(APIC_SUBSCRIPTION_TIMEOUT="3", **ENV)
    assert gw.create(app_profile())["result"] == "success"
    watched(gw)
    assert apic.admin.expire_subscriptions() >= 1
    user_delete(apic, EPG_WEB)  # no subscription: no event; found when the watch subscribes again
    eventually(lambda: exists(apic, EPG_WEB), timeout=15, what="repaired after re-subscription")
    assert metric(gw, "aci_gw_apic_subscriptions_total", reason="expired") >= 1


def test_watch_resumes_after_token_expiry(apic, start_gateway) -> None:
    gw = start_gateway(APIC_SUBSCRIPTION_TIMEOUT="3", **ENV)
    assert gw.create(app_profile())["result"] == "success"
    watched(gw)
    apic.admin.expire_tokens()
    user_delete(apic, EPG_WEB)  # made while the gateway's session is dead
    eventually(lambda: exists(apic, EPG_WEB), timeout=15, what="repaired")
    eventually(lambda: metric(gw, "aci_gw_apic_subscriptions_total", reason="reconnect") >= 1,
               timeout=15, what="new session, websocket and subscriptions")
    user_delete(apic, RELATION)  # and the new watch sees the next one
    eventually(lambda: exists(apic, RELATION), timeout=10, what="repaired on the new session")


def test_watch_resumes_after_an_apic_restart(tmp_path: Path) -> None:
    with ApicMock.start(state=tmp_path / "apic.json") as apic:
        add_phys_domain(apic)
        gw = RunningGateway(gateway_env(apic, APIC_SUBSCRIPTION_TIMEOUT="5", **ENV))
        try:
            assert gw.create(app_profile())["result"] == "success"
            watched(gw)
            apic.restart()
            user_delete(apic, EPG_WEB)  # made while the gateway reconnects, or just after
            eventually(lambda: exists(apic, EPG_WEB), timeout=15, what="repaired after the restart")
            eventually(lambda: metric(gw, "aci_gw_apic_subscriptions_total", reason="reconnect") >= 1,
                       what="re-subscribed")
        finally:
            gw.stop()


# -- one writer: the fencing token ---------------------------------------------------------------

def fenced(gw: RunningGateway | AciGwProcess, body: dict, token: int) -> dict:
    http = gw.http if isinstance(gw, RunningGateway) else None
    headers = {"X-Contiv-Fencing-Token": str(token)}
    if http is not None:
        return http.post("/createAppProf", json=body, headers=headers).json()
    import httpx

    return httpx.post(f"{gw.url}/createAppProf", json=body, headers=headers, timeout=60).json()


def web_vlan(apic: ApicMock) -> str:
    tree = read_tree(apic, EPG_WEB)
    assert tree is not None
    return next(c.attrs["encap"] for c in tree.children if c.cls == "fvRsNodeAtt")


def profile(vlan: int) -> dict:
    body = app_profile()
    body["epgs"][0] = epg("web", vlan, links=[link("PROVIDE", "webPolicyExpose")])
    return body


def recorded(apic: ApicMock) -> str:
    tree = read_tree(apic, "uni/tn-t1/annotationKey-[contiv-aci-gw-fencing]")
    return tree.attrs["value"] if tree else ""


def test_a_stale_token_is_refused(apic, gateway) -> None:
    assert fenced(gateway, profile(1101), 6)["result"] == "success"
    assert recorded(apic) == "6"
    stale = fenced(gateway, profile(1102), 5)
    assert stale["result"] == "failed"
    assert "fencing token 5 is older than 6" in stale["info"]
    assert "nothing was written" in stale["info"]
    assert web_vlan(apic) == "vlan-1101"
    assert recorded(apic) == "6"
    bad = gateway.http.post("/createAppProf", json=profile(1102), headers={"X-Contiv-Fencing-Token": "x"}).json()
    assert bad["result"] == "invalid-args"
    assert gateway.create(profile(1101))["changes"] == 0  # tokenless (Contiv's netmaster): accepted, kept
    assert recorded(apic) == "6"
    assert metric(gateway, "aci_gw_fencing_refusals_total") == 1


def test_two_gateways_overlapping_cannot_leave_a_stale_write(apic) -> None:
    """Two gateway processes behind two netmasters during a failover. The old leader's push (token 5)
    is read before and written after the new leader's (token 6): the APIC offers no compare-and-swap,
    so the stale POST lands, and the newer gateway's watch puts its intent back; the old one's later
    pushes are refused."""
    env = gateway_env(apic, **ENV)
    with AciGwProcess.start(env) as old, AciGwProcess.start(env) as new:
        assert fenced(old, profile(1101), 5)["result"] == "success"
        apic.admin.reset_stats()
        apic.admin.inject_fault("latency", delay_ms=1500, method="POST", path=r"^/api/mo/uni/tn-t1", count=1)
        stale: dict = {}
        slow = threading.Thread(target=lambda: stale.update(fenced(old, profile(1102), 5)))
        slow.start()
        eventually(lambda: any(e["method"] == "POST" for e in apic.admin.stats()["log"]), what="stale POST sent")
        assert fenced(new, profile(1201), 6)["result"] == "success"
        slow.join(30)
        assert stale["result"] == "success"  # it passed the check before token 6 was written
        eventually(lambda: web_vlan(apic) == "vlan-1201" and recorded(apic) == "6", timeout=10,
                   what="the newer intent back in the APIC")
        refused = fenced(old, profile(1102), 5)
        assert refused["result"] == "failed"
        assert "older than 6" in refused["info"]
        assert web_vlan(apic) == "vlan-1201"
