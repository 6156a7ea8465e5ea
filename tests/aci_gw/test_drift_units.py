"""Drift classification against the intent, the repair queue's debounce and back-off, and the fencing
check, without an APIC."""

from __future__ import annotations

import threading
import time

import pytest

from aci_gw import fencing
from aci_gw.config import FabricSettings
from aci_gw.drift import Drift, Intent, IntentBook
from aci_gw.mo import Mo
from aci_gw.ownership import SHARED_TAG, app_tag
from aci_gw.repair import FIGHT_REPAIRS, RepairQueue
from aci_gw.translate import ApicFacts, translate
from contiv_api.aci_gw_payload import parse_app_profile
from testbed.aci_gw_payloads import LEAF, PHYS_DOMAIN, app_profile

FABRIC = FabricSettings(physical_domain=PHYS_DOMAIN, node_bindings=(LEAF,))


def book() -> IntentBook:
    req = parse_app_profile(app_profile())
    intents = IntentBook()
    intents.record(Intent(req, FABRIC, None, translate(req, FABRIC, ApicFacts(None))))
    return intents


def event(dn: str, status: str, **attrs: str) -> dict[str, str]:
    return {"dn": dn, "status": status, "modTs": "2026-12-06T00:00:00.000+00:00", "childAction": "", **attrs}


def test_deleted_and_modified_owned_objects_are_drift() -> None:
    intents = book()
    gone = intents.classify("fvAEPg", event("uni/tn-t1/ap-app1/epg-web", "deleted"))
    assert gone == Drift("deleted", "uni/tn-t1/ap-app1/epg-web", "fvAEPg", apps=frozenset({"app1"}))
    entry = next(dn for dn in intents._index["t1"].nodes if "/e-" in dn and "80" in dn)
    changed = intents.classify("vzEntry", event(entry, "modified", dToPort="8080"))
    assert changed is not None
    assert changed.kind == "modified"
    assert "dToPort='8080'" in changed.detail


def test_the_echo_of_our_own_writes_is_not_drift() -> None:
    intents = book()
    entry = next(dn for dn in intents._index["t1"].nodes if "/e-" in dn and "80" in dn)
    assert intents.classify("vzEntry", event(entry, "modified", dToPort="http", dFromPort="http")) is None
    epg = intents._index["t1"].nodes["uni/tn-t1/ap-app1/epg-web"][0]
    assert intents.classify("fvAEPg", event("uni/tn-t1/ap-app1/epg-web", "created", **epg.attrs)) is None


def test_children_added_below_owned_objects() -> None:
    intents = book()
    ours = intents.classify("fvRsCons", event("uni/tn-t1/ap-app1/epg-web/rscons-x", "created",
                                              annotation=app_tag("app1"), tnVzBrCPName="x"))
    assert ours is not None
    assert ours.kind == "added"
    users = intents.classify("fvRsCons", event("uni/tn-t1/ap-app1/epg-web/rscons-y", "created", tnVzBrCPName="y"))
    assert users is not None
    assert users.kind == "foreign"
    # what the APIC adds by itself below a new object is neither
    assert intents.classify("fvRsCustQosPol", event("uni/tn-t1/ap-app1/epg-web/rscustQosPol", "created")) is None
    # nor is anything in a tenant without an intent
    assert intents.classify("fvAEPg", event("uni/tn-other/ap-a/epg-e", "deleted")) is None


def test_forgetting_the_last_app_forgets_the_tenant() -> None:
    intents = book()
    intents.forget("t1", "app1")
    assert intents.tenants() == []
    assert intents.classify("fvAEPg", event("uni/tn-t1/ap-app1/epg-web", "deleted")) is None


def test_repair_queue_debounces_a_burst_into_one_repair() -> None:
    runs: list[tuple[str, int, str]] = []
    done = threading.Event()

    def run(tenant: str, drifts: list[Drift], reason: str, first_seen: float) -> bool:
        runs.append((tenant, len(drifts), reason))
        done.set()
        return True

    queue = RepairQueue(run, debounce=0.05, interval=0.0)
    queue.start()
    try:
        for i in range(10):
            queue.add("t1", "drift", Drift("deleted", f"uni/tn-t1/x-{i}", "fvAEPg"))
        assert done.wait(5)
        time.sleep(0.1)
    finally:
        queue.stop()
    assert runs == [("t1", 10, "drift")]


def test_repair_queue_backs_off_when_something_keeps_changing_it_back() -> None:
    times: list[float] = []

    def run(tenant: str, drifts: list[Drift], reason: str, first_seen: float) -> bool:
        times.append(time.monotonic())
        return True

    queue = RepairQueue(run, debounce=0.0, interval=0.01, max_interval=0.5)
    queue.start()
    try:
        deadline = time.monotonic() + 10
        while len(times) < FIGHT_REPAIRS + 3 and time.monotonic() < deadline:
            queue.add("t1", "drift")
            time.sleep(0.005)
    finally:
        queue.stop()
    assert queue._spacing["t1"] > 0.01  # the interval doubled once repairs kept writing
    assert times[-1] - times[-2] >= 0.02  # and the repairs were spaced out accordingly


def test_fencing_check() -> None:
    tenant = Mo("fvTenant", {"name": "t1", "annotation": SHARED_TAG},
                [Mo("tagAnnotation", {"key": fencing.FENCING_KEY, "value": "6"})])
    assert fencing.check("uni/tn-t1", tenant, 7) == 7
    assert fencing.check("uni/tn-t1", tenant, 6) == 6
    assert fencing.check("uni/tn-t1", tenant, None) == 6  # tokenless: keeps the recorded one
    assert fencing.check("uni/tn-t1", None, 3) == 3
    with pytest.raises(fencing.StaleToken, match="fencing token 5 is older than 6"):
        fencing.check("uni/tn-t1", tenant, 5)
    for bad in ("x", "-1", "1.5"):
        with pytest.raises(ValueError, match=r"invalid literal|negative"):
            fencing.parse_token(bad)
    assert fencing.parse_token(None) is None
    assert fencing.parse_token(" 12 ") == 12
