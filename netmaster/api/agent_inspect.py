"""``GET /api/v1/inspect/agents/<host>/driver`` and ``.../endpoint/<id>``: an agent's datapath, via netmaster.

An agent started with ``--inspect-listen`` serves its read-only inspect API on TCP and publishes the
URL in its agent record (``inspectURL``). netmaster forwards these two reads to it, so ``netctl agent
inspect --host h1`` needs nothing but netmaster's address and token. The agent wants the same bearer
token netmaster is configured with; netmaster sends it. Only the two fixed paths are forwarded, to
the URL the agent published, and answers are passed through with their status (an unknown endpoint
stays a 404). An agent without a published URL is a 404 that says how to fix it; one that does not
answer is a 502.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from netmaster.api.agents import AgentRegistry
from netmaster.errors import ApiError, NotFoundError

PROXY_TIMEOUT = 10.0


class AgentUnreachableError(ApiError):
    status = 502


async def _forward(registry: AgentRegistry, host: str, path: str, params: dict[str, str],
                   token: str | None) -> JSONResponse:
    status, body = await agent_get(registry, host, path, params, token)
    return JSONResponse(body, status_code=status)


async def agent_get(registry: AgentRegistry, host: str, path: str, params: dict[str, str],
                    token: str | None) -> tuple[int, Any]:
    """GET *path* of *host*'s published inspect API: (status, JSON body). NotFoundError without an
    agent record or a published URL, AgentUnreachableError when it does not answer with JSON."""
    record = await registry.get(host)
    base = record.get("inspectURL") or ""
    if not base:
        raise NotFoundError(f"agent {host} does not publish an inspect API (start it with --inspect-listen)")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=PROXY_TIMEOUT) as client:
            resp = await client.get(base.rstrip("/") + path, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise AgentUnreachableError(f"agent {host} inspect API at {base} unreachable: "
                                    f"{type(exc).__name__}: {exc}") from exc
    try:
        body: Any = resp.json()
    except ValueError:
        raise AgentUnreachableError(f"agent {host} at {base} answered {resp.status_code} without JSON") from None
    return resp.status_code, body


def add_agent_inspect_routes(app: FastAPI, registry: AgentRegistry, token: str | None) -> None:
    tags = ["agent"]

    async def driver(host: str, request: Request) -> JSONResponse:
        params = {k: v for k in ("flows", "rules") if (v := request.query_params.get(k, ""))}
        return await _forward(registry, host, "/inspect/driver", params, token)

    async def endpoint(host: str, endpoint_id: str) -> JSONResponse:
        return await _forward(registry, host, f"/inspect/endpoint/{quote(endpoint_id, safe='')}", {}, token)

    for suffix in ("", "/"):
        app.add_api_route("/api/v1/inspect/agents/{host}/driver" + suffix, driver, methods=["GET"], tags=tags,
                          include_in_schema=suffix == "/", name="inspect agent datapath" + suffix)
        app.add_api_route("/api/v1/inspect/agents/{host}/endpoint/{endpoint_id}" + suffix, endpoint,
                          methods=["GET"], tags=tags, include_in_schema=suffix == "/",
                          name="inspect endpoint on its agent" + suffix)
