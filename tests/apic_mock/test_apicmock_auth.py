"""Authentication: aaaLogin/aaaRefresh/aaaLogout/aaaListDomains, token expiry, cookie spellings and
certificate (signature) authentication."""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest
from apicmock_helpers import error_of, mo
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from apic_mock.errors import NEED_COOKIE, TOKEN_TIMEOUT
from testbed.apic import ApicMock
from testbed.certs import cert_pem, self_signed

LOGIN = {"aaaUser": {"attributes": {"name": "admin", "pwd": "password"}}}


def test_login_reply_has_what_clients_need(apic_mock: ApicMock) -> None:
    with apic_mock.client(login=False) as c:
        r = c.post("/api/aaaLogin.json", content=json.dumps(LOGIN))  # no content type, like ansible
        assert r.status_code == 200
        body = r.json()
        assert body["totalCount"] == "1"
        attrs = body["imdata"][0]["aaaLogin"]["attributes"]
        for key in ("token", "refreshTimeoutSeconds", "version", "creationTime", "userName"):
            assert attrs[key], key
        assert attrs["refreshTimeoutSeconds"] == "600"
        assert r.headers.get_list("set-cookie") == [f"APIC-cookie={attrs['token']}; path=/; HttpOnly; Secure"]
        assert c.get("/api/mo/uni.json").status_code == 200


def test_bad_credentials_are_401(apic_mock: ApicMock) -> None:
    with apic_mock.client(login=False) as c:
        for body in (
            {"aaaUser": {"attributes": {"name": "admin", "pwd": "wrong"}}},
            {"aaaUser": {"attributes": {"name": "nobody", "pwd": "password"}}},
            {"aaaUser": {"attributes": {"name": "admin"}}},
        ):
            r = c.post("/api/aaaLogin.json", json=body)
            assert r.status_code == 401
            assert error_of(r)[0] == "401"
            assert "set-cookie" not in r.headers
        r = c.post(
            "/api/aaaLogin.json", json={"aaaUsers": {"attributes": {"name": "admin", "pwd": "password"}}}
        )
        assert r.status_code == 400
        r = c.post("/api/aaaLogin.json", content=b"{not json")
        assert r.status_code == 400
        assert "JSON parsing failed" in error_of(r)[1]


def test_login_domain_prefix_is_accepted(apic_mock: ApicMock) -> None:
    with apic_mock.client(login=False) as c:
        body = {"aaaUser": {"attributes": {"name": "apic:DefaultAuth\\admin", "pwd": "password"}}}
        assert c.post("/api/aaaLogin.json", json=body).status_code == 200


def test_missing_cookie_is_403_with_apic_text(apic_mock: ApicMock) -> None:
    with apic_mock.client(login=False) as c:
        r = c.get("/api/mo/uni.json")
        assert r.status_code == 403
        assert error_of(r) == ("403", NEED_COOKIE)


def test_unknown_token_is_token_timeout(apic_mock: ApicMock) -> None:
    r = httpx.get(
        f"{apic_mock.url}/api/mo/uni.json",
        headers={"Cookie": "APIC-cookie=garbage"},
        verify=apic_mock.ssl_context(),
    )
    assert r.status_code == 403
    assert error_of(r) == ("403", TOKEN_TIMEOUT)


