"""Reads from memory with several netmasters on one etcd: read-your-writes, freshness, links kept in step.

Each netmaster serves GET and list from its watch-fed copy (netmaster.store.cache). A client reads
its own write on the netmaster that took it at once; a netmaster started with ``--read-staleness 0``
confirms its copy against etcd before every read, so it sees any netmaster's earlier write at once;
with the default window (50 ms) the write shows within it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testbed.etcd import shared_etcd
from testbed.netmaster import NetmasterProcess
from testbed.waiting import eventually


@contextlib.contextmanager
def two_netmasters(tmp_path: Path, *b_args: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Netmaster A (default window) and B (started with ``b_args``) on the same, empty etcd."""
    shared_etcd().wipe()
    url = shared_etcd().url
    with (
        NetmasterProcess.start(url, log_path=tmp_path / "a.log") as a,
        NetmasterProcess.start(url, args=list(b_args), log_path=tmp_path / "b.log") as b,
        httpx.Client(base_url=a.url, timeout=10) as http_a,
        httpx.Client(base_url=b.url, timeout=10) as http_b,
    ):
        yield http_a, http_b


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """A with the default window, B confirming every read (``--read-staleness 0``)."""
    with two_netmasters(tmp_path, "--read-staleness", "0") as clients:
        yield clients


def test_read_your_writes_and_linearizable_reads(pair: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = pair
    for i in range(20):
        created = a.post(f"/api/v1/tenants/r{i}/", json={})
        assert created.status_code == 200, created.text
        assert a.get(f"/api/v1/tenants/r{i}/").status_code == 200, "the writer's netmaster reads its write"
        assert b.get(f"/api/v1/tenants/r{i}/").status_code == 200, "a confirming netmaster sees it at once"
        listed = b.get("/api/v1/tenants/")
        assert f"r{i}" in [t["tenantName"] for t in listed.json()]
        assert int(listed.headers["X-Revision"]) >= int(created.headers["X-Revision"])
    for i in range(20):
        assert b.delete(f"/api/v1/tenants/r{i}/").status_code == 200
        assert b.get(f"/api/v1/tenants/r{i}/").status_code == 404
        eventually(lambda i=i: a.get(f"/api/v1/tenants/r{i}/").status_code == 404, what=f"r{i} gone on A")


def test_a_named_revision_is_read_on_any_netmaster(tmp_path: Path) -> None:
    """``X-Min-Revision``: a write's revision, named on a read through another netmaster, is seen there
    even with a long staleness window; a malformed one is refused."""
    with two_netmasters(tmp_path, "--read-staleness", "3600") as (http_a, http_b):
        assert http_b.get("/api/v1/tenants/").status_code == 200  # B confirms once, then not for an hour
        for i in range(10):
            written = http_a.post(f"/api/v1/tenants/m{i}/", json={})
            assert written.status_code == 200
            headers = {"X-Min-Revision": written.headers["X-Revision"]}
            assert http_b.get(f"/api/v1/tenants/m{i}/", headers=headers).status_code == 200
        refused = http_b.get("/api/v1/tenants/", headers={"X-Min-Revision": "soon"})
        assert refused.status_code == 400
        assert refused.json()["error"] == "X-Min-Revision must be a revision number"


def test_links_follow_writes_on_the_other_netmaster(pair: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = pair
    assert a.post("/api/v1/tenants/lt/", json={}).status_code == 200
    assert a.post("/api/v1/networks/lt:n/", json={"encap": "vxlan", "subnet": "10.5.0.0/24"}).status_code == 200
    for group in ("g1", "g2"):
        assert a.post(f"/api/v1/endpointGroups/lt:{group}/", json={"networkName": "n"}).status_code == 200
    network = b.get("/api/v1/networks/lt:n/").json()
    assert sorted(network["link-sets"]["EndpointGroups"]) == ["lt:g1", "lt:g2"]
    assert sorted(b.get("/api/v1/tenants/lt/").json()["link-sets"]) == ["EndpointGroups", "Networks"]

    assert a.delete("/api/v1/endpointGroups/lt:g1/").status_code == 200
    assert sorted(b.get("/api/v1/networks/lt:n/").json()["link-sets"]["EndpointGroups"]) == ["lt:g2"]
    assert a.delete("/api/v1/endpointGroups/lt:g2/").status_code == 200
    assert "EndpointGroups" not in b.get("/api/v1/networks/lt:n/").json().get("link-sets", {})
    tenant = b.get("/api/v1/tenants/lt/").json()
    assert list(tenant["link-sets"]) == ["Networks"]
