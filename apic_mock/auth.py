"""Authentication: password sessions (aaaLogin/aaaRefresh/aaaLogout) and signed requests.

Users are ``aaaUser`` objects in the tree (the CLI's ``--user`` options create them), so a client can
also add users and certificates the APIC way, by POSTing ``aaaUser``/``aaaUserCert``. Tokens expire
``refreshTimeoutSeconds`` after they were issued or refreshed; an expired or unknown token gets
APIC's 403 "Token was invalid (Error: Token timeout)", which clients match to re-login.
Certificate auth verifies ``APIC-Request-Signature`` (RSA PKCS#1 v1.5, SHA-256) over method + path
and query + body with the PEM stored in ``uni/userext/user-U/usercert-C``; ``accept_unsigned``
skips the signature check for clients that sign something other than what they send.
Secrets (passwords, tokens, signatures) are never logged.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from apic_mock import errors
from apic_mock.errors import ApicError
from apic_mock.tree import Mo, Tree

log = logging.getLogger("apic_mock.auth")

TOKEN_COOKIE_RE = re.compile(r"APIC-[Cc]ookie=([^;,\s]+)")
CERT_COOKIES = (
    "APIC-Request-Signature",
    "APIC-Certificate-DN",
    "APIC-Certificate-Algorithm",
    "APIC-Certificate-Fingerprint",
)
USERS_DN = "uni/userext"


@dataclass
class Session:
    """A login session; refreshing it issues a new token but keeps ``sid`` (subscriptions hang on it)."""

    sid: str
    user: str
    token: str
    issued: float
    created: float
    expires: float
    kind: str = "password"


@dataclass
class Identity:
    """Who made a request: the user, and the session when a token was used."""

    user: str
    session: Session | None = None
    method: str = "token"


@dataclass
class Auth:
    """Sessions and request authentication for one mock."""

    tree: Tree
    refresh_timeout: int = 600
    max_lifetime: int = 86_400
    accept_unsigned: bool = False
    sessions: dict[str, Session] = field(default_factory=dict)

    # --- password sessions ----------------------------------------------------------------------
    def check_password(self, name: str, pwd: str) -> str:
        """The user name when the credentials are right; raises APIC's 401 otherwise."""
        user = name.rsplit("\\", 1)[-1] if name.startswith("apic:") else name
        mo = self.tree.get(f"{USERS_DN}/user-{user}") if user else None
        stored = mo.attrs.get("pwd", "") if mo is not None else ""
        active = mo is not None and mo.attrs.get("accountStatus", "active") == "active"
        if not (active and stored and hmac.compare_digest(stored.encode(), pwd.encode())):
            log.info("login failed", extra={"user": user})
            raise ApicError(401, errors.BAD_CREDENTIALS, http_status=401)
        return user

    def login(self, user: str, kind: str = "password") -> Session:
        """Open a session for an authenticated user (and forget long-dead ones: some clients, like
        Contiv's aci-gw, log in for every request)."""
        self.sweep()
        now = time.time()
        session = Session(
            sid=secrets.token_hex(8),
            user=user,
            token=_new_token(),
            issued=now,
            created=now,
            expires=now + self.refresh_timeout,
            kind=kind,
        )
        self.sessions[session.token] = session
        log.info("session opened", extra={"user": user, "session": session.sid, "kind": kind})
        return session

    def refresh(self, session: Session) -> Session:
        """A new token for the same session; the old token keeps working until it times out."""
        now = time.time()
        limit = session.created + self.max_lifetime
        new = Session(
            sid=session.sid,
            user=session.user,
            token=_new_token(),
            issued=now,
            created=session.created,
            expires=min(now + self.refresh_timeout, limit),
            kind=session.kind,
        )
        self.sessions[new.token] = new
        return new

    def logout(self, session: Session) -> None:
        """Invalidate every token of the session."""
        for token in [t for t, s in self.sessions.items() if s.sid == session.sid]:
            del self.sessions[token]
        log.info("session closed", extra={"user": session.user, "session": session.sid})

    def expire(self, user: str | None = None) -> int:
        """Force tokens to time out now (admin fault); returns how many were expired."""
        count = 0
        for session in self.sessions.values():
            if user is None or session.user == user:
                session.expires = 0.0
                count += 1
        return count

    def session_for(self, token: str) -> Session:
        """The live session of ``token``; 403 "Token was invalid" when expired or unknown."""
        session = self.sessions.get(token)
        if session is None or session.expires <= time.time():
            raise ApicError(403, errors.TOKEN_TIMEOUT, http_status=403)
        return session

    def sweep(self) -> None:
        """Forget sessions that expired long ago (keeps memory bounded on long runs)."""
        cutoff = time.time() - self.refresh_timeout
        for token in [t for t, s in self.sessions.items() if s.expires < cutoff]:
            del self.sessions[token]

    # --- per-request authentication ----------------------------------------------------------------
    def authenticate(self, cookie_header: str, method: str, raw_target: str, body: bytes) -> Identity:
        """Identify the caller from the ``Cookie`` header (token or signature cookies)."""
        cookies = parse_cookies(cookie_header)
        if "APIC-Request-Signature" in cookies or "APIC-Certificate-DN" in cookies:
            return self._signed(cookies, method, raw_target, body)
        match = TOKEN_COOKIE_RE.search(cookie_header or "")
        if match is None:
            raise ApicError(403, errors.NEED_COOKIE, http_status=403)
        session = self.session_for(match.group(1).strip('"'))
        return Identity(session.user, session)

    def _signed(self, cookies: dict[str, str], method: str, raw_target: str, body: bytes) -> Identity:
        cert_dn = cookies.get("APIC-Certificate-DN", "")
        cert = self.tree.get(cert_dn)
        if cert is None or cert.cls != "aaaUserCert" or cert.parent is None:
            raise ApicError(403, f"Signature verification failed: no certificate {cert_dn}", http_status=403)
        user = cert.parent.attrs.get("name", "")
        identity = self._verified(cert, user, cookies, method, raw_target, body)
        # aci-containers signs its subscription queries and names its websocket session in this
        # cookie, so the subscription belongs to that session's socket.
        ws_token = cookies.get("APIC-WebSocket-Session")
        if ws_token:
            session = self.session_for(ws_token)
            if session.user == user:
                identity.session = session
        return identity

    def _verified(
        self, cert: Mo, user: str, cookies: dict[str, str], method: str, raw_target: str, body: bytes
    ) -> Identity:
        """Check the request signature against the certificate (unless ``accept_unsigned``)."""
        if self.accept_unsigned:
            return Identity(user, method="certificate-unverified")
        signature = cookies.get("APIC-Request-Signature", "")
        try:
            sig = base64.b64decode(signature, validate=False)
            public = x509.load_pem_x509_certificate(cert.attrs.get("data", "").encode()).public_key()
        except ValueError:
            raise ApicError(
                403, "Signature verification failed: unreadable certificate or signature", http_status=403
            ) from None
        if not isinstance(public, rsa.RSAPublicKey):
            raise ApicError(403, "Signature verification failed: certificate key is not RSA", http_status=403)
        for target in _signed_targets(raw_target):
            try:
                public.verify(
                    sig, method.encode() + target.encode() + body, padding.PKCS1v15(), hashes.SHA256()
                )
            except InvalidSignature:
                continue
            return Identity(user, method="certificate")
        raise ApicError(
            403, "Signature verification failed: signature does not match request", http_status=403
        )


def _signed_targets(raw_target: str) -> list[str]:
    """What clients sign: the target as sent, percent-decoded, or (Cobra) without a trailing ``?``."""
    out = [raw_target, unquote(raw_target), raw_target.rstrip("?")]
    return list(dict.fromkeys(out))


def _new_token() -> str:
    return secrets.token_urlsafe(96)


def parse_cookies(header: str) -> dict[str, str]:
    """``Cookie`` header to a dict, keeping ``=`` inside values (base64 signatures end with it)."""
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name.strip()] = value.strip().strip('"')
    return out
