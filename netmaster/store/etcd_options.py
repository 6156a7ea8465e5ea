"""Parse ``etcd://`` and ``etcds://`` store URLs into connection options.

One URL carries everything an operator sets on the command line (``--cluster-store``), so every
netmaster of a cluster can be started with the same string::

    etcd://h1:2379,h2:2379,h3:2379
    etcds://user:secret@h1:2379,h2:2379?ca=/etc/contiv/ca.pem&cert=/etc/contiv/c.pem&key=/etc/contiv/c.key
    etcd://h1:2379?username=contiv&password=secret&timeout=3&history=20000

The password is kept out of ``repr`` and of every message, because store URLs end up in logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from netmaster.store.base import StoreError

DEFAULT_PORT = 2379


@dataclass(frozen=True)
class EtcdOptions:
    endpoints: tuple[str, ...]  # "host:port", tried in order, with failover to the next
    tls: bool = False
    ca_file: str | None = None  # None with TLS: the system's trusted roots
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 5.0  # deadline of every request, and of a whole failover round
    connect_timeout: float = 2.0  # how long one endpoint may take to accept a connection
    # Revisions of history to keep: the store compacts etcd behind it (0: leave compaction to etcd's
    # own --auto-compaction settings). Watchers further behind than this must re-list.
    history: int = 10_000

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise StoreError("etcd store URL names no endpoint")
        if (self.username is None) != (self.password is None):
            raise StoreError("etcd credentials need both a username and a password")
        if (self.cert_file is None) != (self.key_file is None):
            raise StoreError("etcd client TLS needs both cert= and key=")
        if not self.tls and (self.ca_file or self.cert_file):
            raise StoreError("ca=, cert= and key= need the etcds:// scheme (TLS)")
        if self.timeout <= 0 or self.connect_timeout <= 0 or self.history < 0:
            raise StoreError("etcd timeout and connect_timeout must be > 0, history >= 0")

    def describe(self) -> str:
        """Where this store points, safe for logs and error messages (no password)."""
        scheme = "etcds" if self.tls else "etcd"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{','.join(self.endpoints)}"


_QUERY_KEYS = {"ca", "cert", "key", "username", "password", "timeout", "connect_timeout", "history"}


def split_store_url(url: str) -> SplitResult:
    """:func:`urllib.parse.urlsplit` without its check of the host part: an etcd URL names several hosts
    (``h1:2379,[::1]:2379``), which Pythons with the CVE-2024-11168 fix (CPython 3.11.11+, Debian's
    3.11.2 by a backport) refuse as an "Invalid IPv6 URL" since text precedes the bracket."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return urlsplit(url)  # no host part to check
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    return SplitResult(scheme.lower(), netloc, slash + path, query, fragment)


def parse_etcd_url(url: str) -> EtcdOptions:
    """``etcd[s]://[user:pass@]host[:port][,host[:port]...][?options]`` -> :class:`EtcdOptions`."""
    parts = split_store_url(url)
    if parts.scheme not in ("etcd", "etcds"):
        raise StoreError(f"not an etcd store URL (expected etcd:// or etcds://): scheme {parts.scheme!r}")
    if parts.path not in ("", "/"):
        raise StoreError("etcd store URL takes no path; use a key prefix in netmaster instead")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - _QUERY_KEYS
    if unknown:
        raise StoreError(f"unknown etcd store URL option(s): {', '.join(sorted(unknown))}")
    username, password = query.get("username"), query.get("password")
    if userinfo:
        user, sep, secret = userinfo.partition(":")
        username = unquote(user)
        password = unquote(secret) if sep else password
    try:
        return EtcdOptions(
            endpoints=tuple(_endpoint(h) for h in hosts.split(",") if h.strip()),
            tls=parts.scheme == "etcds",
            ca_file=query.get("ca") or None,
            cert_file=query.get("cert") or None,
            key_file=query.get("key") or None,
            username=username,
            password=password,
            timeout=float(query.get("timeout", 5.0)),
            connect_timeout=float(query.get("connect_timeout", 2.0)),
            history=int(query.get("history", 10_000)),
        )
    except ValueError as exc:
        raise StoreError(f"invalid etcd store URL option: {exc}") from exc


def _endpoint(text: str) -> str:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> ``host:port`` (gRPC target syntax)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        host = f"[{host}]"
    else:
        host, _, port = text.partition(":")
    if not host:
        raise StoreError(f"invalid etcd endpoint {text!r}")
    if port and not port.isdigit():
        raise StoreError(f"invalid etcd endpoint port in {text!r}")
    return f"{host}:{port or DEFAULT_PORT}"


def redact_url(url: str) -> str:
    """``url`` with any password removed (userinfo and ``password=``), for logs and ``/info``."""
    parts = split_store_url(url)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        netloc = f"{userinfo.partition(':')[0]}@{hosts}"
    query = "&".join(
        f"{k}=***" if k.lower() == "password" else f"{k}={v}"
        for k, v in (p.partition("=")[::2] for p in parts.query.split("&") if p)
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing secret (and geturl() would turn sqlite:/// into sqlite:/)
    return parts._replace(netloc=netloc, query=query).geturl()
