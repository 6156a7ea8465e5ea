"""Reconcile, not recreate, against apic_mock: idempotent pushes, exact convergence, deletes that spare
user objects, ownership shared between app profiles, and a stateless gateway."""

from __future__ import annotations

from aci_gw_harness import RunningGateway, read_tree, user_post, writes

from aci_gw.mo import Mo
from aci_gw.ownership import is_owned
from testbed.aci_gw_payloads import LEAF, PHYS_DOMAIN, app_profile, contract, epg, gw_config, link

SKIP_ATTRS = {
    "modTs", "uid", "userdom", "childAction", "lcOwn", "monPolDn", "status", "state", "stateQual", "tCl",
    "tDn", "tRn", "tType", "tContextDn", "rType", "forceResolve", "extMngdBy", "configIssues", "configSt",
    "dn", "rn",
}


def owned_state(apic, tenant: str = "t1") -> dict[str, dict[str, str]]:
    """Every owned object of the tenant by DN, with its configured attributes."""
    tree = read_tree(apic, f"uni/tn-{tenant}")
    out: dict[str, dict[str, str]] = {}
    if tree is None:
        return out

    def walk(mo: Mo, dn: str) -> None:
        if is_owned(mo):
            out[dn] = {k: v for k, v in mo.attrs.items() if k not in SKIP_ATTRS}
        for c in mo.children:
            walk(c, f"{dn}/{c.rn}")

    walk(tree, f"uni/tn-{tenant}")
    return out


def requests_by_method(apic) -> dict[str, int]:
    """The push path's requests: logins and the drift watch's subscriptions left out."""
    stats = apic.admin.stats(log=True)
    counts: dict[str, int] = {}
    for entry in stats["log"]:
        if entry["path"].startswith(("/api/aaa", "/api/subscriptionRefresh")) or "subscription=yes" in entry["query"]:
            continue
        counts[entry["method"]] = counts.get(entry["method"], 0) + 1
    return counts


def test_same_payload_twice_writes_nothing(apic, gateway: RunningGateway) -> None:
    first = gateway.create(app_profile())
    assert first["result"] == "success"
    assert first["changes"] > 20
    assert writes(apic) == 1
    assert requests_by_method(apic) == {"GET": 1, "POST": 1}
    apic.admin.reset_stats()
    second = gateway.create(app_profile())
    assert second == {"result": "success", "info": "app profile t1/app1 unchanged: nothing to write",
                      "changes": 0}
    assert writes(apic) == 0
    assert requests_by_method(apic) == {"GET": 1}


def _changed_profile() -> dict:
    """The default profile after a round of edits: db removed, a cache tier added, web's VLAN and
    ports changed, one contract gone, one rule added."""
    return app_profile(
        epgs=[
            epg("web", 1101, links=[link("PROVIDE", "webPolicyExpose")]),
            epg("app", 1002,
                links=[link("CONSUME", "webPolicyExpose"), link("PROVIDE", "cachePolicyFrmapp")]),
            epg("cache", 1004, network="net3", gw="10.3.3.1/24",
                links=[link("CONSUME", "cachePolicyFrmapp")]),
        ],
        contracts=[
            contract("webPolicyExpose", ("tcp", 8080), ("tcp", 443)),
            contract("cachePolicyFrmapp", ("tcp", 11211), ("udp", 11211)),
        ],
    )


def test_changed_payload_converges_exactly(apic, gateway: RunningGateway) -> None:
    assert gateway.create(app_profile())["result"] == "success"
    apic.admin.reset_stats()
    result = gateway.create(_changed_profile())
    assert result["result"] == "success", result
    assert writes(apic) == 1  # the whole change in one POST
    converged = owned_state(apic)

    apic.admin.reset()  # a fresh fabric, the new payload pushed once: the reference
    user_post(apic, "uni", {"physDomP": {"attributes": {"name": PHYS_DOMAIN}}})
    assert gateway.create(_changed_profile())["result"] == "success"
    assert converged == owned_state(apic)

    tenant = read_tree(apic, "uni/tn-t1")
    assert tenant.child("BD-net2") is None  # db's network is no longer used by anything
    assert tenant.child("brc-dbPolicyFrmapp") is None
    assert tenant.child("flt-filt-dbPolicyFrmapp") is None
    assert tenant.child("flt-filt-webPolicyExpose").child("e-entry-ip-tcp-80") is None


