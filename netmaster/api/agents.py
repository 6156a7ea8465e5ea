"""Agent records: which hosts run an agent, and where their VXLAN tunnels end.

Each agent announces itself with ``PUT /api/v1/agents/<hostLabel>/`` (host label, VTEP address,
control address, version, and the URL of its inspect API if it serves one on TCP) and repeats it as
a heartbeat. ``conflicts`` lists the host's running endpoints it could not re-claim after netmaster's
endpoint GC had collected them (their address went to another endpoint meanwhile; see the agent's
``agent.reclaim``): stored with the record, so ``GET /api/v1/agents/`` shows them. The record lives
under ``/contiv/agents/<host>`` on a store lease, so it disappears by itself when an agent stops
heartbeating, and every agent learns the peers' VTEPs from the same watch stream as the rest of the
state.

A heartbeat that changes nothing only renews the lease: no write, no revision, no watch event, so N
agents heartbeating do not make every agent process N events every few seconds. The lease id is read
back from the stored key, so any netmaster of a cluster can renew a record another one wrote.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlparse

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from netmaster.errors import InvalidError, NotFoundError, UnavailableError
from netmaster.store import keys
from netmaster.store.base import LeaseNotFoundError, Store, StoreError

HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
DEFAULT_TTL = 15
MIN_TTL, MAX_TTL = 3, 300
_FIELDS = ("vtepIP", "ctrlIP", "version", "inspectURL")
_CONFLICT_FIELDS = ("endpointID", "ipAddress", "network", "reason")
MAX_CONFLICTS = 1000
MAX_BGP_NEIGHBORS = 16
_SESSION_STATES = ("unknown", "idle", "connect", "active", "opensent", "openconfirm", "established")

AGENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vtepIP": {"type": "string", "description": "VXLAN tunnel source address ('' if none)"},
        "ctrlIP": {"type": "string", "description": "control address of the host"},
        "version": {"type": "string"},
        "inspectURL": {"type": "string", "description": "http://HOST:PORT of the agent's inspect API ('' if none)"},
        "ttl": {"type": "integer", "minimum": MIN_TTL, "maximum": MAX_TTL,
                "description": "seconds the record outlives the last heartbeat"},
        "conflicts": {"type": "array", "maxItems": MAX_CONFLICTS,
                      "description": "running endpoints of the host whose address went to another endpoint "
                                     "while the host was cut off (kept running, not re-claimed)",
                      "items": {"type": "object", "additionalProperties": False,
                                "properties": {f: {"type": "string"} for f in _CONFLICT_FIELDS}}},
        "bgp": {"type": "object", "maxProperties": MAX_BGP_NEIGHBORS,
                "description": "L3 mode: the host's BGP neighbours and their session states (docs/bgp.md)",
                "additionalProperties": {"type": "string", "enum": list(_SESSION_STATES)}},
    },
    "additionalProperties": False,
}


def parse_record(host: str, body: Any) -> dict[str, Any]:
    """Validate a heartbeat and return the record to store (stable for an unchanged agent)."""
    if not HOST_RE.fullmatch(host):
        raise InvalidError("hostLabel invalid format")
    if not isinstance(body, dict):
        raise InvalidError("agent: request body must be a JSON object")
    unknown = sorted(set(body) - set(_FIELDS) - {"ttl", "conflicts", "bgp"})
    if unknown:
        raise InvalidError(f"agent: unknown field(s): {', '.join(unknown)}")
    record: dict[str, Any] = {"hostLabel": host}
    for name in _FIELDS:
        value = body.get(name, "")
        if not isinstance(value, str) or len(value) > 64:
            raise InvalidError(f"{name} must be a string of at most 64 characters")
        record[name] = value
    for name in ("vtepIP", "ctrlIP"):
        if record[name]:
            try:
                ipaddress.IPv4Address(record[name])
            except ValueError:
                raise InvalidError(f"{name}: invalid IPv4 address {record[name]!r}") from None
    if record["inspectURL"]:
        url = urlparse(record["inspectURL"])
        try:
            port = url.port
        except ValueError:
            port = None
        if url.scheme != "http" or not url.hostname or port is None or url.path not in ("", "/"):
            raise InvalidError(f"inspectURL: expected http://HOST:PORT, got {record['inspectURL']!r}")
    ttl = body.get("ttl", DEFAULT_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidError(f"ttl must be an integer from {MIN_TTL} to {MAX_TTL}")
    record["ttl"] = ttl
    conflicts = _conflicts(body.get("conflicts", []))
    if conflicts:
        record["conflicts"] = conflicts
    if "bgp" in body:
        record["bgp"] = _bgp(body["bgp"])
    return record


def _bgp(value: Any) -> dict[str, str]:
    """Neighbour address -> session state (only states change the record: it is rewritten, and sent to
    every agent, when a session changes, not on every heartbeat)."""
    if not isinstance(value, dict) or len(value) > MAX_BGP_NEIGHBORS:
        raise InvalidError(f"bgp must be an object of at most {MAX_BGP_NEIGHBORS} neighbours")
    for address, state in value.items():
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise InvalidError(f"bgp: invalid neighbour address {address!r}") from None
        if state not in _SESSION_STATES:
            raise InvalidError(f"bgp: neighbour {address}: state must be one of {', '.join(_SESSION_STATES)}")
    return dict(sorted(value.items()))


def _conflicts(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > MAX_CONFLICTS:
        raise InvalidError(f"conflicts must be a list of at most {MAX_CONFLICTS} objects")
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) - set(_CONFLICT_FIELDS) or not all(
                isinstance(item.get(f, ""), str) and len(item.get(f, "")) <= 256 for f in _CONFLICT_FIELDS):
            raise InvalidError(f"conflicts: each entry is an object of strings ({', '.join(_CONFLICT_FIELDS)})")
        out.append({f: item.get(f, "") for f in _CONFLICT_FIELDS})
    return out


class AgentRegistry:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def heartbeat(self, host: str, body: Any) -> dict[str, Any]:
        record = parse_record(host, body)
        key = keys.agent(host)
        value = json.dumps(record, sort_keys=True)
        try:
            current = await self.store.get(key)
            if current is not None and current.lease and current.value == value:
                try:
                    await self.store.lease_keepalive(current.lease)
                    return record
                except LeaseNotFoundError:
                    pass  # expired between the read and the renewal: write it again
            lease = await self.store.lease_grant(record["ttl"])
            await self.store.put(key, value, lease=lease)
        except StoreError as exc:
            raise UnavailableError(f"state store unavailable: {exc}") from exc
        return record

    async def delete(self, host: str) -> bool:
        """An agent shutting down withdraws its record at once instead of waiting for the TTL."""
        if not HOST_RE.fullmatch(host):
            raise InvalidError("hostLabel invalid format")
        try:
            current = await self.store.get(keys.agent(host))
            if current is None:
                return False
            await self.store.delete(keys.agent(host))
        except StoreError as exc:
            raise UnavailableError(f"state store unavailable: {exc}") from exc
        return True

    async def list(self) -> list[dict[str, Any]]:
        try:
            kvs, _ = await self.store.list(keys.agent())
        except StoreError as exc:
            raise UnavailableError(f"state store unavailable: {exc}") from exc
        return [json.loads(kv.value) for kv in kvs]

    async def get(self, host: str) -> dict[str, Any]:
        for record in await self.list():
            if record["hostLabel"] == host:
                return record
        raise NotFoundError(f"agent {host} not found")


def add_agent_routes(app: FastAPI, registry: AgentRegistry, read_json: Any) -> None:
    """``/api/v1/agents/``: list; ``/api/v1/agents/<host>/``: PUT (heartbeat), GET, DELETE."""
    tags = ["agent"]
    body_doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": AGENT_SCHEMA}}}}

    @app.get("/api/v1/agents/", tags=tags)
    async def list_agents() -> JSONResponse:
        return JSONResponse(await registry.list())

    @app.put("/api/v1/agents/{host}/", tags=tags, openapi_extra=body_doc)
    async def put_agent(host: str, request: Request) -> JSONResponse:
        return JSONResponse(await registry.heartbeat(host, await read_json(request)))

    @app.get("/api/v1/agents/{host}/", tags=tags)
    async def get_agent(host: str) -> JSONResponse:
        return JSONResponse(await registry.get(host))

    @app.delete("/api/v1/agents/{host}/", tags=tags)
    async def delete_agent(host: str) -> JSONResponse:
        return JSONResponse({"hostLabel": host, "deleted": await registry.delete(host)})
