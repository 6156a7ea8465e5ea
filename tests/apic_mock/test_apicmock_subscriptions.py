"""Subscriptions: ``subscription=yes``, the ``/socket<token>`` websocket, refresh and event scope."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from apicmock_helpers import attrs_of, error_of, mo
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from testbed.apic import ApicMock


def ws_ssl(apic: ApicMock) -> ssl.SSLContext | None:
    """Client TLS context for the websocket tests.

    websockets 17.4's *sync* client sometimes hangs in its opening handshake over TLS 1.3 (its reader
    thread blocks in ``SSLSocket.read``; the asyncio client and the server are fine: 300 sequential
    ``wss://`` connects pass with the asyncio client). TLS 1.2 avoids that client bug.
    """
    ctx = apic.ssl_context()
    if ctx is not None:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def ws_url(apic: ApicMock, token: str) -> str:
    return apic.url.replace("https://", "wss://").replace("http://", "ws://") + f"/socket{token}"


@pytest.fixture
def socket(apic_mock: ApicMock, api: httpx.Client) -> Iterator[ClientConnection]:
    with connect(ws_url(apic_mock, api.cookies["APIC-cookie"]), ssl=ws_ssl(apic_mock)) as ws:
        yield ws


def frames(ws: ClientConnection, wait: float = 0.5) -> list[dict[str, Any]]:
    """Every frame that arrives within ``wait`` seconds."""
    out = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return out


def events(ws: ClientConnection, wait: float = 0.5) -> list[tuple[list[str], str, dict[str, str]]]:
    out = []
    for frame in frames(ws, wait):
        for item in frame["imdata"]:
            ((cls, body),) = item.items()
            out.append((frame["subscriptionId"], cls, body["attributes"]))
    return out


def subscribe(api: httpx.Client, path: str) -> str:
    r = api.get(path + ("&" if "?" in path else "?") + "subscription=yes")
    assert r.status_code == 200, r.text
    sub_id = r.json()["subscriptionId"]
    assert isinstance(sub_id, str)
    assert sub_id.isdigit()
    return sub_id


def test_class_subscription_created_modified_deleted(api: httpx.Client, socket: ClientConnection) -> None:
    sub = subscribe(api, "/api/class/fvTenant.json")
    api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "s1"}, mo("fvAp", {"name": "a"})))
    got = events(socket)
    assert len(got) == 1  # the fvAp is not an fvTenant
    ids, cls, attrs = got[0]
    assert ids == [sub]
    assert cls == "fvTenant"
    assert attrs["status"] == "created"
    assert attrs["dn"] == "uni/tn-s1"
    assert attrs["name"] == "s1"
    api.post("/api/mo/uni/tn-s1.json", json=mo("fvTenant", {"descr": "hello"}))
    ((_, _, attrs),) = events(socket)
    assert attrs["status"] == "modified"
    assert attrs["descr"] == "hello"
    assert attrs["dn"] == "uni/tn-s1"
    api.post("/api/mo/uni/tn-s1.json", json=mo("fvTenant", {"descr": "hello"}))  # no change, no event
    assert events(socket, 0.3) == []
    api.delete("/api/mo/uni/tn-s1.json")
    ((_, _, attrs),) = events(socket)
    assert attrs["status"] == "deleted"
    assert attrs["dn"] == "uni/tn-s1"


def test_dn_subscription_scope_and_filters(api: httpx.Client, socket: ClientConnection) -> None:
    api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "s2"}))
    sub_tree = subscribe(api, "/api/mo/uni/tn-s2.json?query-target=subtree")
    sub_bd = subscribe(api, '/api/class/fvBD.json?query-target-filter=eq(fvBD.name,"want")')
    api.post("/api/mo/uni/tn-s2.json", json=mo("fvBD", {"name": "want"}))
    got = events(socket)
    by_dn = {attrs["dn"]: ids for ids, _, attrs in got}
    assert sorted(by_dn["uni/tn-s2/BD-want"]) == sorted([sub_tree, sub_bd])  # one event, both ids
    assert "uni/tn-s2/BD-want/rsctx" in by_dn  # APIC creates the BD's rsctx; inside the subtree
    api.post("/api/mo/uni/tn-s2.json", json=mo("fvBD", {"name": "other"}))
    got = events(socket)
    assert all(ids == [sub_tree] for ids, _, _ in got)
    api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "elsewhere"}, mo("fvBD", {"name": "nope"})))
    assert events(socket, 0.3) == []
    api.delete("/api/mo/uni/tn-s2.json")
    deleted = {attrs["dn"] for _, _, attrs in events(socket) if attrs["status"] == "deleted"}
    assert {"uni/tn-s2", "uni/tn-s2/BD-want", "uni/tn-s2/BD-other"} <= deleted  # one event per object


def test_learned_endpoints_are_pushed(
    apic_mock: ApicMock, api: httpx.Client, socket: ClientConnection
) -> None:
    api.post(
        "/api/mo/uni.json",
        json=mo("fvTenant", {"name": "e"}, mo("fvAp", {"name": "a"}, mo("fvAEPg", {"name": "g"}))),
    )
    sub = subscribe(api, "/api/class/fvCEp.json")
    apic_mock.admin.add_endpoint("uni/tn-e/ap-a/epg-g", "00:11:22:33:44:55", "10.0.0.5", "vlan-100")
    ((ids, cls, attrs),) = events(socket)
    assert (ids, cls, attrs["mac"], attrs["ip"], attrs["encap"]) == (
        [sub],
        "fvCEp",
        "00:11:22:33:44:55",
        "10.0.0.5",
        "vlan-100",
    )
    cep = api.get("/api/mo/uni/tn-e/ap-a/epg-g/cep-00:11:22:33:44:55.json?rsp-subtree=children").json()
    assert attrs_of(cep["imdata"][0]["fvCEp"]["children"][0])["addr"] == "10.0.0.5"
    apic_mock.admin.remove("uni/tn-e/ap-a/epg-g/cep-00:11:22:33:44:55")
    ((_, _, attrs),) = events(socket)
    assert attrs["status"] == "deleted"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_subscription_refresh(api: httpx.Client, method: str) -> None:
    sub = subscribe(api, "/api/class/fvTenant.json")
    r = api.request(method, f"/api/subscriptionRefresh.json?id={sub}")
    assert r.status_code == 200
    assert r.json() == {"totalCount": "0", "imdata": []}
    r = api.request(method, "/api/subscriptionRefresh.json?id=123")
    assert r.status_code == 400
    assert error_of(r)[0] == "400"


def test_subscription_expires_without_refresh(api: httpx.Client, socket: ClientConnection) -> None:
    sub = subscribe(api, "/api/class/fvTenant.json?refresh-timeout=1")
    time.sleep(1.2)
    assert api.get(f"/api/subscriptionRefresh.json?id={sub}").status_code == 400
    api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "late"}))
    assert events(socket, 0.3) == []


def test_socket_needs_a_valid_token(apic_mock: ApicMock) -> None:
    with (
        pytest.raises(InvalidStatus) as info,
        connect(ws_url(apic_mock, "bogus"), ssl=ws_ssl(apic_mock)),
    ):
        pass
    assert info.value.response.status_code == 403


def test_logout_closes_the_socket(apic_mock: ApicMock) -> None:
    with apic_mock.client() as c:
        subscribe(c, "/api/class/fvTenant.json")
        with connect(ws_url(apic_mock, c.cookies["APIC-cookie"]), ssl=ws_ssl(apic_mock)) as ws:
            c.post("/api/aaaLogout.json", json={"aaaUser": {"attributes": {"name": "admin"}}})
            with pytest.raises(Exception):  # noqa: B017, PT011 - closed by the server
                ws.recv(timeout=2)
    assert apic_mock.admin.subscriptions() == []


def test_subscription_reply_keeps_query_results(api: httpx.Client) -> None:
    r = api.get("/api/mo/uni/tn-common.json?subscription=yes").json()
    assert r["totalCount"] == "1"
    assert list(r)[:2] == ["totalCount", "imdata"]
    assert "subscriptionId" in r
    assert api.get("/api/mo/uni.json?subscription=maybe").status_code == 400
