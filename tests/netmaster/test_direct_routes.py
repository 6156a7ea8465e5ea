"""The object routes answered past the router (netmaster.api.direct_routes) answer exactly what the
router's routes answer: the same requests, good and bad, sent to two apps on fresh stores, one of
them with the direct layer switched off, get the same status, headers and body."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from starlette.testclient import TestClient

from netmaster.api.app import create_app
from netmaster.api.direct_routes import DirectRoutes, DirectRoutesMiddleware
from netmaster.store import open_store

TENANT = {"tenantName": "blue"}
NETWORK = {"tenantName": "blue", "networkName": "net", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1",
           "encap": "vxlan"}
REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/tenants/", None),
    ("GET", "/api/v1/tenants", None),
    ("GET", "/api/v1/tenants/blue/", None),  # absent: 404
    ("POST", "/api/v1/tenants/blue/", TENANT),
    ("POST", "/api/v1/tenants/blue/", TENANT),  # the same again: idempotent
    ("PUT", "/api/v1/tenants/blue", {"tenantName": "red"}),  # key and body disagree
    ("POST", "/api/v1/tenants/green/", b"{not json"),
    ("POST", "/api/v1/tenants/green/", b""),
    ("POST", "/api/v1/tenants/green/", {"tenantName": "green", "bogus": 1}),
    ("POST", "/api/v1/networks/blue:net/", NETWORK),
    ("GET", "/api/v1/networks/blue:net/", None),
    ("GET", "/api/v1/networks/blue:net", None),
    ("GET", "/api/v1/inspect/networks/blue:net/", None),
    ("POST", "/api/v1/endpoints", {"endpointID": "e1", "tenantName": "blue", "networkName": "net", "host": "h1"}),
    ("POST", "/api/v1/endpoints/", {"endpointID": "e2", "networkName": "nowhere"}),
    ("POST", "/api/v1/endpoints/", {"endpointID": "e3"}),
    ("GET", "/api/v1/endpoints/e1", None),
    ("GET", "/api/v1/endpoints/", None),
    ("GET", "/api/v1/inspect/endpoints/e1/", None),  # a path parameter: left to the router
    ("PUT", "/api/v1/endpoints/e1/labels", {"host": "h1", "labels": {"app": "web"}}),  # left to the router
    ("GET", "/api/v1/addressReservations/", None),
    ("DELETE", "/api/v1/endpoints/e1/", None),
    ("DELETE", "/api/v1/endpoints/e1/", None),
    ("GET", "/api/v1/inspect/tenants/nobody/", None),
    ("GET", "/api/v1/Bgps/", None),
    ("GET", "/api/v1/inspect/Bgps/h1/", None),  # a route of its own: left to the router
    ("GET", "/api/v1/nothings/x/", None),  # unknown kind: the router's 404
    ("PATCH", "/api/v1/tenants/blue/", TENANT),  # unknown method: the router's 405
    ("GET", "/api/v1/tenants/blue/extra/", None),
    ("GET", "/api/v1/tenants//", None),
    ("DELETE", "/api/v1/tenants/blue/", None),  # has a network: 4xx
    ("DELETE", "/api/v1/networks/blue:net/", None),
    ("DELETE", "/api/v1/tenants/blue/", None),
    ("DELETE", "/api/v1/tenants/blue/", None),  # gone: 404
    ("GET", "/api/v1/tenants/", None),
]


def _table(app: FastAPI) -> DirectRoutes:
    return next(m for m in app.user_middleware if m.cls is DirectRoutesMiddleware).kwargs["table"]


@contextmanager
def _client(direct: bool) -> Iterator[tuple[TestClient, DirectRoutes]]:
    app = create_app(open_store("memory://"))
    table = _table(app)
    if not direct:
        table.match = lambda method, path: None  # type: ignore[method-assign]
    with TestClient(app) as client:
        yield client, table


def _send(client: TestClient, method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
    content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    reply = client.request(method, path, content=content)
    # what differs between two runs by nature: the revision, and an endpoint's creation time
    headers = {k: v for k, v in reply.headers.items() if k not in ("date", "x-revision", "content-length")}
    return reply.status_code, headers, re.sub(rb'"createdAt":[0-9.]+', b'"createdAt":0', reply.content)


def test_direct_answers_equal_the_routers() -> None:
    with _client(direct=True) as (fast, table), _client(direct=False) as (slow, _):
        for method, path, body in REQUESTS:
            assert _send(fast, method, path, body) == _send(slow, method, path, body), (method, path)
        served = [(method, path) for method, path, _ in REQUESTS if table.match(method, path)]
    # the comparison is worth something only if the direct layer answered most of them
    assert ("POST", "/api/v1/tenants/blue/") in served
    assert ("GET", "/api/v1/inspect/networks/blue:net/") in served
    assert ("GET", "/api/v1/inspect/Bgps/h1/") not in served
    assert ("PATCH", "/api/v1/tenants/blue/") not in served
    assert ("POST", "/api/v1/endpoints") in served
    assert ("GET", "/api/v1/inspect/endpoints/e1/") not in served
    assert len(served) == len(REQUESTS) - 7  # all but two inspects, labels, PATCH, three malformed paths


def test_revisions_match_the_writes() -> None:
    """A write's ``X-Revision`` through the direct layer is the store revision it made."""
    with _client(direct=True) as (client, _):
        first = client.post("/api/v1/tenants/t1/", json={"tenantName": "t1"})
        second = client.post("/api/v1/tenants/t2/", json={"tenantName": "t2"})
        assert first.status_code == second.status_code == 200
        assert int(second.headers["x-revision"]) > int(first.headers["x-revision"])
        listed = client.get("/api/v1/tenants/")
        assert int(listed.headers["x-revision"]) >= int(second.headers["x-revision"])
        assert {t["tenantName"] for t in listed.json()} >= {"t1", "t2"}


def test_shadowed_routes_are_left_to_the_router() -> None:
    """A route registered ahead of an entry for the same paths, or one for a literal key beside it,
    keeps those requests with the router."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(key: str) -> PlainTextResponse:
        return PlainTextResponse(key)

    async def special(request: object) -> PlainTextResponse:
        return PlainTextResponse("special")

    async def inspect_special(key: str) -> PlainTextResponse:
        return PlainTextResponse("own inspect")

    async def inspect(key: str) -> PlainTextResponse:
        return PlainTextResponse(key)

    table = DirectRoutes()
    assert table.add(["GET"], item, "/api/v1/things/{key}")
    assert table.add(["GET"], inspect, "/api/v1/inspect/things/{key}")
    assert not table.add(["GET"], item, "/api/v1/things/{key:path}")  # typed: the router's
    assert not table.add(["GET"], special, "/api/v1/things/{key}/labels")  # not a known shape
    routes = [Route("/api/v1/things/special", special), Route("/api/v1/inspect/things/{key}", inspect_special),
              Route("/api/v1/things/{key}", item), Route("/api/v1/inspect/things/{key}", inspect)]
    table.check(routes)
    assert table.match("GET", "/api/v1/things/special") is None  # a literal beside the template
    assert table.match("GET", "/api/v1/things/other") is None
    assert table.match("GET", "/api/v1/inspect/things/x") is None  # an earlier route takes it
