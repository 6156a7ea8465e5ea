"""HTTP layer: Contiv's aci-gw API, the read API, /healthz and /metrics.

Contiv compatibility: the four POST endpoints answer HTTP 200 with ``{"result", "info"}`` whatever
the outcome (netmaster reads ``result``), and a body that is not JSON is a result, not a 4xx. The read
API is plain REST (404 for a missing tenant, 503 when the APIC cannot be read); ``/api/v1/drift`` is the
drift watch's state and repairs. When a token is configured, every endpoint but /healthz and /metrics
needs ``Authorization: Bearer <token>``. ``/createAppProf`` and ``/deleteAppProf`` take an optional
``X-Contiv-Fencing-Token`` header (:mod:`aci_gw.fencing`).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from aci_gw import fencing, inventory
from aci_gw.apic import ApicError
from aci_gw.gateway import Gateway

log = logging.getLogger("aci_gw")


def create_app(gateway: Gateway, token: str | None = None) -> FastAPI:
    app = FastAPI(title="aci-gw", description="Contiv-compatible Cisco ACI gateway", version="1.2")

    def authorized(request: Request) -> bool:
        if not token:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)

    async def contiv_call(request: Request, operation: Callable[..., dict[str, Any]], fenced: bool = False
                          ) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"result": "ERROR", "info": "missing or wrong bearer token"}, status_code=401)
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"result": "invalid-args", "info": "request body is not valid JSON"})
        args: tuple[Any, ...] = (body,)
        if fenced:
            header = request.headers.get(fencing.HEADER)
            try:
                args = (body, fencing.parse_token(header))
            except ValueError:
                return JSONResponse({"result": "invalid-args",
                                     "info": f"{fencing.HEADER}: {header!r} is not a non-negative integer"})
        try:
            return JSONResponse(await run_in_threadpool(operation, *args))
        except Exception as exc:  # a bug must still answer in Contiv's shape, and be logged in full
            log.exception("%s failed", request.url.path)
            return JSONResponse({"result": "ERROR", "info": f"internal error: {type(exc).__name__}: {exc}"})

    @app.post("/validateAppProf")
    async def validate_app_prof(request: Request) -> JSONResponse:
        return await contiv_call(request, gateway.validate)

    @app.post("/createAppProf")
    async def create_app_prof(request: Request) -> JSONResponse:
        return await contiv_call(request, gateway.create, fenced=True)

    @app.post("/deleteAppProf")
    async def delete_app_prof(request: Request) -> JSONResponse:
        return await contiv_call(request, gateway.delete, fenced=True)

    @app.post("/getEndpoint")
    async def get_endpoint(request: Request) -> JSONResponse:
        return await contiv_call(request, gateway.endpoint)

    async def read_call(request: Request, fn: Callable[[], Any]) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        if gateway.client is None:
            return JSONResponse({"error": "dry-run mode (APIC_URL=SANITY): no APIC to read"}, status_code=503)
        try:
            found = await run_in_threadpool(fn)
        except ApicError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        if found is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(found)

    @app.get("/api/v1/tenants")
    @app.get("/api/v1/tenants/")
    async def tenants(request: Request) -> JSONResponse:
        return await read_call(request, lambda: inventory.list_tenants(gateway.apic))

    @app.get("/api/v1/tenants/{tenant}")
    @app.get("/api/v1/tenants/{tenant}/")
    async def tenant(request: Request, tenant: str) -> JSONResponse:
        return await read_call(request, lambda: inventory.get_tenant(gateway.apic, tenant))

    @app.get("/api/v1/tenants/{tenant}/{section}")
    async def tenant_section(request: Request, tenant: str, section: str) -> JSONResponse:
        if section not in inventory.TENANT_SECTIONS:
            return JSONResponse(
                {"error": f"unknown section {section!r}; one of {', '.join(inventory.TENANT_SECTIONS)}"},
                status_code=404,
            )

        def pick() -> Any:
            view = inventory.get_tenant(gateway.apic, tenant)
            return None if view is None else view[section]

        return await read_call(request, pick)

    @app.get("/api/v1/contracts")
    @app.get("/api/v1/contracts/")
    async def contracts(request: Request) -> JSONResponse:
        return await read_call(request, lambda: inventory.list_contracts(gateway.apic))

    @app.get("/api/v1/drift")
    @app.get("/api/v1/drift/")
    async def drift(request: Request) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        return JSONResponse(gateway.drift_status())

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        ok, info = await run_in_threadpool(gateway.health)
        return JSONResponse(info, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(gateway.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
