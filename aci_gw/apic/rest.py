"""The REST backend: JSON over HTTPS with httpx, always available.

Session behaviour (what Contiv's gateway lacked and operators asked for):

* password login with ``aaaLogin``; the token is refreshed (``aaaRefresh``) once half its lifetime
  has passed, and a request answered "Token was invalid" logs in again and is repeated once;
* certificate sessions sign every request instead (no login, no token);
* idempotent requests are retried on connection errors and 5xx with exponential backoff and jitter,
  up to a bounded number of attempts, then fail with :class:`ApicUnavailable`;
* TLS is verified by default (system trust, or the configured CA bundle);
* nothing secret is logged: no password, token, cookie or signature, and no request body.

httpx rather than requests: ``requests`` lets ``REQUESTS_CA_BUNDLE`` override a session's ``verify``
(environment.md), while httpx takes the SSL context it is given.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from aci_gw.apic.client import ApicClient
from aci_gw.apic.errors import ApicAuthError, ApicError, ApicUnavailable
from aci_gw.apic.observer import NullObserver, RequestObserver
from aci_gw.apic.retry import RetryPolicy
from aci_gw.apic.signing import RequestSigner
from aci_gw.config import ApicConnection
from aci_gw.mo import Mo

log = logging.getLogger("aci_gw.apic")

_TOKEN_INVALID = ("token was invalid", "token timeout", "need a valid webtoken")


def _error_of(body: Any) -> tuple[str, str]:
    """APIC's (code, text) from an error envelope, or ("", "") when the body is not one."""
    try:
        attrs = body["imdata"][0]["error"]["attributes"]
        return str(attrs.get("code", "")), str(attrs.get("text", ""))
    except (KeyError, IndexError, TypeError):
        return "", ""


def _query(params: dict[str, str]) -> str:
    """A raw query string: APIC filters are sent unencoded, as cobra and ansible send them."""
    return "&".join(f"{k}={v}" for k, v in params.items() if v)


def tls_verify(conn: ApicConnection) -> ssl.SSLContext | bool:
    """The SSL context for the APIC: off only when asked, else the CA bundle or the system store."""
    if not conn.verify_tls:
        return False
    if conn.ca_bundle:
        return ssl.create_default_context(cafile=conn.ca_bundle)
    return ssl.create_default_context()


