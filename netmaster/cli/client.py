"""The one place netctl talks HTTP to netmaster.

Every command goes through :class:`NetctlClient`, so URL shapes (Contiv's
``/api/v1/<plural>/<key>/`` with its trailing slash), authentication, TLS options and the mapping of
failures to exit codes are decided once. Errors never escape as library exceptions: a non-2xx answer
becomes :class:`RestError` (exit 3) and an unreachable server :class:`ConnectionFailed` (exit 1).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from netmaster.cli.errors import EXIT_HELP, ConnectionFailed, NetctlError, RestError

DEFAULT_NETMASTER = "http://127.0.0.1:9999"
API_PREFIX = "/api/v1"


def normalize_base_url(url: str) -> str:
    """Accept ``host:port`` as well as a full URL, because Contiv users typed both."""
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    return url.rstrip("/")


def object_path(plural: str, key: str | None = None, *, inspect: bool = False) -> str:
    """Build Contiv's route for a collection or one object.

    Keys are percent-quoted except ``:`` (the key separator), so odd endpoint ids cannot break the
    path while ``tenant:name`` stays readable in logs.
    """
    parts = [API_PREFIX]
    if inspect:
        parts.append("inspect")
    parts.append(plural)
    if key is not None:
        parts.append(quote(key, safe=":@"))
    return "/".join(parts) + "/"


def _error_message(response: httpx.Response) -> str:
    """Extract netmaster's ``{"error": ...}``; fall back to the raw body for other servers.

    Contiv itself answered errors with plain text and status 500, so a text body must still produce a
    useful message rather than a JSON decoding failure.
    """
    text = response.text.strip()
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        body = None
    if isinstance(body, dict):
        for field in ("error", "message", "detail"):
            if body.get(field):
                value = body[field]
                return value if isinstance(value, str) else json.dumps(value)
    if text:
        return text
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


class NetctlClient:
    """netctl's synchronous client for netmaster's Contiv-compatible REST API.

    The asynchronous client that agents and other daemons use to follow netmaster's state and manage
    endpoints is :class:`contiv_api.netmaster_client.NetmasterClient`: one name per role.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_NETMASTER,
        *,
        token: str | None = None,
        insecure: bool = False,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        peer: str = "netmaster",
        display_url: str | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.peer = peer  # what error messages call the server (netctl also talks to agents)
        self.display_url = display_url or self.base_url  # e.g. unix:///path for a unix-socket transport
        headers = {"Accept": "application/json", "User-Agent": "netctl"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._http = httpx.Client(
                base_url=self.base_url,
                headers=headers,
                timeout=timeout,
                verify=not insecure,
                transport=transport,
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise NetctlError(f"invalid netmaster URL {base_url!r}: {exc}", EXIT_HELP) from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NetctlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request and return the decoded JSON answer (``None`` for an empty body)."""
        try:
            response = self._http.request(method, path, json=body)
        except httpx.InvalidURL as exc:
            raise NetctlError(f"invalid netmaster URL {self.base_url!r}: {exc}", EXIT_HELP) from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.display_url, str(exc) or type(exc).__name__, self.peer) from exc
        if not response.is_success:
            raise RestError(response.status_code, _error_message(response))
        if not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, ValueError) as exc:
            raise RestError(response.status_code, f"netmaster sent a response that is not JSON: {exc}") from exc

    # Object routes -----------------------------------------------------------------------------

    def list(self, plural: str) -> list[dict[str, Any]]:
        """List a collection; ``null`` (an empty Go slice in Contiv) reads as an empty list."""
        result = self.request("GET", object_path(plural))
        return list(result or [])

    def get(self, plural: str, key: str) -> dict[str, Any]:
        return self.request("GET", object_path(plural, key))

    def inspect(self, plural: str, key: str) -> dict[str, Any]:
        return self.request("GET", object_path(plural, key, inspect=True))

    def post(self, plural: str, key: str, body: dict[str, Any]) -> Any:
        """Create or update: Contiv treats POST on an existing key as an update."""
        return self.request("POST", object_path(plural, key), body)

    def delete(self, plural: str, key: str) -> Any:
        return self.request("DELETE", object_path(plural, key))

    # Daemon routes -----------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        return self.request("GET", "/version")

    def info(self) -> dict[str, Any]:
        return self.request("GET", "/info")
