"""Agent records: heartbeat, list, expiry on a lease, and their place in the snapshot and watch."""

from __future__ import annotations

import json
import time

import httpx

from testbed.rest import Api, expect_error


def _put(api: Api, host: str, **body: object) -> httpx.Response:
    return api.http.put(f"/api/v1/agents/{host}/", json=body)


def test_heartbeat_registers_and_lists(api: Api) -> None:
    record = api.ok(_put(api, "agh1", vtepIP="192.168.9.1", ctrlIP="10.0.0.1", version="1.0"))
    assert record == {"hostLabel": "agh1", "vtepIP": "192.168.9.1", "ctrlIP": "10.0.0.1", "version": "1.0",
                      "inspectURL": "", "ttl": 15}
    assert record in api.ok(api.http.get("/api/v1/agents/"))
    assert api.ok(api.http.get("/api/v1/agents/agh1/"))["vtepIP"] == "192.168.9.1"
    snap = api.ok(api.http.get("/api/v1/snapshot"))
    assert {"kind": "agent", "key": "agh1", "object": record, "status": None} in snap["objects"]
    assert api.ok(api.http.delete("/api/v1/agents/agh1/")) == {"hostLabel": "agh1", "deleted": True}
    expect_error(api.http.get("/api/v1/agents/agh1/"), 404, "not found")


def test_unchanged_heartbeat_writes_nothing(api: Api) -> None:
    api.ok(_put(api, "agh2", vtepIP="192.168.9.2"))
    revision = int(api.http.get("/api/v1/endpoints/").headers["X-Revision"])
    for _ in range(3):
        api.ok(_put(api, "agh2", vtepIP="192.168.9.2"))
    assert int(api.http.get("/api/v1/endpoints/").headers["X-Revision"]) == revision
    api.ok(_put(api, "agh2", vtepIP="192.168.9.22"))  # a changed record is written
    assert int(api.http.get("/api/v1/endpoints/").headers["X-Revision"]) == revision + 1


def test_record_expires_without_heartbeat_and_watchers_see_it(api: Api) -> None:
    since = int(api.http.get("/api/v1/endpoints/").headers["X-Revision"])
    api.ok(_put(api, "agh3", vtepIP="192.168.9.3", ttl=3))
    time.sleep(1.5)
    api.ok(_put(api, "agh3", vtepIP="192.168.9.3", ttl=3))  # renews: still there after the first TTL
    time.sleep(2)
    assert api.ok(api.http.get("/api/v1/agents/agh3/"))["vtepIP"] == "192.168.9.3"
    events = []
    with api.http.stream("GET", "/api/v1/watch", params={"since": since}, timeout=15) as resp:
        for line in resp.iter_lines():
            msg = json.loads(line)
            if msg.get("kind") == "agent" and msg["key"] == "agh3":
                events.append(msg["type"])
                if msg["type"] == "delete":
                    break
    assert events == ["put", "delete"]
    expect_error(api.http.get("/api/v1/agents/agh3/"), 404, "not found")


def test_invalid_heartbeats(api: Api) -> None:
    expect_error(_put(api, "agh4", vtepIP="nope"), 400, "invalid IPv4 address")
    expect_error(_put(api, "agh4", ttl=1), 400, "ttl must be")
    for url in ("ftp://10.0.0.1:80", "http://10.0.0.1", "http://:80", "http://10.0.0.1:80/x", "http://h:99999"):
        expect_error(_put(api, "agh4", inspectURL=url), 400, "inspectURL")
    assert api.ok(_put(api, "agh4", inspectURL="http://10.0.0.1:9100"))["inspectURL"] == "http://10.0.0.1:9100"
    expect_error(_put(api, "agh4", color="red"), 400, "unknown field")
    expect_error(_put(api, "-bad", vtepIP="192.168.9.4"), 400, "hostLabel")
    expect_error(api.http.put("/api/v1/agents/agh4/", content=b"[1]"), 400, "JSON object")


def test_conflicts_reported_by_an_agent_are_stored_and_validated(api: Api) -> None:
    conflict = {"endpointID": "c1", "ipAddress": "10.1.0.1", "network": "t:net", "reason": "address in use"}
    record = api.ok(_put(api, "agh5", vtepIP="192.168.9.5", conflicts=[conflict]))
    assert record["conflicts"] == [conflict]
    assert api.ok(api.http.get("/api/v1/agents/agh5/"))["conflicts"] == [conflict]
    assert "conflicts" not in api.ok(_put(api, "agh5", vtepIP="192.168.9.5", conflicts=[]))  # resolved
    for bad in ({"endpointID": 1}, {"color": "red"}, "c1"):
        expect_error(_put(api, "agh5", conflicts=[bad]), 400, "conflicts")
    expect_error(_put(api, "agh5", conflicts={"c1": conflict}), 400, "conflicts")
    expect_error(_put(api, "agh5", conflicts=[conflict] * 1001), 400, "conflicts")


def test_bgp_neighbour_states_in_the_agent_record(api: Api) -> None:
    states = {"50.1.1.254": "established", "50.1.1.253": "active"}
    record = api.ok(_put(api, "agh6", vtepIP="192.168.9.6", bgp=states))
    assert record["bgp"] == dict(sorted(states.items()))
    assert "bgp" not in api.ok(_put(api, "agh6", vtepIP="192.168.9.6"))  # no longer peering
    for bad in ({"50.1.1.254": "up"}, {"x": "established"}, ["50.1.1.254"],
                {f"50.1.1.{i}": "idle" for i in range(17)}):
        expect_error(_put(api, "agh6", bgp=bad), 400, "bgp")
