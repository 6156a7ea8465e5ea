"""REST backend edge cases with a scripted APIC (httpx.MockTransport): what is hard to make a real
server do on cue. The same behaviours are exercised end to end against apic_mock in test_resilience."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import time
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from aci_gw.apic.errors import ApicAuthError, ApicError, ApicUnavailable
from aci_gw.apic.rest import RestClient
from aci_gw.apic.retry import RetryPolicy
from aci_gw.config import ApicConnection
from aci_gw.mo import Mo

PASSWORD = "hunter2-secret"
TOKEN = "TOKEN-abcdef-123456"


def conn(**kw: object) -> ApicConnection:
    base = dict(url="https://apic.test", username="admin", password=PASSWORD, cert_dn=None,
                private_key_pem=None, verify_tls=True, ca_bundle=None, sdk="rest", timeout=5.0, retries=3,
                backoff=0.01)
    base.update(kw)
    return ApicConnection(**base)  # type: ignore[arg-type]


def envelope(*items: dict, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"totalCount": str(len(items)), "imdata": list(items)})


def error(status: int, code: str, text: str) -> httpx.Response:
    return envelope({"error": {"attributes": {"code": code, "text": text}}}, status=status)


def login_reply(token: str = TOKEN, timeout: str = "600") -> httpx.Response:
    return envelope({"aaaLogin": {"attributes": {"token": token, "refreshTimeoutSeconds": timeout,
                                                 "version": "5.2(1g)"}}})


class ScriptedApic:
    """Answers from a handler; records every request."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def client(handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float] | None = None,
           **kw: object) -> tuple[RestClient, ScriptedApic]:
    apic = ScriptedApic(handler)
    record = sleeps if sleeps is not None else []
    return RestClient(conn(**kw), transport=httpx.MockTransport(apic), sleep=record.append), apic


def test_login_and_cookie() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/aaaLogin.json":
            expected = {"aaaUser": {"attributes": {"name": "admin", "pwd": PASSWORD}}}
            assert json.loads(request.content) == expected
            return login_reply()
        assert request.headers["cookie"] == f"APIC-cookie={TOKEN}"
        return envelope({"fvTenant": {"attributes": {"dn": "uni/tn-a", "name": "a"}}})

    rest, apic = client(handler)
    mo = rest.read("uni/tn-a")
    assert mo is not None
    assert mo.rn == "tn-a"
    assert apic.paths() == ["POST /api/aaaLogin.json", "GET /api/mo/uni/tn-a.json"]
    assert apic.requests[1].url.query == b"rsp-subtree=full"