def test_drift_is_repaired_with_one_write(apic, gateway: RunningGateway) -> None:
    assert gateway.create(app_profile())["result"] == "success"
    drift = {"fvRsNodeAtt": {"attributes": {"tDn": LEAF, "encap": "vlan-7"}}}
    user_post(apic, "uni/tn-t1/ap-app1/epg-web", drift)
    user_post(apic, "uni/tn-t1/ap-app1", {"fvAEPg": {"attributes": {"name": "db", "status": "deleted"}}})
    apic.admin.reset_stats()
    result = gateway.create(app_profile())
    assert result["result"] == "success"
    assert writes(apic) == 1
    epg_web = read_tree(apic, "uni/tn-t1/ap-app1/epg-web")
    assert epg_web.child(f"rsnodeAtt-[{LEAF}]").attrs["encap"] == "vlan-1001"
    assert read_tree(apic, "uni/tn-t1/ap-app1/epg-db") is not None


def test_enforcement_off_removes_contracts_and_filters(apic, gateway: RunningGateway) -> None:
    assert gateway.create(app_profile())["result"] == "success"
    assert gateway.create(app_profile(gw=gw_config(enforcePolicies="no")))["result"] == "success"
    tenant = read_tree(apic, "uni/tn-t1")
    assert not tenant.children_of("vzBrCP")
    assert not tenant.children_of("vzFilter")
    web = tenant.child("ap-app1").child("epg-web")
    assert [c.rn for c in web.children if c.cls in ("fvRsProv", "fvRsCons")] == ["rscons-default"]


def _add_user_objects(apic) -> None:
    """A user's own configuration inside the gateway's tenant and app profile."""
    user_post(apic, "uni/tn-t1", {"fvBD": {"attributes": {"name": "user-bd"}}})
    user_post(apic, "uni/tn-t1", {"vzBrCP": {"attributes": {"name": "user-contract"}}})
    user_post(apic, "uni/tn-t1/ap-app1", {"fvAEPg": {"attributes": {"name": "user-epg"}, "children": [
        {"fvRsBd": {"attributes": {"tnFvBDName": "net1"}}},
        {"fvRsCons": {"attributes": {"tnVzBrCPName": "webPolicyExpose"}}},
    ]}})
    relation = {"fvRsCons": {"attributes": {"tnVzBrCPName": "user-contract"}}}
    user_post(apic, "uni/tn-t1/ap-app1/epg-web", relation)


def test_delete_spares_user_objects(apic, gateway: RunningGateway) -> None:
    assert gateway.create(app_profile())["result"] == "success"
    _add_user_objects(apic)
    apic.admin.reset_stats()
    result = gateway.delete("t1", "app1")
    assert result["result"] == "success", result
    assert writes(apic) == 1
    tenant = read_tree(apic, "uni/tn-t1")
    assert tenant is not None
    ap = tenant.child("ap-app1")
    assert ap is not None, "the app profile holds a user EPG, so it stays"
    assert ap.child("epg-user-epg") is not None
    assert ap.child("epg-app") is None
    assert ap.child("epg-db") is None
    # web holds the user's relation: only what the gateway put there is gone
    web = ap.child("epg-web")
    assert web is not None
    assert [c.rn for c in web.children if c.cls.startswith("fvRs") and c.cls != "fvRsCustQosPol"] == [
        "rscons-user-contract"
    ]
    assert tenant.child("BD-user-bd") is not None
    assert tenant.child("brc-user-contract") is not None
    # still used by the user's EPG: the BD it binds to and the contract it consumes (with its filter)
    assert tenant.child("BD-net1") is not None
    assert tenant.child("brc-webPolicyExpose") is not None
    assert tenant.child("flt-filt-webPolicyExpose") is not None
    # no longer used by anything: gone
    assert tenant.child("BD-net2") is None
    assert tenant.child("brc-dbPolicyFrmapp") is None
    assert tenant.child("flt-filt-dbPolicyFrmapp") is None


