"""The /mock/ admin API: faults, token expiry, stats, reset, dump, seed and endpoints."""

from __future__ import annotations

import time

import httpx
import pytest
from apicmock_helpers import attrs_of, error_of, mo

from apic_mock.errors import TOKEN_TIMEOUT
from testbed.apic import ApicMock


def test_error_fault_for_next_n_requests(apic_mock: ApicMock, api: httpx.Client) -> None:
    rule = apic_mock.admin.inject_fault("error", status=503, count=2, path="^/api/mo/")
    assert rule["count"] == 2
    for _ in range(2):
        r = api.get("/api/mo/uni.json")
        assert r.status_code == 503
        assert error_of(r)[0] == "503"
    assert api.get("/api/class/fvTenant.json").status_code == 200  # path does not match
    assert api.get("/api/mo/uni.json").status_code == 200  # rule used up
    assert apic_mock.admin.faults() == []


def test_error_fault_for_a_share_of_requests(apic_mock: ApicMock, api: httpx.Client) -> None:
    apic_mock.admin.inject_fault("error", status=500, share=0.5, seed=7, method="GET")
    codes = [api.get("/api/mo/uni.json").status_code for _ in range(60)]
    failures = codes.count(500)
    assert 10 < failures < 50
    assert set(codes) == {200, 500}
    assert api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "p"})).status_code == 200  # POST spared
    apic_mock.admin.clear_faults()
    assert all(api.get("/api/mo/uni.json").status_code == 200 for _ in range(5))


def test_latency_fault(apic_mock: ApicMock, api: httpx.Client) -> None:
    apic_mock.admin.inject_fault("latency", delay_ms=1500, count=1)
    started = time.monotonic()
    assert api.get("/api/mo/uni.json").status_code == 200
    assert time.monotonic() - started >= 1.5
    started = time.monotonic()
    api.get("/api/mo/uni.json")
    assert time.monotonic() - started < 1.5, "count=1: the next request is not delayed"


def test_connection_reset_fault(apic_mock: ApicMock, api: httpx.Client) -> None:
    apic_mock.admin.inject_fault("reset", count=1)
    with pytest.raises(httpx.TransportError):
        api.get("/api/mo/uni.json")
    assert api.get("/api/mo/uni.json").status_code == 200
    stats = apic_mock.admin.stats()
    assert stats["by_status"].get("reset") == 1


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"kind": "error", "status": 99},
        {"kind": "error", "share": 2},
        {"kind": "latency"},
        {"kind": "error", "path": "("},
        {"kind": "error", "bogus": 1},
    ],
)
def test_bad_fault_specs_are_refused(apic_mock: ApicMock, spec: dict) -> None:
    r = apic_mock.admin.http.post("/mock/faults", json=spec)
    assert r.status_code == 400


def test_forced_token_expiry(apic_mock: ApicMock, api: httpx.Client) -> None:
    assert apic_mock.admin.expire_tokens() >= 1
    r = api.get("/api/mo/uni.json")
    assert r.status_code == 403
    assert error_of(r) == ("403", TOKEN_TIMEOUT)
    assert api.get("/api/aaaRefresh.json").status_code == 403  # cannot refresh a dead token either


def test_stats_count_requests_and_writes(apic_mock: ApicMock, api: httpx.Client) -> None:
    apic_mock.admin.reset_stats()
    api.get("/api/mo/uni.json")
    api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "s"}))
    api.post("/api/node/mo/uni/tn-s.json", json=mo("fvAp", {"name": "a"}))
    api.delete("/api/mo/uni/tn-s.json")
    api.post("/api/mo/uni.json", json=mo("fvNope", {}))  # failed writes are writes the APIC received
    apic_mock.admin.inject_fault("error", count=1)
    api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "t"}))  # so are faulted ones
    stats = apic_mock.admin.stats()
    assert stats["total"] == 6
    assert stats["writes"] == 5
    assert stats["writes_ok"] == 3  # the unknown class and the injected 503 were not applied
    assert stats["by_method"] == {"GET": 1, "POST": 4, "DELETE": 1}
    assert stats["by_path"]["POST /api/mo/uni.json"] == 3
    assert stats["by_path"]["DELETE /api/mo/uni/tn-s.json"] == 1
    assert stats["by_status"] == {"200": 4, "400": 1, "503": 1}
    assert [e["method"] for e in stats["log"]] == ["GET", "POST", "POST", "DELETE", "POST", "POST"]
    assert "log" not in apic_mock.admin.stats(log=False)
    apic_mock.admin.reset_stats()
    assert apic_mock.admin.stats()["total"] == 0
    assert apic_mock.admin.http.delete("/mock/stats").status_code == 200
    api.post("/api/aaaRefresh.json")
    assert apic_mock.admin.stats()["writes"] == 0  # a login method is not a config write


def test_reset_and_dump(apic_mock: ApicMock, api: httpx.Client) -> None:
    api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "gone"}))
    dump = apic_mock.admin.dump()
    assert {next(iter(i)) for i in dump["imdata"]} == {"polUni", "fabricTopology"}
    assert "tn-gone" in str(dump)
    assert "password" not in str(dump)  # no secrets in dumps
    apic_mock.admin.reset()
    assert api.get("/api/mo/uni/tn-gone.json").json()["totalCount"] == "0"
    assert api.get("/api/mo/uni/tn-common.json").json()["totalCount"] == "1"
    assert api.get("/api/mo/uni.json").status_code == 200  # sessions survive a reset


def test_seed_and_remove(apic_mock: ApicMock, api: httpx.Client) -> None:
    items = [
        mo(
            "fabricNode",
            {"dn": "topology/pod-1/node-103", "id": "103", "role": "leaf", "name": "leaf103"},
            mo("topSystem", {"id": "103", "role": "leaf", "name": "leaf103"}),
        )
    ]
    assert apic_mock.admin.seed({"totalCount": "1", "imdata": items}) >= 2
    node = attrs_of(api.get("/api/mo/topology/pod-1/node-103.json").json()["imdata"][0])
    assert (node["role"], node["name"]) == ("leaf", "leaf103")
    assert apic_mock.admin.remove("topology/pod-1/node-103") == 1
    assert api.get("/api/mo/topology/pod-1/node-103.json").json()["totalCount"] == "0"
    r = apic_mock.admin.http.post("/mock/seed", json=[mo("fvNope", {"dn": "uni/x"})])
    assert r.status_code == 400


def test_add_endpoint_needs_an_epg(apic_mock: ApicMock) -> None:
    r = apic_mock.admin.http.post(
        "/mock/endpoints", json={"epg": "uni/tn-x/ap-a/epg-nope", "mac": "00:00:00:00:00:01"}
    )
    assert r.status_code == 400
    assert apic_mock.admin.health()["status"] == "ok"


def test_unknown_paths(apic_mock: ApicMock, api: httpx.Client) -> None:
    assert api.get("/nothing").status_code == 404
    r = api.get("/api/whatever.json")
    assert r.status_code == 400
    assert error_of(r)[1] == "Request failed, unresolved method for whatever"
    assert api.put("/api/mo/uni.json", json={}).status_code == 405
