"""netmaster's client of aci-gw: Contiv's push API and the gateway's read API.

One asynchronous HTTP client for the reconciler, the tenant importer and the external-contract check,
so they share connections and the token. Failures are split the way callers act on them: the gateway
answered but refused (:class:`GatewayResult` with ``ok`` false, the gateway's or the APIC's own
words), or it could not be asked at all (:class:`GatewayUnavailable`: down, timeout, 5xx, token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:5000"
#: The fencing token header (aci_gw.fencing.HEADER; netmaster does not import the gateway).
FENCING_HEADER = "X-Contiv-Fencing-Token"


class GatewayUnavailable(Exception):
    """aci-gw could not be asked (connection refused, timeout, HTTP error); ``str()`` says which."""


@dataclass(frozen=True)
class GatewayResult:
    """Contiv's ``{"result", "info"}`` reply; anything but ``success`` is a refusal."""

    result: str
    info: str

    @property
    def ok(self) -> bool:
        return self.result == "success"

    @property
    def reason(self) -> str:
        return f"{self.result}: {self.info}"


class AciGwClient:
    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # A push can take the gateway's own APIC retries (tens of seconds with an APIC in trouble), so the
        # read timeout is generous; connecting is quick or not at all.
        self.http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=5.0))

    async def close(self) -> None:
        await self.http.aclose()

    async def _request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                       ) -> httpx.Response:
        try:
            response = await self.http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"aci-gw at {self.url} unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 401:
            raise GatewayUnavailable(f"aci-gw at {self.url} refused the token (set --aci-gw-token)")
        return response

    async def _contiv_call(self, path: str, body: dict[str, Any], fencing_token: int | None = None) -> GatewayResult:
        headers = {FENCING_HEADER: str(fencing_token)} if fencing_token is not None else None
        response = await self._request("POST", path, body, headers)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict) or "result" not in data:
            raise GatewayUnavailable(f"aci-gw {path} answered HTTP {response.status_code}: {response.text[:300]}")
        return GatewayResult(str(data["result"]), str(data.get("info", "")))

    async def create_app_profile(self, payload: dict[str, Any], fencing_token: int | None = None) -> GatewayResult:
        """Push; ``fencing_token`` (the leader's, growing from one leader to the next) lets the gateway
        refuse a stale leader's push."""
        return await self._contiv_call("/createAppProf", payload, fencing_token)

    async def delete_app_profile(self, payload: dict[str, Any], fencing_token: int | None = None) -> GatewayResult:
        return await self._contiv_call("/deleteAppProf", payload, fencing_token)

    async def _read(self, path: str) -> Any:
        response = await self._request("GET", path)
        if response.status_code != 200:
            try:
                detail = response.json().get("error", response.text)
            except (ValueError, AttributeError):
                detail = response.text
            raise GatewayUnavailable(f"aci-gw {path} answered HTTP {response.status_code}: {str(detail)[:300]}")
        return response.json()

    async def tenants(self) -> list[dict[str, Any]]:
        """Every APIC tenant with its VRFs, bridge domains and app profiles (aci-gw's read view)."""
        return list(await self._read("/api/v1/tenants"))

    async def drift(self) -> dict[str, Any]:
        """The gateway's drift watch: ``startedAt``, ``watch``, and per app profile ``repairs``,
        ``driftRepairedAt``, ``driftDetectedAt``, ``lastDrift``."""
        return dict(await self._read("/api/v1/drift"))

    async def contracts(self) -> list[dict[str, Any]]:
        """Every contract in the fabric, with its DN."""
        return list(await self._read("/api/v1/contracts"))
