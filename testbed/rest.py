"""netmaster's REST API as tests call it: one call per line, and the error shape every refusal has."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

import httpx

_names = itertools.count(1)


class Api:
    """Thin wrapper so tests read like the REST calls they make."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def post(self, plural: str, key: str, body: dict[str, Any] | None = None, **fields: Any) -> httpx.Response:
        return self.http.post(f"/api/v1/{plural}/{quote(key, safe=':')}/", json={**(body or {}), **fields})

    def get(self, plural: str, key: str | None = None) -> httpx.Response:
        return self.http.get(f"/api/v1/{plural}/" + (f"{key}/" if key else ""))

    def delete(self, plural: str, key: str) -> httpx.Response:
        return self.http.delete(f"/api/v1/{plural}/{key}/")

    def inspect(self, plural: str, key: str) -> dict[str, Any]:
        r = self.http.get(f"/api/v1/inspect/{plural}/{key}/")
        assert r.status_code == 200, r.text
        return r.json()

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, response.text
        return response.json()

    # Fixtures for common objects -----------------------------------------------------------------

    def tenant(self) -> str:
        name = f"t{next(_names)}"
        self.ok(self.post("tenants", name, tenantName=name))
        return name

    def network(self, tenant: str, name: str = "net", subnet: str = "10.1.1.0/24", **kw: Any) -> str:
        body = {"tenantName": tenant, "networkName": name, "encap": "vxlan", "subnet": subnet, **kw}
        self.ok(self.post("networks", f"{tenant}:{name}", body))
        return name

    def group(self, tenant: str, network: str, name: str, **kw: Any) -> str:
        self.ok(
            self.post(
                "endpointGroups", f"{tenant}:{name}", tenantName=tenant, groupName=name, networkName=network, **kw
            )
        )
        return name

    def endpoint(self, ep_id: str, tenant: str, network: str, **kw: Any) -> httpx.Response:
        return self.http.post(
            "/api/v1/endpoints/", json={"endpointID": ep_id, "tenantName": tenant, "networkName": network, **kw}
        )


def expect_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    body = response.json()
    assert set(body) == {"error"}, body
    assert fragment in body["error"], f"{fragment!r} not in {body['error']!r}"
