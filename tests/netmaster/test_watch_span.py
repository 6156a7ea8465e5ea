"""Per-host span (netmaster.api.span): an agent's snapshot and watch carry every object but only the
endpoints its host needs, and the endpoints a host newly needs reach its watch as soon as it does.

A request names its agent's host in ``X-Contiv-Agent`` (contiv_api.netmaster_client.AGENT_HEADER);
requests without it get everything, as before. These tests run netmaster with ``--agent-span network``
(the default, tenant grain, is what tests/agent_sync's agents see).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contiv_api.netmaster_client import AGENT_HEADER
from testbed.netmaster import NetmasterProcess
from testbed.waiting import eventually


@pytest.fixture
def nm(tmp_path: Path) -> Iterator[NetmasterProcess]:
    with NetmasterProcess.start("memory://", args=["--agent-span", "network"], log_path=tmp_path / "nm.log") as proc:
        yield proc


class Watcher(threading.Thread):
    """One agent's watch stream, every line kept."""

    def __init__(self, url: str, host: str, since: int) -> None:
        super().__init__(daemon=True)
        self.url, self.host, self.since = url, host, since
        self.lines: list[dict] = []
        self.status = 0
        self.connected = threading.Event()
        self.done = threading.Event()

    def begin(self) -> Watcher:
        """Start and wait for the answer's status: a change of the span after ``since`` and before
        the watch begins would rightly answer 410."""
        self.start()
        assert self.connected.wait(20), "no answer to the watch"
        assert self.status == 200, self.lines
        return self

    def run(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.url, timeout=None, headers={AGENT_HEADER: self.host}) as http,
                http.stream("GET", f"/api/v1/watch?since={self.since}") as response,
            ):
                self.status = response.status_code
                self.connected.set()
                for line in response.iter_lines():
                    if line:
                        self.lines.append(json.loads(line))
                    if self.done.is_set() or (self.lines and self.lines[-1].get("type") == "error"):
                        return
        finally:
            self.done.set()

    def endpoints(self) -> list[str]:
        """Keys of the endpoint puts received, in order."""
        return [e["key"] for e in list(self.lines) if e.get("kind") == "endpoint" and e["type"] == "put"]

    def current(self, revision: int) -> bool:
        """Whether the stream has shown everything up to ``revision`` (an event or a bookmark)."""
        return any(e.get("revision", 0) >= revision and e["type"] in ("bookmark", "put", "delete")
                   for e in list(self.lines))  # fmt: skip


def _post(http: httpx.Client, path: str, body: dict) -> int:
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Revision"])


def _endpoint(http: httpx.Client, ep: str, host: str, tenant: str, network: str) -> int:
    body = {"endpointID": ep, "host": host, "tenantName": tenant, "networkName": network}
    return _post(http, "/api/v1/endpoints/", body)


def _network(http: httpx.Client, tenant: str, name: str, subnet: str) -> None:
    _post(http, f"/api/v1/networks/{tenant}:{name}/", {"encap": "vxlan", "subnet": subnet})


def _snapshot(http: httpx.Client, host: str | None) -> tuple[int, dict[str, set[str]]]:
    response = http.get("/api/v1/snapshot", headers={AGENT_HEADER: host} if host else {})
    assert response.status_code == 200, response.text
    body = response.json()
    kinds: dict[str, set[str]] = {}
    for obj in body["objects"]:
        kinds.setdefault(obj["kind"], set()).add(obj["key"])
    assert int(response.headers["X-Revision"]) == body["revision"]
    return body["revision"], kinds


