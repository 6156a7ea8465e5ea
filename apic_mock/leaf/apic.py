"""The leaf's connection to the APIC: read the tenant trees, report learnt endpoints.

A real leaf gets its policy over the fabric's internal channels; the simulated one uses the APIC's
REST API like any client (login, class queries) and reports endpoints through apic_mock's admin route
``/mock/endpoints`` (``fvCEp`` is read-only over the APIC API, as on a real APIC, where only the
fabric creates endpoints). The session logs in again when its token is refused.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

import httpx

from apic_mock.leaf.model import TREE_CLASSES, Mo, parse_tree

log = logging.getLogger("apic_mock.leaf.apic")


class ApicReadError(RuntimeError):
    """The APIC could not be read (unreachable, refused, bad reply)."""


class LeafApicClient:
    def __init__(self, url: str, username: str, password: str, ca_file: str | None = None,
                 timeout: float = 10) -> None:
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else False
        if url.startswith("https") and not ca_file:
            verify = ssl.create_default_context()
        transport = httpx.HTTPTransport(verify=verify, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.http = httpx.Client(base_url=url.rstrip("/"), transport=transport, timeout=timeout)
        self.username = username
        self.password = password
        self._logged_in = False

    def close(self) -> None:
        self.http.close()

    def _login(self) -> None:
        body = {"aaaUser": {"attributes": {"name": self.username, "pwd": self.password}}}
        response = self.http.post("/api/aaaLogin.json", json=body)
        if response.status_code != 200:
            raise ApicReadError(
                f"APIC login as {self.username} failed: HTTP {response.status_code} {response.text[:200]}")
        self.http.cookies.update(response.cookies)
        self._logged_in = True

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            if not self._logged_in:
                self._login()
            response = self.http.get(path, params=params)
            if response.status_code in (401, 403):
                self._login()
                response = self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            self._logged_in = False
            raise ApicReadError(f"APIC unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ApicReadError(f"GET {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json()

    def tenants(self) -> list[Mo]:
        """Every tenant with the subtree classes the leaf enforces (one request)."""
        reply = self._get("/api/class/fvTenant.json",
                          {"rsp-subtree": "full", "rsp-subtree-class": TREE_CLASSES})
        return parse_tree(reply.get("imdata", []))

    def endpoints_on(self, node: int, pod: int = 1) -> dict[str, dict[str, str]]:
        """``fvCEp`` objects whose path is a port of this leaf: dn -> attributes."""
        prefix = f"topology/pod-{pod}/paths-{node}/"
        reply = self._get("/api/class/fvCEp.json", {"query-target-filter": f'wcard(fvCEp.fabricPathDn,"{prefix}")'})
        out = {}
        for item in reply.get("imdata", []):
            attrs = item["fvCEp"]["attributes"]
            if attrs.get("fabricPathDn", "").startswith(prefix):
                out[attrs["dn"]] = attrs
        return out

    def report_endpoint(self, epg: str, mac: str, ip: str | None, encap: str, path: str) -> None:
        try:
            response = self.http.post("/mock/endpoints", json={"epg": epg, "mac": mac, "ip": ip or "0.0.0.0",
                                                               "encap": encap, "path": path})
        except httpx.HTTPError as exc:
            raise ApicReadError(f"APIC unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ApicReadError(f"POST /mock/endpoints: HTTP {response.status_code} {response.text[:200]}")

    def remove_endpoint(self, dn: str) -> None:
        try:
            response = self.http.delete("/mock/objects", params={"dn": dn})
        except httpx.HTTPError as exc:
            raise ApicReadError(f"APIC unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ApicReadError(f"DELETE /mock/objects {dn}: HTTP {response.status_code} {response.text[:200]}")
