"""App profiles defined on netmaster converge in the APIC (through a real aci-gw), and follow changes."""

from __future__ import annotations

from .conftest import NODE, PATH, Stack, eventually


def _entry_dn(tenant: str, contract: str, proto: str, port: int | None = None) -> str:
    suffix = f"-{proto}" + (f"-{port}" if port else "")
    return f"uni/tn-{tenant}/flt-filt-{contract}/e-entry-ip{suffix}"


def test_profile_converges_then_follows_rules_groups_and_delete(stack: Stack) -> None:
    nm, apic = stack.nm, stack.apic
    t = nm.tenant()
    nm.network(t)
    app_vlan = nm.group(t, "app")
    nm.put("policys", f"{t}:dbPolicy", tenantName=t, policyName="dbPolicy")
    nm.rule(t, "dbPolicy", "1", fromEndpointGroup="app", protocol="tcp", port=6379)
    db_vlan = nm.group(t, "db", policies=["dbPolicy"])
    key = nm.profile(t, "prof", "app", "db")

    state = nm.wait_synced(key)
    assert state["operation"] == "create"
    assert state["lastSync"] >= state["lastAttempt"] - 1
    tree = apic.tree(f"uni/tn-{t}")
    epg = f"uni/tn-{t}/ap-prof/epg-db"
    assert tree[epg][0] == "fvAEPg"
    # Static bindings on the EPG's own VLAN, node and path from the aciGw object.
    assert tree[f"{epg}/rsnodeAtt-[{NODE}]"][1]["encap"] == f"vlan-{db_vlan}"
    assert tree[f"{epg}/rspathAtt-[{PATH}]"][1]["encap"] == f"vlan-{db_vlan}"
    assert tree[f"uni/tn-{t}/ap-prof/epg-app/rsnodeAtt-[{NODE}]"][1]["encap"] == f"vlan-{app_vlan}"
    assert db_vlan != app_vlan
    # The BD carries the network's gateway; the contract, its filter entry, provider and consumer.
    assert f"uni/tn-{t}/BD-net/subnet-[10.1.1.1/24]" in tree
    assert tree[f"uni/tn-{t}/brc-dbPolicyFrmapp"][0] == "vzBrCP"
    assert tree[_entry_dn(t, "dbPolicyFrmapp", "tcp", 6379)][1]["dFromPort"] in ("6379", "redis")
    assert tree[f"{epg}/rsprov-dbPolicyFrmapp"][0] == "fvRsProv"
    assert tree[f"uni/tn-{t}/ap-prof/epg-app/rscons-dbPolicyFrmapp"][0] == "fvRsCons"

    # A rule added: its filter entry appears.
    nm.rule(t, "dbPolicy", "2", fromEndpointGroup="app", protocol="tcp", port=8000)
    eventually(lambda: _entry_dn(t, "dbPolicyFrmapp", "tcp", 8000) in apic.tree(f"uni/tn-{t}"), what="entry 8000")
    nm.wait_synced(key)

    # The rule deleted: the entry goes, the other stays.
    nm.delete("rules", f"{t}:dbPolicy:2")
    eventually(lambda: _entry_dn(t, "dbPolicyFrmapp", "tcp", 8000) not in apic.tree(f"uni/tn-{t}"), what="no 8000")
    assert _entry_dn(t, "dbPolicyFrmapp", "tcp", 6379) in apic.tree(f"uni/tn-{t}")

    # An EPG added to the profile is pushed.
    web_vlan = nm.group(t, "web")
    nm.profile(t, "prof", "app", "db", "web")
    web = f"uni/tn-{t}/ap-prof/epg-web/rsnodeAtt-[{NODE}]"
    tree = eventually(lambda: (tr := apic.tree(f"uni/tn-{t}")) and web in tr and tr, what="epg web")
    assert tree[web][1]["encap"] == f"vlan-{web_vlan}"

    # The app profile deleted: its objects leave the APIC, and its push state leaves the store.
    nm.delete("appProfiles", key)

    def gone() -> bool:
        tree = apic.tree(f"uni/tn-{t}")
        return not any(dn.startswith((f"uni/tn-{t}/ap-prof", f"uni/tn-{t}/brc-", f"uni/tn-{t}/flt-")) for dn in tree)

    eventually(gone, what="profile objects removed")
    assert nm.http.get(f"/api/v1/inspect/appProfiles/{key}/").status_code == 404


