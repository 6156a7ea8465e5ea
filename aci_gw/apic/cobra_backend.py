"""The cobra SDK backend, used when ``acicobra`` and ``acimodel`` are importable.

The SDK is only distributed by an APIC (``/cobra/_downloads/``), so it is optional: the image takes
its wheels from a build-context folder, and this module imports it lazily. The backend keeps the
gateway's own tree as the data shape and converts at the edge: reads are decoded by cobra's JSON codec
and re-read as :class:`Mo`; commits build cobra MOs from the tree and send one ``ConfigRequest``.
Sessions use ``requestFormat='json'`` (cobra defaults to XML) and, since cobra never logs in again by
itself, a token timeout triggers one fresh login and a repeat, as the REST backend does.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from typing import Any

from aci_gw.apic.client import ApicClient
from aci_gw.apic.errors import ApicAuthError, ApicError, ApicUnavailable
from aci_gw.apic.observer import NullObserver, RequestObserver
from aci_gw.config import ApicConnection
from aci_gw.mo import NAMING_PROPS, Mo


def cobra_available() -> bool:
    try:
        importlib.import_module("cobra.mit.access")
        importlib.import_module("cobra.model.fv")
    except ImportError:
        return False
    return True


class CobraClient(ApicClient):
    backend = "cobra"

    def __init__(self, conn: ApicConnection, observer: RequestObserver | None = None) -> None:
        self.conn = conn
        self.observer = observer or NullObserver()
        self._access = importlib.import_module("cobra.mit.access")
        self._session_mod = importlib.import_module("cobra.mit.session")
        self._request = importlib.import_module("cobra.mit.request")
        self._codec = importlib.import_module("cobra.internal.codec.jsoncodec")
        self._lock = threading.Lock()
        self._md: Any = None

    def _directory(self) -> Any:
        with self._lock:
            if self._md is None:
                verify: Any = self.conn.ca_bundle or self.conn.verify_tls
                if self.conn.private_key_pem is not None:
                    session = self._session_mod.CertSession(
                        self.conn.url, self.conn.cert_dn, self.conn.private_key_pem.decode(),
                        secure=verify, timeout=self.conn.timeout, requestFormat="json",
                    )
                else:
                    session = self._session_mod.LoginSession(
                        self.conn.url, self.conn.username, self.conn.password, secure=verify,
                        timeout=self.conn.timeout, requestFormat="json",
                    )
                md = self._access.MoDirectory(session)
                try:
                    md.login()
                except Exception as exc:  # cobra raises LoginError, requests errors, ...
                    self.observer.login("password", False)
                    raise ApicAuthError(f"APIC login failed: {type(exc).__name__}: {exc}") from None
                self.observer.login("password", True)
                self._md = md
            return self._md

    def _call(self, fn: Any, method: str = "GET") -> Any:
        """Run one SDK call, logging in again once on a token timeout, mapping errors to ApicError."""
        for attempt in (1, 2):
            started = time.monotonic()
            try:
                result = fn(self._directory())
                self.observer.request(method, "200", time.monotonic() - started)
                return result
            except Exception as exc:
                status = str(getattr(exc, "httpCode", "") or "error")
                self.observer.request(method, status, time.monotonic() - started)
                text = str(getattr(exc, "reason", "") or exc)
                if attempt == 1 and "token" in text.lower():
                    self.observer.retry("token")
                    with self._lock:
                        self._md = None
                    continue
                if type(exc).__module__.startswith(("requests", "urllib3")):
                    raise ApicUnavailable(f"APIC {self.conn.url} unreachable: {exc}") from None
                raise ApicError(f"APIC refused the request: {text}", str(getattr(exc, "error", "") or ""),
                                int(getattr(exc, "httpCode", 0) or 0)) from None
        raise AssertionError("unreachable")

    def _to_mo(self, cobra_mo: Any) -> Mo:
        data = json.loads(self._codec.toJSONStr(cobra_mo, includeAllProps=True))
        return Mo.from_json(data)

    def _query(self, query: Any, subtree: str, classes: tuple[str, ...]) -> list[Mo]:
        if subtree != "no":
            query.subtree = subtree
        if classes:
            query.subtreeClassFilter = ",".join(classes)
        return [self._to_mo(mo) for mo in self._call(lambda md: md.query(query))]

    def login(self) -> None:
        self._directory()

    def read(
        self, dn: str, subtree: str = "full", classes: tuple[str, ...] = (), config_only: bool = False
    ) -> Mo | None:
        query = self._request.DnQuery(dn)
        if config_only:
            query.propInclude = "config-only"
        items = self._query(query, subtree, classes)
        return items[0] if items else None

    def children(self, dn: str, classes: tuple[str, ...] = ()) -> list[Mo]:
        query = self._request.DnQuery(dn)
        query.queryTarget = "children"
        if classes:
            query.classFilter = ",".join(classes)
        return [self._to_mo(mo) for mo in self._call(lambda md: md.query(query))]

    def class_query(
        self, cls: str, prop_filter: str | None = None, subtree: str = "no", classes: tuple[str, ...] = ()
    ) -> list[Mo]:
        query = self._request.ClassQuery(cls)
        if prop_filter:
            query.propFilter = prop_filter
        return self._query(query, subtree, classes)

    def _build(self, parent: Any, node: Mo) -> Any:
        """A cobra MO for ``node`` under ``parent`` (class ``fvAEPg`` is ``cobra.model.fv.AEPg``)."""
        prefix = next(i for i, ch in enumerate(node.cls) if ch.isupper())
        module = importlib.import_module(f"cobra.model.{node.cls[:prefix]}")
        klass = getattr(module, node.cls[prefix:])
        naming = NAMING_PROPS.get(node.cls, ())
        props = {k: v for k, v in node.attrs.items() if k not in naming and k != "status"}
        mo = klass(parent, *[node.attrs[p] for p in naming], **props)
        if node.attrs.get("status") == "deleted":
            mo.delete()
        for child in node.children:
            self._build(mo, child)
        return mo

    def commit(self, dn: str, tree: Mo) -> None:
        parent_dn = dn.rsplit("/", 1)[0] if "/" in dn else ""
        root = self._build(parent_dn, tree)
        config = self._request.ConfigRequest()
        config.addMo(root)
        self._call(lambda md: md.commit(config), "POST")

    def health(self) -> dict[str, Any]:
        self._call(lambda md: md.lookupByDn("uni"))
        return {"apic": self.conn.url, "backend": self.backend, "loggedIn": True,
                "auth": "certificate" if self.conn.private_key_pem else "password"}

    def close(self) -> None:
        self._md = None