@pytest.mark.parametrize(
    "header",
    [
        "APIC-cookie={t}",  # requests' cookie jar
        "APIC-Cookie={t}",  # apicapi, acc-provision
        "APIC-cookie={t}; path=/; HttpOnly; Secure",  # ansible echoes Set-Cookie verbatim
        "other=1; APIC-cookie={t}",
    ],
)
def test_cookie_spellings(apic_mock: ApicMock, header: str) -> None:
    r = httpx.post(f"{apic_mock.url}/api/aaaLogin.json", json=LOGIN, verify=apic_mock.ssl_context())
    token = r.json()["imdata"][0]["aaaLogin"]["attributes"]["token"]
    r = httpx.get(
        f"{apic_mock.url}/api/mo/uni.json",
        headers={"Cookie": header.format(t=token)},
        verify=apic_mock.ssl_context(),
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_refresh_issues_a_new_token(apic_mock: ApicMock, method: str) -> None:
    with apic_mock.client() as c:
        old = c.cookies["APIC-cookie"]
        r = c.request(method, "/api/aaaRefresh.json")
        assert r.status_code == 200
        new = r.json()["imdata"][0]["aaaLogin"]["attributes"]["token"]
        assert new != old
        assert c.cookies["APIC-cookie"] == new
        assert c.get("/api/mo/uni.json").status_code == 200


def test_refresh_without_cookie_is_403(apic_mock: ApicMock) -> None:
    with apic_mock.client(login=False) as c:
        assert c.get("/api/aaaRefresh.json").status_code == 403


def test_logout_invalidates_token(apic_mock: ApicMock) -> None:
    with apic_mock.client() as c:
        token = c.cookies["APIC-cookie"]
        r = c.post("/api/aaaLogout.json", json={"aaaUser": {"attributes": {"name": "admin"}}})
        assert r.status_code == 200
        assert r.json() == {"totalCount": "0", "imdata": []}
        r = httpx.get(
            f"{apic_mock.url}/api/mo/uni.json",
            headers={"Cookie": f"APIC-cookie={token}"},
            verify=apic_mock.ssl_context(),
        )
        assert error_of(r) == ("403", TOKEN_TIMEOUT)


def test_list_domains_needs_no_auth(apic_mock: ApicMock) -> None:
    with apic_mock.client(login=False) as c:
        r = c.get("/api/aaaListDomains.json")
        assert r.status_code == 200
        assert r.json()["imdata"][0] == {"name": "DefaultAuth", "guiBanner": ""}


def test_token_expires_after_refresh_timeout() -> None:
    with ApicMock.start(http=True, refresh_timeout=1, demo_fabric=False) as apic, apic.client() as c:
        assert c.get("/api/mo/uni.json").status_code == 200
        assert c.get("/api/aaaLogin.json").status_code == 405  # login is POST only
        time.sleep(1.3)
        r = c.get("/api/mo/uni.json")
        assert r.status_code == 403
        assert error_of(r) == ("403", TOKEN_TIMEOUT)
        # over plain HTTP the cookie is not marked Secure, so clients send it back
        r = c.post("/api/aaaLogin.json", json=LOGIN)
        assert "Secure" not in r.headers["set-cookie"]


def test_forced_expiry_and_multiple_users(apic_mock: ApicMock) -> None:
    with ApicMock.start(http=True, users={"alice": "a1", "bob": "b2"}, demo_fabric=False) as apic:
        assert apic.username == "alice"
        with apic.client() as alice, httpx.Client(base_url=apic.url) as bob:
            bob.post("/api/aaaLogin.json", json={"aaaUser": {"attributes": {"name": "bob", "pwd": "b2"}}})
            assert apic.admin.expire_tokens("alice") == 1
            assert error_of(alice.get("/api/mo/uni.json")) == ("403", TOKEN_TIMEOUT)
            assert bob.get("/api/mo/uni.json").status_code == 200
            r = bob.post("/api/aaaLogin.json", json=LOGIN)
            assert r.status_code == 401  # admin is not a user of this mock


def test_users_can_be_added_the_apic_way(api: httpx.Client, apic_mock: ApicMock) -> None:
    r = api.post("/api/mo/uni/userext.json", json=mo("aaaUser", {"name": "ops", "pwd": "s3cret"}))
    assert r.status_code == 200, r.text
    got = api.get("/api/mo/uni/userext/user-ops.json").json()["imdata"][0]["aaaUser"]["attributes"]
    assert "pwd" not in got  # secrets are never returned
    with apic_mock.client(login=False) as c:
        ok = c.post("/api/aaaLogin.json", json={"aaaUser": {"attributes": {"name": "ops", "pwd": "s3cret"}}})
        assert ok.status_code == 200


# --- certificate (signature) authentication ---------------------------------------------------------


def _key_and_cert() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, cert_pem(self_signed(key, "gw"))


CERT_DN = "uni/userext/user-gw/usercert-gw.crt"


@pytest.fixture(scope="module")
def keypair() -> tuple[rsa.RSAPrivateKey, str]:
    return _key_and_cert()


@pytest.fixture
def cert_user(api: httpx.Client, keypair: tuple[rsa.RSAPrivateKey, str]) -> Iterator[rsa.RSAPrivateKey]:
    key, pem = keypair
    body = mo("aaaUser", {"name": "gw"}, mo("aaaUserCert", {"name": "gw.crt", "data": pem}))
    assert api.post("/api/mo/uni/userext.json", json=body).status_code == 200
    return key


def _signed(key: rsa.RSAPrivateKey, method: str, target: str, body: bytes = b"", dn: str = CERT_DN) -> str:
    sig = base64.b64encode(
        key.sign(method.encode() + target.encode() + body, padding.PKCS1v15(), hashes.SHA256())
    )
    return (
        f"APIC-Request-Signature={sig.decode()}; APIC-Certificate-Algorithm=v1.0; "
        f"APIC-Certificate-Fingerprint=fingerprint; APIC-Certificate-DN={dn}"
    )


def test_signed_requests(apic_mock: ApicMock, cert_user: rsa.RSAPrivateKey) -> None:
    ctx = apic_mock.ssl_context()
    target = '/api/class/fvTenant.json?query-target-filter=eq(fvTenant.name,"common")'
    r = httpx.get(apic_mock.url + target, headers={"Cookie": _signed(cert_user, "GET", target)}, verify=ctx)
    assert r.status_code == 200, r.text
    assert r.json()["totalCount"] == "1"
    body = json.dumps(mo("fvTenant", {"name": "signed"})).encode()
    target = "/api/mo/uni.json"
    r = httpx.post(
        apic_mock.url + target,
        content=body,
        headers={"Cookie": _signed(cert_user, "POST", target, body)},
        verify=ctx,
    )
    assert r.status_code == 200, r.text
    target = "/api/mo/uni/tn-signed.json"
    r = httpx.delete(
        apic_mock.url + target, headers={"Cookie": _signed(cert_user, "DELETE", target)}, verify=ctx
    )
    assert r.status_code == 200
    # webtokenSession gives a token for the websocket
    target = "/api/webtokenSession.json"
    r = httpx.get(apic_mock.url + target, headers={"Cookie": _signed(cert_user, "GET", target)}, verify=ctx)
    assert r.json()["imdata"][0]["webtokenSession"]["attributes"]["token"]


def test_bad_signatures_are_refused(apic_mock: ApicMock, cert_user: rsa.RSAPrivateKey) -> None:
    ctx = apic_mock.ssl_context()
    target = "/api/mo/uni.json"
    other, _ = _key_and_cert()
    cases = [
        _signed(cert_user, "GET", "/api/mo/uni/tn-common.json"),  # signed another path
        _signed(cert_user, "POST", target),  # signed another method
        _signed(other, "GET", target),  # wrong key
        _signed(cert_user, "GET", target, dn="uni/userext/user-gw/usercert-nope"),  # unknown cert
        _signed(cert_user, "GET", target).replace("APIC-Request-Signature=", "APIC-Request-Signature=AAAA"),
    ]
    for cookie in cases:
        r = httpx.get(apic_mock.url + target, headers={"Cookie": cookie}, verify=ctx)
        assert r.status_code == 403, cookie
        assert error_of(r)[0] == "403"


def test_accept_unsigned_switch(keypair: tuple[rsa.RSAPrivateKey, str]) -> None:
    _key, pem = keypair
    with ApicMock.start(http=True, accept_unsigned=True, demo_fabric=False) as apic:
        with apic.client() as c:
            body = mo("aaaUser", {"name": "gw"}, mo("aaaUserCert", {"name": "gw.crt", "data": pem}))
            assert c.post("/api/mo/uni/userext.json", json=body).status_code == 200
        cookie = f"APIC-Request-Signature=bogus; APIC-Certificate-DN={CERT_DN}"
        assert httpx.get(apic.url + "/api/mo/uni.json", headers={"Cookie": cookie}).status_code == 200
        cookie = "APIC-Request-Signature=bogus; APIC-Certificate-DN=uni/userext/user-x/usercert-y"
        assert httpx.get(apic.url + "/api/mo/uni.json", headers={"Cookie": cookie}).status_code == 403


def test_signed_subscription_on_a_webtoken_session(apic_mock: ApicMock, cert_user: rsa.RSAPrivateKey) -> None:
    """aci-containers' flow: signed webtokenSession, websocket on that token, signed subscriptions that
    name the websocket session in APIC-WebSocket-Session."""
    from websockets.sync.client import connect

    ctx = apic_mock.ssl_context()
    target = "/api/webtokenSession.json"
    r = httpx.get(apic_mock.url + target, headers={"Cookie": _signed(cert_user, "GET", target)}, verify=ctx)
    token = r.json()["imdata"][0]["webtokenSession"]["attributes"]["token"]
    ws_ctx = apic_mock.ssl_context()
    assert ws_ctx is not None
    ws_ctx.maximum_version = (
        ssl.TLSVersion.TLSv1_2
    )  # websockets' sync client and TLS 1.3: see the subscription tests
    with connect(apic_mock.url.replace("https://", "wss://") + f"/socket{token}", ssl=ws_ctx) as ws:
        target = "/api/class/fvTenant.json?subscription=yes"
        cookie = _signed(cert_user, "GET", target) + f"; APIC-WebSocket-Session={token}"
        r = httpx.get(apic_mock.url + target, headers={"Cookie": cookie}, verify=ctx)
        assert r.status_code == 200, r.text
        sub = r.json()["subscriptionId"]
        body = json.dumps(mo("fvTenant", {"name": "pushed"})).encode()
        target = "/api/mo/uni.json"
        r = httpx.post(
            apic_mock.url + target,
            content=body,
            headers={"Cookie": _signed(cert_user, "POST", target, body)},
            verify=ctx,
        )
        assert r.status_code == 200
        frame = json.loads(ws.recv(timeout=5))
    assert frame["subscriptionId"] == [sub]
    assert frame["imdata"][0]["fvTenant"]["attributes"]["dn"] == "uni/tn-pushed"
    # without the websocket-session cookie a signed request has no session to subscribe on
    target = "/api/class/fvTenant.json?subscription=yes"
    r = httpx.get(apic_mock.url + target, headers={"Cookie": _signed(cert_user, "GET", target)}, verify=ctx)
    assert r.status_code == 400


def test_webtoken_session_is_refreshed_and_expires_like_a_login_token(
    apic_mock: ApicMock, cert_user: rsa.RSAPrivateKey
) -> None:
    """A signed aaaRefresh naming the webtoken keeps its session (and so its subscriptions); once the
    session's tokens time out, a signed request naming one is refused as an expired login token is."""
    from websockets.sync.client import connect

    ctx = apic_mock.ssl_context()

    def get(target: str, token: str | None = None) -> httpx.Response:
        cookie = _signed(cert_user, "GET", target) + (f"; APIC-WebSocket-Session={token}" if token else "")
        return httpx.get(apic_mock.url + target, headers={"Cookie": cookie}, verify=ctx)

    first = get("/api/webtokenSession.json").json()["imdata"][0]["webtokenSession"]["attributes"]["token"]
    sub = get("/api/mo/uni/tn-common.json?subscription=yes", first).json()["subscriptionId"]
    r = get("/api/aaaRefresh.json", first)
    assert r.status_code == 200, r.text
    second = next(iter(r.json()["imdata"][0].values()))["attributes"]["token"]
    assert second != first
    assert get(f"/api/subscriptionRefresh.json?id={sub}", second).status_code == 200
    ws_ctx = apic_mock.ssl_context()
    assert ws_ctx is not None
    ws_ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # see test_signed_subscription_on_a_webtoken_session
    with connect(apic_mock.url.replace("https://", "wss://") + f"/socket{second}", ssl=ws_ctx) as ws:
        body = json.dumps(mo("fvBD", {"name": "refreshed"})).encode()
        target = "/api/mo/uni/tn-common.json"
        r = httpx.post(apic_mock.url + target, content=body, verify=ctx,
                       headers={"Cookie": _signed(cert_user, "POST", target, body)})
        assert r.status_code == 200, r.text
        frame = json.loads(ws.recv(timeout=5))  # the socket of the new token gets the old subscription
    assert frame["subscriptionId"] == [sub]
    assert apic_mock.admin.expire_tokens("gw") >= 2
    for token in (first, second):
        r = get("/api/mo/uni/tn-common.json?subscription=yes", token)
        assert r.status_code == 403
        assert error_of(r) == ("403", TOKEN_TIMEOUT)
    r = get("/api/aaaRefresh.json", second)
    assert r.status_code == 403
    assert get("/api/mo/uni/tn-common.json").status_code == 200  # signing alone still works