def test_burst_of_rules_converges_and_a_policy_on_two_groups(stack: Stack) -> None:
    nm, apic = stack.nm, stack.apic
    t = nm.tenant()
    nm.network(t)
    nm.group(t, "client")
    nm.put("policys", f"{t}:p", tenantName=t, policyName="p")
    nm.group(t, "a", policies=["p"])
    nm.group(t, "b", policies=["p"])
    key = nm.profile(t, "prof", "client", "a", "b")
    nm.wait_synced(key)
    ports = range(9000, 9010)
    for port in ports:
        nm.rule(t, "p", f"r{port}", fromEndpointGroup="client", protocol="tcp", port=port)

    def all_there() -> bool:
        tree = apic.tree(f"uni/tn-{t}")
        return all(_entry_dn(t, "pFrmclient", "tcp", port) in tree for port in ports)

    eventually(all_there, what="ten entries")
    tree = apic.tree(f"uni/tn-{t}")
    for epg in ("a", "b"):
        assert f"uni/tn-{t}/ap-prof/epg-{epg}/rsprov-pFrmclient" in tree
    assert f"uni/tn-{t}/ap-prof/epg-client/rscons-pFrmclient" in tree
    state = nm.wait_synced(key)
    assert state["attempts"] == 0


def test_profile_without_groups_is_synced_with_nothing_in_the_apic(stack: Stack) -> None:
    nm = stack.nm
    t = nm.tenant()
    key = nm.profile(t, "empty")
    state = nm.wait_synced(key)
    assert state["operation"] == "delete"
    assert "no endpoint groups" in state["reason"]
    assert not any("/ap-empty" in dn for dn in stack.apic.tree(f"uni/tn-{t}"))


def test_gateway_down_during_a_push_fails_with_reason_then_converges(stack: Stack) -> None:
    nm, apic = stack.nm, stack.apic
    t = nm.tenant()
    nm.network(t)
    nm.group(t, "app")
    nm.put("policys", f"{t}:p", tenantName=t, policyName="p")
    nm.group(t, "db", policies=["p"])
    key = nm.profile(t, "prof", "app", "db")
    nm.wait_synced(key)

    stack.gw.stop()
    try:
        nm.rule(t, "p", "1", fromEndpointGroup="app", protocol="udp", port=53)
        failed = eventually(lambda: (s := nm.sync(key)).get("state") == "failed" and s, what="failed state")
        assert "unreachable" in failed["reason"]
        assert failed["attempts"] >= 1
        assert failed["syncedHash"] != failed["payloadHash"]
    finally:
        stack.gw.run()
    eventually(lambda: _entry_dn(t, "pFrmapp", "udp", 53) in apic.tree(f"uni/tn-{t}"), what="entry after outage")
    state = nm.wait_synced(key)
    assert state["attempts"] == 0


def test_external_contracts_validated_linked_and_refusals_reported(stack: Stack) -> None:
    """External contracts: checked against the APIC at create, linked by DN, and a contract removed from
    the APIC afterwards makes the push fail with the gateway's words until it is back."""
    nm, apic = stack.nm, stack.apic
    t = nm.tenant()
    contract = {"vzBrCP": {"attributes": {"name": f"{t}-dns"}}}
    apic.post("uni/tn-common", contract)
    dn = f"uni/tn-common/brc-{t}-dns"
    missing = nm.post(
        "extContractsGroups",
        f"{t}:bad",
        tenantName=t,
        contractsGroupName="bad",
        contractsType="consumed",
        contracts=["uni/tn-common/brc-nope"],
    )
    assert missing.status_code == 404
    assert missing.json() == {"error": "External contract uni/tn-common/brc-nope not found in APIC"}
    nm.put(
        "extContractsGroups",
        f"{t}:dns",
        tenantName=t,
        contractsGroupName="dns",
        contractsType="consumed",
        contracts=[dn],
    )
    nm.network(t)
    nm.group(t, "web", extContractsGrps=["dns"])
    key = nm.profile(t, "prof", "web")
    nm.wait_synced(key)
    cons = apic.tree(f"uni/tn-{t}")[f"uni/tn-{t}/ap-prof/epg-web/rscons-{t}-dns"]
    assert cons[1]["tnVzBrCPName"] == f"{t}-dns"

    apic.delete(dn)
    nm.group(t, "db")
    nm.profile(t, "prof", "web", "db")
    failed = eventually(lambda: (s := nm.sync(key)).get("state") == "failed" and s, what="refused push")
    assert failed["reason"] == f"invalid-args: External contract {dn} not found in APIC."
    apic.post("uni/tn-common", contract)
    nm.wait_synced(key)
    assert f"uni/tn-{t}/ap-prof/epg-db" in apic.tree(f"uni/tn-{t}")