def test_delete_of_the_last_profile_removes_the_tenant_it_created(apic, gateway: RunningGateway) -> None:
    assert gateway.create(app_profile())["result"] == "success"
    assert gateway.delete("t1", "app1")["result"] == "success"
    assert read_tree(apic, "uni/tn-t1") is None
    apic.admin.reset_stats()
    again = gateway.delete("t1", "app1")
    assert again["result"] == "success"
    assert "nothing to delete" in again["info"]
    assert writes(apic) == 0


def test_delete_in_a_user_tenant_leaves_the_tenant(apic, gateway: RunningGateway) -> None:
    user_post(apic, "uni", {"fvTenant": {"attributes": {"name": "t1"}}})
    assert gateway.create(app_profile())["result"] == "success"
    assert gateway.delete("t1", "app1")["result"] == "success"
    tenant = read_tree(apic, "uni/tn-t1")
    assert tenant is not None
    assert not [c for c in tenant.walk() if is_owned(c)]


def test_two_profiles_share_a_tenant(apic, gateway: RunningGateway) -> None:
    one = app_profile(app="one", epgs=[epg("a", 1001, links=[link("PROVIDE", "c1")])],
                      contracts=[contract("c1", ("tcp", 80))])
    two = app_profile(app="two", epgs=[epg("b", 1002, links=[link("CONSUME", "c1")]),
                                       epg("c", 1003, network="net2", gw="10.2.0.1/16")], contracts=[])
    assert gateway.create(one)["result"] == "success"
    assert gateway.create(two)["result"] == "success"
    # pushing one again changes nothing of two's
    apic.admin.reset_stats()
    assert gateway.create(one)["changes"] == 0
    assert gateway.create(two)["changes"] == 0
    assert writes(apic) == 0
    # one goes: its EPG goes, but c1 (consumed by two) and net1 (used by two) stay
    assert gateway.delete("t1", "one")["result"] == "success"
    tenant = read_tree(apic, "uni/tn-t1")
    assert tenant.child("ap-one") is None
    assert tenant.child("ap-two") is not None
    assert tenant.child("brc-c1") is not None
    assert tenant.child("flt-filt-c1") is not None
    assert tenant.child("BD-net1") is not None
    assert tenant.child("BD-net2") is not None
    # two goes: nothing of the gateway's is left, and the tenant it created goes too
    assert gateway.delete("t1", "two")["result"] == "success"
    assert read_tree(apic, "uni/tn-t1") is None


def test_a_user_contract_with_our_name_is_not_taken_over(apic, gateway: RunningGateway) -> None:
    user_post(apic, "uni", {"fvTenant": {"attributes": {"name": "t1"}, "children": [
        {"vzBrCP": {"attributes": {"name": "webPolicyExpose"}}}]}})
    apic.admin.reset_stats()
    result = gateway.create(app_profile())
    assert result["result"] == "failed"
    assert "brc-webPolicyExpose" in result["info"]
    assert "not managed by aci-gw" in result["info"]
    assert writes(apic) == 0


def test_gateway_restart_loses_nothing(apic, start_gateway) -> None:
    env = {"APIC_PHYS_DOMAIN": PHYS_DOMAIN, "APIC_LEAF_NODE": LEAF}
    first = start_gateway(**env)
    assert first.create(app_profile())["result"] == "success"
    first.stop()
    second = start_gateway(**env)  # a new process would know exactly as much: nothing in memory
    apic.admin.reset_stats()
    assert second.create(app_profile())["changes"] == 0
    assert writes(apic) == 0
    assert second.create(_changed_profile())["result"] == "success"
    assert second.delete("t1", "app1")["result"] == "success"
    assert read_tree(apic, "uni/tn-t1") is None