class RestClient(ApicClient):
    backend = "rest"

    def __init__(
        self,
        conn: ApicConnection,
        observer: RequestObserver | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.conn = conn
        self.observer = observer or NullObserver()
        self.policy = RetryPolicy(retries=conn.retries, base=conn.backoff)
        self._sleep = sleep
        self._signer = (
            RequestSigner(conn.cert_dn or "", conn.private_key_pem) if conn.private_key_pem else None
        )
        self._http = httpx.Client(
            base_url=conn.url, verify=tls_verify(conn), timeout=conn.timeout, transport=transport,
            trust_env=False,
        )
        self._lock = threading.RLock()
        self._token: str | None = None
        self._token_at = 0.0
        self._token_lifetime = 600.0
        #: Bumped at every password login: a new session, whose websocket the drift watch must open.
        self.login_generation = 0

    # -- session -------------------------------------------------------------------------------
    def login(self) -> None:
        if self._signer is not None:
            return
        with self._lock:
            self._login_locked()

    def _login_locked(self) -> None:
        body = {"aaaUser": {"attributes": {"name": self.conn.username, "pwd": self.conn.password or ""}}}
        try:
            reply = self._exchange("POST", "/api/aaaLogin.json", json.dumps(body).encode(), auth=False)
        except ApicError as exc:
            self.observer.login("password", False)
            if isinstance(exc, ApicUnavailable):
                raise
            raise ApicAuthError(
                f"APIC login as {self.conn.username} failed: {exc}", exc.code, exc.status
            ) from None
        self._take_token(reply, "password")
        self.login_generation += 1

    def _take_token(self, reply: Any, kind: str) -> None:
        try:
            attrs = reply["imdata"][0][next(iter(reply["imdata"][0]))]["attributes"]
            token = attrs["token"]
        except (KeyError, IndexError, TypeError, StopIteration):
            self.observer.login(kind, False)
            raise ApicAuthError(f"APIC {kind} reply carries no token") from None
        self._token = token
        self._token_at = time.monotonic()
        self._token_lifetime = float(attrs.get("refreshTimeoutSeconds") or 600)
        self.observer.login(kind, True)
        log.info("APIC %s ok as %s (token valid %.0f s)", kind, self.conn.username, self._token_lifetime)

    def _ensure_session(self) -> None:
        """Log in when there is no token; refresh it once half its lifetime has passed."""
        if self._signer is not None:
            return
        with self._lock:
            if self._token is None:
                self._login_locked()
            elif time.monotonic() - self._token_at > self._token_lifetime / 2:
                try:
                    self._take_token(self._exchange("GET", "/api/aaaRefresh.json", b""), "refresh")
                except ApicUnavailable:
                    raise
                except ApicError:
                    self._token = None
                    self._login_locked()

    def _auth_headers(self, method: str, raw_path: str, body: bytes) -> dict[str, str]:
        if self._signer is not None:
            return {"Cookie": self._signer.cookie(method, raw_path, body)}
        return {"Cookie": f"APIC-cookie={self._token}"} if self._token else {}

    # -- transport -----------------------------------------------------------------------------
    def _exchange(
        self, method: str, path: str, body: bytes, auth: bool = True, session: bool = False,
        retries: int | None = None,
    ) -> Any:
        """One logical request with retries; returns the decoded JSON reply or raises ApicError.

        ``auth`` attaches credentials; ``session`` also makes sure a valid session exists before each
        attempt and logs in again once when the APIC says the token is no longer valid.
        """
        budget = self.policy.retries if retries is None else retries
        attempt = 0
        relogged = False
        while True:
            if session:
                self._ensure_session()
            request = self._http.build_request(method, path, content=body or None,
                                               headers={"Content-Type": "application/json"} if body else {})
            if auth:
                request.headers.update(self._auth_headers(method, request.url.raw_path.decode(), body))
            started = time.monotonic()
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                self.observer.request(method, "error", time.monotonic() - started)
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # retrying cannot fix trust
                    raise ApicUnavailable(
                        f"TLS verification of APIC {self.conn.url} failed ({exc}); set APIC_CA_BUNDLE to "
                        "the CA that signed its certificate"
                    ) from None
                if attempt < budget:
                    attempt += 1
                    self._backoff(attempt, "connection", f"{type(exc).__name__}")
                    continue
                raise ApicUnavailable(
                    f"APIC {self.conn.url} unreachable after {attempt + 1} attempts "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            elapsed = time.monotonic() - started
            self.observer.request(method, str(response.status_code), elapsed)
            log.debug("%s %s -> %s (%.0f ms)", method, urlsplit(str(request.url)).path,
                      response.status_code, elapsed * 1000)
            try:
                reply = response.json()
            except ValueError:
                reply = None
            code, text = _error_of(reply)
            if response.status_code == 403 and session and self._signer is None and not relogged and (
                text.lower().startswith(_TOKEN_INVALID)
            ):
                relogged = True
                self.observer.retry("token")
                log.info("APIC token no longer valid (%s): logging in again", text)
                with self._lock:
                    self._token = None
                continue
            if response.status_code >= 500:
                if attempt < budget:
                    attempt += 1
                    self._backoff(attempt, "5xx", f"HTTP {response.status_code}")
                    continue
                raise ApicUnavailable(
                    f"APIC answered HTTP {response.status_code} after {attempt + 1} attempts"
                    + (f": {text}" if text else ""),
                    code, response.status_code,
                )
            if response.status_code >= 400 or reply is None:
                raise ApicError(
                    f"APIC refused {method} {urlsplit(path).path}: HTTP {response.status_code}"
                    + (f" code {code}: {text}" if code or text else ""),
                    code, response.status_code,
                )
            return reply

    def _backoff(self, attempt: int, reason: str, detail: str) -> None:
        delay = self.policy.delay(attempt)
        self.observer.retry(reason)
        log.warning(
            "APIC request failed (%s); retry %d/%d in %.2f s", detail, attempt, self.policy.retries, delay
        )
        self._sleep(delay)

    def _get(self, path: str, params: dict[str, str], retries: int | None = None) -> list[Mo]:
        query = _query(params)
        target = f"{path}?{query}" if query else path
        reply = self._exchange("GET", target, b"", session=True, retries=retries)
        return [Mo.from_json(item) for item in reply.get("imdata", [])]

    # -- ApicClient ----------------------------------------------------------------------------
    def read(
        self, dn: str, subtree: str = "full", classes: tuple[str, ...] = (), config_only: bool = False
    ) -> Mo | None:
        items = self._get(f"/api/mo/{dn}.json", {
            "rsp-subtree": subtree if subtree != "no" else "",
            "rsp-subtree-class": ",".join(classes),
            "rsp-prop-include": "config-only" if config_only else "",
        })
        return items[0] if items else None

    def read_tenants(self, names: list[str]) -> dict[str, Mo | None]:
        """One class query for all of them (a batch of pushes reads its tenants at once)."""
        if len(names) == 1:
            return super().read_tenants(names)
        terms = ",".join(f'eq(fvTenant.name,"{name}")' for name in names)
        found = self._get("/api/class/fvTenant.json", {
            "query-target-filter": f"or({terms})", "rsp-subtree": "full", "rsp-prop-include": "config-only",
        })
        by_name = {mo.attrs.get("name", ""): mo for mo in found}
        return {name: by_name.get(name) for name in names}

    def audit(self, dns: list[str]) -> list[Mo]:
        terms = [f'eq(aaaModLR.affected,"{dn}")' for dn in dns]
        return self._get("/api/node/class/aaaModLR.json", {
            "query-target-filter": terms[0] if len(terms) == 1 else f"or({','.join(terms)})",
            "order-by": "aaaModLR.created|desc", "page-size": "20",
        })

    def children(self, dn: str, classes: tuple[str, ...] = ()) -> list[Mo]:
        return self._get(f"/api/mo/{dn}.json", {
            "query-target": "children", "target-subtree-class": ",".join(classes),
        })

    def class_query(
        self, cls: str, prop_filter: str | None = None, subtree: str = "no", classes: tuple[str, ...] = ()
    ) -> list[Mo]:
        return self._get(f"/api/class/{cls}.json", {
            "query-target-filter": prop_filter or "",
            "rsp-subtree": subtree if subtree != "no" else "",
            "rsp-subtree-class": ",".join(classes),
        })

    def commit(self, dn: str, tree: Mo) -> None:
        body = json.dumps(tree.to_json(), separators=(",", ":")).encode()
        self._exchange("POST", f"/api/mo/{dn}.json", body, session=True)

    def health(self) -> dict[str, Any]:
        self._get("/api/mo/uni.json", {}, retries=0)
        return {
            "apic": self.conn.url, "backend": self.backend,
            "auth": "certificate" if self._signer else "password", "loggedIn": True,
        }

    # -- event subscriptions (the drift watch) ----------------------------------------------------
    def websocket_session(self, fresh: bool = False) -> tuple[str, int]:
        """The token to open ``/socket<token>`` with, and the login generation it belongs to.

        ``fresh`` logs in again first (after a reconnect the old session may be gone). Certificate
        sessions have no token; the watch is not available with them (see docs/aci.md)."""
        if self._signer is not None:
            raise ApicError("the drift watch needs password authentication (certificate sessions have no "
                            "websocket token)")
        with self._lock:
            if fresh or self._token is None:
                self._token = None
                self._login_locked()
            assert self._token is not None
            return self._token, self.login_generation

    def websocket_url(self, token: str) -> str:
        scheme, rest = self.conn.url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/socket{token}"

    def subscribe(self, dn: str, timeout: int) -> str:
        """Subscribe to every change in the subtree of ``dn``; returns the subscription id."""
        query = _query({"query-target": "subtree", "rsp-prop-include": "naming-only",
                        "subscription": "yes", "refresh-timeout": str(timeout)})
        reply = self._exchange("GET", f"/api/mo/{dn}.json?{query}", b"", session=True)
        sub_id = reply.get("subscriptionId")
        if not sub_id:
            raise ApicError(f"APIC reply to a subscription of {dn} carries no subscriptionId")
        return str(sub_id)

    def refresh_subscription(self, sub_id: str) -> bool:
        """Keep a subscription alive; False when the APIC no longer knows it (expired)."""
        try:
            self._exchange("GET", f"/api/subscriptionRefresh.json?id={sub_id}", b"", session=True)
        except ApicUnavailable:
            raise
        except ApicError as exc:
            if exc.status == 400:
                return False
            raise
        return True

    def close(self) -> None:
        self._http.close()