def test_token_timeout_logs_in_again_once() -> None:
    tokens = iter(["t1", "t2", "t3"])
    state = {"fail": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/aaaLogin.json":
            return login_reply(next(tokens))
        if state["fail"]:
            state["fail"] -= 1
            return error(403, "403", "Token was invalid (Error: Token timeout)")
        assert request.headers["cookie"] == "APIC-cookie=t2"
        return envelope()

    rest, apic = client(handler)
    rest.commit("uni/tn-a", Mo("fvTenant", {"name": "a"}))
    assert apic.paths() == ["POST /api/aaaLogin.json", "POST /api/mo/uni/tn-a.json",
                            "POST /api/aaaLogin.json", "POST /api/mo/uni/tn-a.json"]


def test_token_refused_twice_is_an_error_not_a_loop() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/aaaLogin.json":
            return login_reply()
        return error(403, "403", "Token was invalid (Error: Token timeout)")

    rest, apic = client(handler)
    with pytest.raises(ApicError, match="Token was invalid") as err:
        rest.read("uni")
    assert err.value.status == 403
    assert len(apic.requests) == 4


def test_refresh_before_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("aci_gw.apic.rest.time.monotonic", lambda: now[0])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/aaaLogin.json":
            return login_reply(timeout="60")
        if request.url.path == "/api/aaaRefresh.json":
            assert request.headers["cookie"] == f"APIC-cookie={TOKEN}"
            return login_reply("REFRESHED", timeout="60")
        return envelope()

    rest, apic = client(handler)
    rest.read("uni")
    now[0] += 29  # under half the lifetime: no refresh
    rest.read("uni")
    now[0] += 2
    rest.read("uni")
    assert apic.paths() == ["POST /api/aaaLogin.json", "GET /api/mo/uni.json", "GET /api/mo/uni.json",
                            "GET /api/aaaRefresh.json", "GET /api/mo/uni.json"]
    assert apic.requests[-1].headers["cookie"] == "APIC-cookie=REFRESHED"


def test_5xx_retries_with_growing_jittered_backoff_then_gives_up() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/aaaLogin.json":
            return login_reply()
        return error(503, "503", "busy")

    sleeps: list[float] = []
    rest, apic = client(handler, sleeps, retries=4, backoff=0.1)
    with pytest.raises(ApicUnavailable, match="HTTP 503 after 5 attempts: busy"):
        rest.read("uni")
    assert len(apic.requests) == 6
    bounds = [0.1, 0.2, 0.4, 0.8]
    assert len(sleeps) == 4
    for slept, bound in zip(sleeps, bounds, strict=True):
        assert bound / 2 <= slept <= bound


def test_connection_errors_are_retried() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/aaaLogin.json":
            return login_reply()
        calls["n"] += 1
        if calls["n"] <= 2:
            raise httpx.ConnectError("connection refused", request=request)
        return envelope()

    rest, _ = client(handler)
    assert rest.read("uni") is None
    assert calls["n"] == 3


def test_client_errors_are_not_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/aaaLogin.json":
            return login_reply()
        return error(400, "122", "unknown managed object class fvFoo")

    rest, apic = client(handler)
    with pytest.raises(ApicError, match="code 122: unknown managed object class fvFoo") as err:
        rest.commit("uni", Mo("fvTenant", {"name": "x"}))
    assert err.value.code == "122"
    assert len(apic.requests) == 2


def test_bad_credentials_are_an_auth_error() -> None:
    rest, apic = client(lambda r: error(401, "401", "Username or password is incorrect"))
    with pytest.raises(ApicAuthError, match="login as admin failed"):
        rest.read("uni")
    assert len(apic.requests) == 1


def test_certificate_signatures_verify() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    dn = "uni/userext/user-gw/usercert-gw"

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path != "/api/aaaLogin.json"
        cookies = dict(part.split("=", 1) for part in request.headers["cookie"].split("; "))
        assert cookies["APIC-Certificate-DN"] == dn
        assert cookies["APIC-Certificate-Algorithm"] == "v1.0"
        signed = request.method.encode() + request.url.raw_path + request.content
        key.public_key().verify(base64.b64decode(cookies["APIC-Request-Signature"]), signed,
                                padding.PKCS1v15(), hashes.SHA256())
        return envelope()

    rest, apic = client(handler, cert_dn=dn, private_key_pem=pem, password=None)
    rest.read("uni/tn-a/ap-b/epg-c/rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/1]]")
    rest.class_query("fvTenant", prop_filter='eq(fvTenant.name,"a b")')
    rest.commit("uni/tn-a", Mo("fvTenant", {"name": "a"}))
    assert len(apic.requests) == 3


def test_certificate_webtoken_belongs_to_the_watch_requests_only() -> None:
    """Signed subscription requests name the webtoken; pushes never carry it, so an expired webtoken
    cannot fail a push; a 403 "Token was invalid" on a subscription obtains a new webtoken once (a
    new session: the login generation moves, the watch reconnects) and a signature refusal does not."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    issued = (f"WT-{n}" for n in itertools.count(1))
    state = {"refuse_all": False}

    def handler(request: httpx.Request) -> httpx.Response:
        cookie = request.headers["cookie"]
        assert "APIC-Request-Signature=" in cookie
        if request.url.path == "/api/webtokenSession.json":
            return envelope({"webtokenSession": {"attributes": {"token": next(issued),
                                                                "refreshTimeoutSeconds": "600"}}})
        if "subscription=yes" in str(request.url):
            token = cookie.rsplit("APIC-WebSocket-Session=", 1)[-1]
            if token == "WT-1" or state["refuse_all"]:
                return error(403, "403", "Token was invalid (Error: Token timeout)")
            return httpx.Response(200, json={"totalCount": "0", "imdata": [], "subscriptionId": "42"})
        assert "APIC-WebSocket-Session" not in cookie, f"{request.url.path} carries the webtoken"
        return envelope()

    rest, apic = client(handler, cert_dn="uni/userext/user-gw/usercert-gw", private_key_pem=pem, password=None)
    token, generation = rest.websocket_session()
    assert token == "WT-1"
    rest.commit("uni/tn-a", Mo("fvTenant", {"name": "a"}))  # no cookie of the (expired) webtoken
    assert rest.subscribe("uni/tn-a", 60) == "42"
    assert rest.login_generation == generation + 1  # WT-2: the watch must reconnect
    assert [p for p in apic.paths() if "webtoken" in p] == ["GET /api/webtokenSession.json"] * 2
    assert not [p for p in apic.paths() if "aaaLogin" in p]
    state["refuse_all"] = True
    with pytest.raises(ApicError, match="Token was invalid"):  # refused again after one new webtoken
        rest.subscribe("uni/tn-a", 60)
    assert [p for p in apic.paths() if "webtoken" in p] == ["GET /api/webtokenSession.json"] * 3

def test_certificate_webtoken_refresh_refused_obtains_a_new_one() -> None:
    """An APIC that does not refresh webtokens with a signed aaaRefresh: the client falls back to a new
    webtokenSession (a new session, so the watch reconnects) instead of failing the subscription."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    issued = (f"WT-{n}" for n in itertools.count(1))
    refreshes: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cookie = request.headers["cookie"]
        if request.url.path == "/api/webtokenSession.json":
            return envelope({"webtokenSession": {"attributes": {"token": next(issued),
                                                                "refreshTimeoutSeconds": "0.02"}}})
        if request.url.path == "/api/aaaRefresh.json":
            refreshes.append(cookie.rsplit("APIC-WebSocket-Session=", 1)[-1])
            return error(403, "403", "Need a valid webtoken cookie (named APIC-Cookie) or a signed request")
        return httpx.Response(200, json={"totalCount": "0", "imdata": [], "subscriptionId": "7"})

    rest, _ = client(handler, cert_dn="uni/userext/user-gw/usercert-gw", private_key_pem=pem, password=None)
    token, generation = rest.websocket_session()
    time.sleep(0.05)  # past half the webtoken's lifetime
    assert rest.subscribe("uni/tn-a", 60) == "7"
    assert refreshes == [token]  # the refresh was signed and named the webtoken
    assert rest.login_generation == generation + 1

def test_no_secret_reaches_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    state = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/aaaLogin.json":
            return login_reply()
        state["n"] += 1
        if state["n"] == 1:
            return error(403, "403", "Token was invalid (Error: Token timeout)")
        if state["n"] == 2:
            return error(503, "503", "busy")
        return error(400, "103", "Cannot create")

    caplog.set_level(logging.DEBUG)
    rest, _ = client(handler)
    with pytest.raises(ApicError) as err:
        rest.commit("uni/tn-a", Mo("fvTenant", {"name": "a"}))
    text = caplog.text + str(err.value) + repr(rest.conn)
    assert "aaaLogin" in caplog.text or "login" in caplog.text
    assert PASSWORD not in text
    assert TOKEN not in text
    assert "APIC-cookie" not in text


def test_retry_policy_bounds() -> None:
    policy = RetryPolicy(retries=10, base=1.0, cap=4.0)
    assert [policy.delay(n) <= b for n, b in ((1, 1.0), (2, 2.0), (3, 4.0), (9, 4.0))] == [True] * 4
    assert policy.delay(9) >= 2.0