def test_agent_gets_its_networks_endpoints_and_a_new_network_at_once(nm: NetmasterProcess) -> None:
    with httpx.Client(base_url=nm.url, timeout=30) as http:
        _post(http, "/api/v1/tenants/s/", {})
        _network(http, "s", "n1", "10.81.1.0/24")
        _network(http, "s", "n2", "10.81.2.0/24")
        _endpoint(http, "a1", "hA", "s", "n1")
        _endpoint(http, "b1", "hB", "s", "n1")
        _endpoint(http, "b2", "hB", "s", "n2")

        start, kinds = _snapshot(http, "hA")
        assert kinds["endpoint"] == {"a1", "b1"}, "hA has no endpoint on n2"
        assert {"s:n1", "s:n2"} <= kinds["network"], "every config object is in every snapshot"
        assert _snapshot(http, "hC")[1].get("endpoint", set()) == set(), "a host without endpoints gets none"
        assert _snapshot(http, None)[1]["endpoint"] == {"a1", "b1", "b2"}, "no agent header: everything"

        watch = Watcher(nm.url, "hA", start).begin()
        outside = _endpoint(http, "b3", "hB", "s", "n2")
        _endpoint(http, "b4", "hB", "s", "n1")
        eventually(lambda: "b4" in watch.endpoints() and watch.current(outside), what="b4 and progress past b3")
        assert "b3" not in watch.endpoints()

        # hA's first endpoint on n2: the endpoints of n2 come at once, oldest first, then hA's own.
        joined = _endpoint(http, "a2", "hA", "s", "n2")
        eventually(lambda: "a2" in watch.endpoints(), what="hA's own endpoint on n2")
        received = watch.endpoints()
        assert received[received.index("b4") + 1 :] == ["b2", "b3", "a2"]
        added = [e for e in watch.lines if e.get("key") in ("b2", "b3")]
        assert [e["revision"] for e in added] == sorted(e["revision"] for e in added) < [joined] * 2
        assert all(e["object"]["networkName"] == "n2" for e in added)

        # The span keeps n2 after hA's last endpoint there goes (netmaster.api.span: it never narrows).
        assert http.delete("/api/v1/endpoints/a2/").status_code == 200
        _endpoint(http, "b5", "hB", "s", "n2")
        eventually(lambda: "b5" in watch.endpoints(), what="n2's events after a2 went")
        assert _snapshot(http, "hA")[1]["endpoint"] == {"a1", "b1", "b2", "b3", "b4", "b5"}
        watch.done.set()

        # A watch resumed from before the span changed cannot know what the agent holds: re-list.
        stale = http.get(f"/api/v1/watch?since={start}", headers={AGENT_HEADER: "hA"})
        assert stale.status_code == 410, stale.text
        assert "span" in stale.json()["error"]
        # From after it, the replay is filtered as the live stream is.
        resumed = Watcher(nm.url, "hA", joined).begin()
        last = _endpoint(http, "c1", "hC", "s", "n1")
        eventually(lambda: resumed.current(last), what="hA's resumed stream")
        assert resumed.status == 200
        assert resumed.endpoints() == ["b5", "c1"]
        resumed.done.set()


def test_a_rule_naming_a_group_widens_the_span_to_the_tenant(nm: NetmasterProcess) -> None:
    """Policy needs the EPG of peers on any network of the tenant: a rule naming a group brings them."""
    with httpx.Client(base_url=nm.url, timeout=30) as http:
        _post(http, "/api/v1/tenants/w/", {})
        _network(http, "w", "n1", "10.82.1.0/24")
        _network(http, "w", "n2", "10.82.2.0/24")
        _post(http, "/api/v1/policys/w:p/", {})
        _post(http, "/api/v1/endpointGroups/w:g/", {"networkName": "n2", "policies": ["p"]})
        _endpoint(http, "a1", "hA", "w", "n1")
        _post(http, "/api/v1/endpoints/", {"endpointID": "b1", "host": "hB", "tenantName": "w",
                                           "networkName": "n2", "groupName": "g"})  # fmt: skip
        start, kinds = _snapshot(http, "hA")
        assert kinds["endpoint"] == {"a1"}
        watch = Watcher(nm.url, "hA", start).begin()
        rule = {"direction": "in", "action": "deny", "fromEndpointGroup": "g", "priority": 1}
        wide = _post(http, "/api/v1/rules/w:p:1/", rule)
        eventually(lambda: "b1" in watch.endpoints(), what="the peer group's endpoint")
        assert _snapshot(http, "hA")[1]["endpoint"] == {"a1", "b1"}
        rule_line = next(i for i, e in enumerate(watch.lines) if e.get("kind") == "rule")
        assert watch.lines[rule_line]["revision"] == wide

        # The tenant narrows again: the stream ends with a 410, the next snapshot is narrow.
        assert http.delete("/api/v1/rules/w:p:1/").status_code == 200
        eventually(lambda: watch.done.is_set(), what="hA's stream to end")
        assert (watch.lines[-1]["type"], watch.lines[-1]["status"]) == ("error", 410)
        assert _snapshot(http, "hA")[1]["endpoint"] == {"a1"}
