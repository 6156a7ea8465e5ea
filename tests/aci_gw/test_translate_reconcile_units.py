"""Unit level: translation rules and the diff, with an in-memory APIC stand-in that applies POST trees
the way APIC merges them (upsert, status=deleted removes a subtree). The convergence property is checked
with hypothesis over random edits of an app profile."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aci_gw.config import FabricSettings
from aci_gw.mo import Mo, split_dn
from aci_gw.ownership import SHARED_TAG, is_owned
from aci_gw.reconcile import plan_delete, plan_push, same_value
from aci_gw.translate import ApicFacts, TranslationError, apic_name, entry_name, parse_contract_dn, translate
from contiv_api.aci_gw_payload import FilterSpec, parse_app_profile
from testbed.aci_gw_payloads import app_profile, contract, epg, link

FABRIC = FabricSettings(physical_domain="pd", node_bindings=("topology/pod-1/node-101",))


def apply_post(current: Mo | None, post: Mo | None) -> Mo | None:
    """Merge a POST tree into a stored tree as APIC does."""
    if post is None:
        return current
    if post.attrs.get("status") == "deleted":
        return None
    if current is None:
        current = Mo(post.cls, {})
    current.attrs.update({k: v for k, v in post.attrs.items() if k != "status"})
    for child in post.children:
        merged = apply_post(current.remove(child.rn), child)
        if merged is not None:
            current.add(merged)
    return current


def push(state: Mo | None, body: dict, fabric: FabricSettings = FABRIC) -> tuple[Mo | None, int]:
    req = parse_app_profile(body)
    plan = plan_push(translate(req, fabric, ApicFacts(state)), state, req.app)
    return apply_post(copy.deepcopy(state), plan.tree), plan.changes


def owned(state: Mo | None) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}

    def walk(mo: Mo, dn: str) -> None:
        if is_owned(mo):
            out[dn] = dict(mo.attrs)
        for c in mo.children:
            walk(c, f"{dn}/{c.rn}")

    if state is not None:
        walk(state, state.rn)
    return out


def test_split_dn_respects_brackets() -> None:
    dn = "uni/tn-a/ap-b/epg-c/rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/1]]"
    assert split_dn(dn)[-1] == "rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/1]]"
    assert split_dn(dn)[:4] == ["uni", "tn-a", "ap-b", "epg-c"]
    assert Mo("fvSubnet", {"ip": "10.0.0.1/24"}).rn == "subnet-[10.0.0.1/24]"


def test_names() -> None:
    assert apic_name("short") == "short"
    long = "x" * 80
    assert len(apic_name(long)) == 64
    assert apic_name(long) == apic_name(long)
    assert apic_name(long) != apic_name("x" * 81)
    assert entry_name(FilterSpec("tcp", 80)) == "entry-ip-tcp-80"
    assert entry_name(FilterSpec("", None)) == "entry-ip"
    assert entry_name(FilterSpec("icmp", None)) == "entry-ip-icmp"
    assert parse_contract_dn("uni/tn-common/brc-default") == ("common", "brc", "default")
    with pytest.raises(ValueError, match="flt-default"):
        parse_contract_dn("uni/tn-common/flt-default")


def test_apic_canonical_values_compare_equal() -> None:
    assert same_value("dFromPort", "80", "http")
    assert same_value("dToPort", "22", "ssh")
    assert same_value("prot", "tcp", "6")
    assert not same_value("dFromPort", "81", "http")
    assert not same_value("encap", "vlan-1", None)


def test_first_push_tags_everything_and_second_push_is_empty() -> None:
    state, changes = push(None, app_profile())
    assert changes == len(list(state.walk()))
    assert all(is_owned(mo) for mo in state.walk())
    assert state.attrs["annotation"] == SHARED_TAG
    _, again = push(state, app_profile())
    assert again == 0


def test_unenforced_mode_has_no_contracts() -> None:
    fabric = FabricSettings(physical_domain="pd", node_bindings=("topology/pod-1/node-101",),
                            enforce_policies=False)
    state, _ = push(None, app_profile(), fabric)
    assert not state.children_of("vzBrCP")
    for mo in state.walk():
        if mo.cls == "fvRsCons":
            assert mo.attrs["tnVzBrCPName"] == "default"


def test_multi_vrf_error_names_them() -> None:
    tenant = Mo("fvTenant", {"name": "t1"}, [Mo("fvCtx", {"name": "b"}), Mo("fvCtx", {"name": "a"})])
    with pytest.raises(TranslationError, match=r"several VRFs \(a, b\)") as err:
        translate(parse_app_profile(app_profile()), FABRIC, ApicFacts(tenant))
    assert err.value.result == "error-gw-config"


def test_protected_descendant_keeps_its_owned_parent() -> None:
    state, _ = push(None, app_profile())
    epg_web = state.child("ap-app1").child("epg-web")
    epg_web.children.append(Mo("fvRsCons", {"tnVzBrCPName": "user"}))  # a user's relation
    plan = plan_delete("t1", state, "app1")
    after = apply_post(copy.deepcopy(state), plan.tree)
    web = after.child("ap-app1").child("epg-web")
    assert [c.rn for c in web.children] == ["rscons-user"]


EPG_NAMES = ["web", "app", "db", "cache", "auth"]
CONTRACTS = ["c0", "c1", "c2"]


@st.composite
def profiles(draw: st.DrawFn) -> dict:
    names = draw(st.lists(st.sampled_from(EPG_NAMES), min_size=1, max_size=5, unique=True))
    contracts = draw(st.lists(st.sampled_from(CONTRACTS), max_size=3, unique=True))
    epgs = []
    for i, name in enumerate(names):
        net = draw(st.sampled_from(["n1", "n2", "n3"]))
        links = [link(draw(st.sampled_from(["PROVIDE", "CONSUME"])), c)
                 for c in [*contracts, "undefined"] if draw(st.booleans())]
        epgs.append(epg(name, 100 + i * 7 + draw(st.integers(0, 3)), network=net,
                        gw={"n1": "10.1.0.1/16", "n2": "10.2.0.1/16", "n3": ""}[net], links=links))
    defs = []
    for c in contracts:
        protocols = draw(st.lists(st.sampled_from(["tcp", "udp", "icmp"]), min_size=1, max_size=3,
                                  unique=True))
        rules = [(p, draw(st.sampled_from([None, 80, 443, 6379])) if p != "icmp" else None)
                 for p in protocols]
        defs.append(contract(c, *rules))
    return app_profile(epgs=epgs, contracts=defs)


@settings(max_examples=60, deadline=None)
@given(first=profiles(), second=profiles())
def test_any_edit_converges_to_a_fresh_push(first: dict, second: dict) -> None:
    state, _ = push(None, first)
    edited, _ = push(state, second)
    fresh, _ = push(None, second)
    assert owned(edited) == owned(fresh)
    _, again = push(edited, second)
    assert again == 0
    gone = apply_post(copy.deepcopy(edited), plan_delete("t1", edited, "app1").tree)
    assert gone is None
