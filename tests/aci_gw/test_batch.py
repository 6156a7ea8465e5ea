"""Group commit: pushes of several tenants arriving together share one read and one POST."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from aci_gw_harness import RunningGateway, read_tree

from aci_gw.batch import Batcher
from testbed.aci_gw_payloads import app_profile
from testbed.waiting import eventually


def test_batcher_groups_what_waits_and_keeps_one_key_per_batch() -> None:
    release = threading.Event()
    batches: list[list[str]] = []

    def run(items: list[str]) -> list[str]:
        batches.append(items)
        if len(batches) == 1:
            release.wait(10)  # the first batch runs while the others queue
        return [f"done {i}" for i in items]

    batcher: Batcher[str, str] = Batcher(run, key=lambda item: item.split("/")[0], window=0.001)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher.submit, "t0/a")
        eventually(lambda: batches, what="first batch running")
        later = [pool.submit(batcher.submit, item) for item in ("t1/a", "t2/a", "t1/b", "t3/a")]
        time.sleep(0.1)  # all four are queued behind the running batch
        release.set()
        assert first.result(10) == "done t0/a"
        assert [f.result(10) for f in later] == ["done t1/a", "done t2/a", "done t1/b", "done t3/a"]
    assert batches[0] == ["t0/a"]
    assert batches[1] == ["t1/a", "t2/a", "t3/a"]  # t1/b waits: its diff depends on t1/a's result
    assert batches[2] == ["t1/b"]


def test_batcher_hands_a_failure_to_every_member() -> None:
    def run(items: list[str]) -> list[str]:
        raise RuntimeError("boom")

    batcher: Batcher[str, str] = Batcher(run, key=str, window=0.001)
    with pytest.raises(RuntimeError, match="boom"):
        batcher.submit("x")
    with pytest.raises(RuntimeError, match="boom"):  # and the next batch still runs
        batcher.submit("y")


def _api_requests(apic) -> list[dict]:
    return [e for e in apic.admin.stats()["log"] if not e["path"].startswith(("/api/aaa", "/api/subscriptionRefresh"))
            and "subscription=yes" not in e["query"]]


@pytest.mark.parametrize("refused", [False, True], ids=["one-post", "refused-then-each-alone"])
def test_tenants_queued_together_are_read_and_written_together(apic, gateway: RunningGateway, refused: bool) -> None:
    apic.admin.inject_fault("latency", delay_ms=800, method="POST", path=r"^/api/mo/uni/tn-b0\.json$", count=1)
    if refused:  # the APIC refuses the combined POST: each tenant is then written alone
        apic.admin.inject_fault("error", status=400, method="POST", path=r"^/api/mo/uni\.json$", count=1,
                                text="simulated refusal")
    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(gateway.create, app_profile(tenant="b0"))
        eventually(lambda: any(e["method"] == "POST" for e in apic.admin.stats()["log"]), what="b0 being written")
        others = [pool.submit(gateway.create, app_profile(tenant=f"b{i}")) for i in range(1, 5)]
        results = [first.result(30), *(f.result(30) for f in others)]
    assert [r["result"] for r in results] == ["success"] * 5, results
    requests = _api_requests(apic)
    for i in range(5):
        assert read_tree(apic, f"uni/tn-b{i}/ap-app1/epg-web") is not None
    reads = [e for e in requests if e["method"] == "GET"]
    posts = [e["path"] for e in requests if e["method"] == "POST"]
    assert [e["path"] for e in reads] == ["/api/mo/uni/tn-b0.json", "/api/class/fvTenant.json"]
    if refused:
        assert posts[:2] == ["/api/mo/uni/tn-b0.json", "/api/mo/uni.json"]
        assert sorted(posts[2:]) == [f"/api/mo/uni/tn-b{i}.json" for i in range(1, 5)]
    else:
        assert posts == ["/api/mo/uni/tn-b0.json", "/api/mo/uni.json"]
        assert "one POST with 3 other tenants" in results[1]["info"]
