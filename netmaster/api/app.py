"""netmaster's HTTP API: Contiv's routes over the object and endpoint services.

Routes are generated from the object catalogue, one set per type, so the OpenAPI document at
``/docs`` lists every object with its request schema. Errors are JSON ``{"error": message}`` with a
4xx status for client mistakes and 5xx only for faults.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netmaster import __version__
from netmaster.aci.client import AciGwClient
from netmaster.aci.contracts import ExternalContractCheck
from netmaster.aci.controller import AciController, AciSettings
from netmaster.api.agent_inspect import add_agent_inspect_routes
from netmaster.api.agents import AgentRegistry, add_agent_routes
from netmaster.api.bgp_inspect import add_bgp_inspect_route
from netmaster.api.direct_routes import DirectRoutes, DirectRoutesMiddleware
from netmaster.api.kubernetes import add_kubernetes_routes
from netmaster.api.metrics import ApiMetrics
from netmaster.api.watch import FLUSH_INTERVAL, RING_EVENTS, WATCHER_BUFFER, WatchHub, add_watch_routes
from netmaster.backup.state import export_state
from netmaster.errors import ApiError, InvalidError, PayloadTooLargeError
from netmaster.ha.cluster import ClusterNode
from netmaster.ha.endpoint_gc import DEFAULT_GRACE, EndpointCollector
from netmaster.ha.leader import DEFAULT_TTL
from netmaster.kubernetes.service import KubernetesService
from netmaster.model.catalog import OBJECT_TYPES, ObjectType
from netmaster.objects.endpoints import EndpointService, ReservationService
from netmaster.objects.service import ObjectService
from netmaster.store.base import Store, StoreError
from netmaster.store.cache import STALENESS, CachedStore
from netmaster.store.etcd_options import redact_url
from netmaster.store.txn import KeyedLocks

log = logging.getLogger("netmaster.api")

MAX_BODY = 1 << 20  # 1 MiB: no Contiv object comes near it
REVISION_HEADER = "X-Revision"
MIN_REVISION_HEADER = b"x-min-revision"  # ASGI header names are lower-case bytes


@dataclass
class ApiSettings:
    infra: str | None = None
    fwd_mode: str | None = None
    cluster_mode: str = "docker"
    token: str | None = None
    listen_url: str = ""
    store_url: str = ""
    aci: AciSettings = field(default_factory=AciSettings)
    leader_ttl: float = DEFAULT_TTL
    endpoint_gc_grace: float = DEFAULT_GRACE  # seconds; 0 disables endpoint garbage collection
    # Answer refusals Contiv's way (HTTP 500, the reason as plain text): Contiv's netctl prints the
    # body only on a 500, so with this its users see why; clients that read bodies see it anyway.
    compat_errors: bool = False
    watch_buffer: int = WATCHER_BUFFER  # bytes a watcher may fall behind before it is cut off (410)
    watch_history: int = RING_EVENTS  # recent events kept for resuming watchers
    watch_flush: float = FLUSH_INTERVAL  # seconds a watch stream's lines may wait to share a write
    agent_span: str = "tenant"  # the grain of an agent's span: "tenant" or "network" (netmaster.api.span)
    read_staleness: float = STALENESS  # seconds another netmaster's write may take to show in reads


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def contiv_error(message: str) -> PlainTextResponse:
    """A refusal as Contiv's netmaster sent every error: status 500, the message as the body."""
    return PlainTextResponse(message, status_code=500)


async def read_json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLargeError(f"request body larger than {MAX_BODY} bytes")
    if not body.strip():
        raise InvalidError("request body is empty: expected a JSON object")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidError(f"invalid JSON: {str(exc)[:200]}") from None


def create_app(store: Store, settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    aci_client = AciGwClient(settings.aci.gw_url, settings.aci.gw_token)
    # One watch-fed copy of the state per netmaster: every API read and every transaction's reads
    # come from it (netmaster.store.cache); the leader election and the collector use the store.
    raw_store, store = store, CachedStore(store, staleness=settings.read_staleness)
    objects = ObjectService(
        store, cluster_mode=settings.cluster_mode, check_contracts=ExternalContractCheck(aci_client)
    )
    pools = KeyedLocks()  # endpoint and reservation allocations of this process queue per network
    endpoints = EndpointService(store, pools)
    metrics = ApiMetrics()
    aci = AciController(store, objects, aci_client, settings.aci)
    # Every netmaster serves the API; only the leader runs the background reconcilers.
    node = ClusterNode(raw_store, url=settings.listen_url, leader_ttl=settings.leader_ttl)

    async def run_aci_while_leading() -> None:
        await aci.start()
        try:
            await asyncio.Event().wait()
        finally:
            await aci.stop()

    node.add_leader_task("aci", run_aci_while_leading)
    if settings.endpoint_gc_grace > 0:
        collector = EndpointCollector(raw_store, grace=settings.endpoint_gc_grace, registry=metrics.registry)
        node.add_leader_task("endpoint-gc", collector.run)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.start()
        await objects.ensure_defaults(infra=settings.infra, fwd_mode=settings.fwd_mode)
        await endpoints.index_macs()  # endpoints from before the MAC index (an upgrade, an old backup)
        await node.start()
        try:
            yield
        finally:
            await node.stop()
            await aci.stop()
            await aci_client.close()
            await store.stop()

    app = FastAPI(
        title="netmaster",
        version=__version__,
        description="Contiv-compatible policy networking API (tenants, networks, groups, policies, ...)",
        lifespan=lifespan,
    )
    app.state.objects = objects
    app.state.endpoints = endpoints
    app.state.aci = aci
    app.state.store = store

    def refuse(status: int, message: str) -> Response:
        if settings.compat_errors and 400 <= status < 500:
            return contiv_error(message)
        return error(status, message)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return refuse(exc.status, exc.message)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        # Services map the store's errors where they can; a read that reaches the store directly
        # must still answer 503 (the store is away), not a 500 (netmaster is broken).
        return error(503, f"state store unavailable: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return refuse(400, f"invalid request: {where}: {first.get('msg', 'invalid')}")

    direct = DirectRoutes()  # the object routes, also answered past the router (netmaster.api.direct_routes)
    app.add_middleware(DirectRoutesMiddleware, table=direct, routes=app.router.routes,
                       handlers=app.exception_handlers)
    app.add_middleware(MinRevisionMiddleware, cache=store)
    app.add_middleware(GuardMiddleware, token=settings.token, metrics=metrics)  # outermost: token first

    registry = AgentRegistry(raw_store)
    # The routes agents and runtimes call most come first: the router tries routes in order, and
    # with every object kind's routes ahead of them that scan was a few per cent of a busy netmaster.
    hub = WatchHub(store, ring=settings.watch_history, buffer=settings.watch_buffer,
                   network_grain=settings.agent_span == "network", flush=settings.watch_flush)
    metrics.track_watchers(hub)
    add_watch_routes(app, store, hub)
    _add_endpoint_routes(app, endpoints, store, direct)
    _add_reservation_routes(app, ReservationService(store, pools=pools), store, direct)
    add_agent_routes(app, registry, read_json)
    add_bgp_inspect_route(app, objects, registry, settings.token)  # before the generic inspect route
    for otype in OBJECT_TYPES:
        _add_object_routes(app, objects, otype, direct)
    add_agent_inspect_routes(app, registry, settings.token)
    add_kubernetes_routes(app, KubernetesService(store), store, read_json)

    @app.get("/version", tags=["daemon"])
    async def version() -> dict[str, Any]:
        # Contiv's keys (Version, GitCommit, BuildTime) next to ours, so its clients read it too.
        return {
            "version": __version__,
            "apiVersion": "v1",
            "program": "netmaster",
            "Version": __version__,
            "GitCommit": os.environ.get("CONTIV_GIT_COMMIT", "unknown"),
            "BuildTime": os.environ.get("CONTIV_BUILD_TIME", "unknown"),
        }

    @app.get("/info", tags=["daemon"])
    async def info() -> dict[str, Any]:
        return {
            "version": __version__,
            "local-url": settings.listen_url,
            "cluster-store": redact_url(settings.store_url),
            "cluster-mode": settings.cluster_mode,
            **await node.info(),  # current-state, leader, netmaster-nodes, netplugin-nodes
        }

    @app.get("/api/v1/export", tags=["daemon"])
    async def export() -> JSONResponse:
        # The document of ``netmaster export`` (netmaster.backup.state), for ``netctl export``; the bearer
        # token guards it like every route. Import has no route: it needs a store no netmaster uses.
        await store.fresh()
        return JSONResponse(await export_state(store, source=redact_url(settings.store_url)))

    @app.get("/healthz", tags=["daemon"])
    async def healthz() -> JSONResponse:
        try:
            revision = await store.revision()
        except Exception as exc:  # report, do not crash, whatever the backend raised
            return error(503, f"state store unavailable: {exc}")
        return JSONResponse({"status": "ok", "revision": revision})

    @app.get("/metrics", tags=["daemon"], include_in_schema=False)
    async def prometheus() -> Response:
        return metrics.response()

    return app


class GuardMiddleware:
    """Token check, metrics and the last-resort 500, as plain ASGI (no per-request task overhead)."""

    OPEN_PATHS = frozenset({"/healthz", "/metrics"})

    def __init__(self, app: ASGIApp, token: str | None, metrics: ApiMetrics) -> None:
        self.app = app
        self.token = token
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token and scope["path"] not in self.OPEN_PATHS and not _authorised(scope, self.token):
            await error(401, "missing or invalid bearer token")(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:  # a fault, never the client's: log it, answer 500 without internals
            log.exception("request failed", extra={"method": scope["method"], "path": scope["path"]})
            if not response_started:
                await error(500, "internal error; see netmaster's log")(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(scope["method"], route, status, started)


class MinRevisionMiddleware:
    """``X-Min-Revision: R`` on a read: answer once this netmaster's copy holds revision R.

    Read-your-writes across netmasters: a client that wrote through one netmaster (whose answer
    carried ``X-Revision: R``) and reads through another names R, and the read waits until the copy
    has it (503 if that takes longer than the cache's wait limit), instead of relying on the
    ``--read-staleness`` window.
    """

    def __init__(self, app: ASGIApp, cache: CachedStore) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            raw = next((v for k, v in scope["headers"] if k == MIN_REVISION_HEADER), None)
            if raw is not None:
                if not raw.isdigit() or len(raw) > 18:
                    await error(400, "X-Min-Revision must be a revision number")(scope, receive, send)
                    return
                try:
                    await self.cache.wait_for(int(raw))
                except StoreError as exc:
                    await error(503, str(exc))(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _authorised(scope: Scope, token: str) -> bool:
    header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)


def _json(body: Any, revision: int | None = None) -> JSONResponse:
    headers = {REVISION_HEADER: str(revision)} if revision is not None else None
    return JSONResponse(body, headers=headers)


def _add_object_routes(app: FastAPI, objects: ObjectService, otype: ObjectType, direct: DirectRoutes) -> None:
    kind = otype.kind
    base = f"/api/v1/{otype.plural}/"
    body_doc = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": otype.request_schema()}},
        }
    }
    tags = [kind]

    async def list_objects() -> Response:
        body, revision = await objects.list_encoded(kind)
        return Response(body, media_type="application/json", headers={REVISION_HEADER: str(revision)})

    async def get_object(key: str) -> Response:
        return Response(await objects.get_encoded(kind, key), media_type="application/json")

    async def put_object(key: str, request: Request) -> JSONResponse:
        obj, revision = await objects.apply(kind, key, await read_json(request))
        return _json(obj, revision)

    async def delete_object(key: str) -> JSONResponse:
        revision = await objects.delete(kind, key)
        return _json(key, revision)

    async def inspect_object(key: str) -> JSONResponse:
        return _json(await objects.inspect(kind, key))

    item = base + "{key}"
    routes: list[Route] = [
        (base.rstrip("/"), list_objects, "GET", f"list {otype.plural}", None),
        (item, get_object, "GET", f"get {kind}", None),
        (item, put_object, ["POST", "PUT"], f"create or update {kind}", body_doc),
        (item, delete_object, "DELETE", f"delete {kind}", None),
        (f"/api/v1/inspect/{otype.plural}/{{key}}", inspect_object, "GET", f"inspect {kind}", None),
    ]
    _add_routes(app, tags, routes, direct)


ENDPOINT_SCHEMA = {
    "type": "object",
    "required": ["endpointID", "networkName"],
    "additionalProperties": False,
    "properties": {
        **{
            f: {"type": "string", "maxLength": 256}
            for f in (
                "endpointID",
                "tenantName",
                "networkName",
                "groupName",
                "containerID",
                "containerName",
                "host",
                "ipAddress",
                "intfName",
                "portName",
                "vtepIP",
            )
        },
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


ENDPOINT_LABELS_SCHEMA = {
    "type": "object",
    "required": ["host", "labels"],
    "additionalProperties": False,
    "properties": {
        "host": {"type": "string", "maxLength": 256},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 256}},
    },
}


RESERVATION_SCHEMA = {
    "type": "object",
    "required": ["networkName"],
    "additionalProperties": False,
    "properties": {
        f: {"type": "string", "maxLength": 256} for f in ("tenantName", "networkName", "ipAddress", "owner")
    },
}


def _add_reservation_routes(app: FastAPI, reservations: ReservationService, cache: CachedStore,
                            direct: DirectRoutes) -> None:
    """Address reservations (Docker IPAM asks for an address before the endpoint exists)."""

    async def list_reservations() -> JSONResponse:
        await cache.fresh()
        items, revision = await reservations.list()
        return _json(items, revision)

    async def create_reservation(request: Request) -> JSONResponse:
        record, revision = await reservations.create(await read_json(request))
        return _json(record, revision)

    async def delete_reservation(reservation_id: str) -> JSONResponse:
        deleted, revision = await reservations.delete(reservation_id)
        return _json({"reservationID": reservation_id, "deleted": deleted}, revision)

    body_doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": RESERVATION_SCHEMA}}}}
    base = "/api/v1/addressReservations"
    _add_routes(
        app,
        ["endpoint"],
        [
            (base, list_reservations, "GET", "list address reservations", None),
            (base, create_reservation, "POST", "reserve address", body_doc),
            (base + "/{reservation_id}", delete_reservation, "DELETE", "release address", None),
        ],
        direct,
    )


def _add_endpoint_routes(app: FastAPI, endpoints: EndpointService, cache: CachedStore, direct: DirectRoutes) -> None:
    # The service reads through the cache; a read first brings it up to every committed write.
    async def list_endpoints() -> JSONResponse:
        await cache.fresh()
        items, revision = await endpoints.list()
        return _json(items, revision)

    async def create_endpoint(request: Request) -> JSONResponse:
        record, revision = await endpoints.create(await read_json(request))
        return _json(record, revision)

    async def get_endpoint(endpoint_id: str) -> JSONResponse:
        await cache.fresh()
        return _json(await endpoints.get(endpoint_id))

    async def delete_endpoint(endpoint_id: str) -> JSONResponse:
        deleted, revision = await endpoints.delete(endpoint_id)
        return _json({"endpointID": endpoint_id, "deleted": deleted}, revision)

    async def inspect_endpoint(endpoint_id: str) -> JSONResponse:
        # a path parameter: a pod's container name is "namespace/name" (its "/" arrives decoded)
        await cache.fresh()
        return _json(await endpoints.inspect(endpoint_id.rstrip("/")))

    async def put_endpoint_labels(endpoint_id: str, request: Request) -> JSONResponse:
        record, revision = await endpoints.set_labels(endpoint_id, await read_json(request))
        return _json(record, revision)

    body_doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": ENDPOINT_SCHEMA}}}}
    labels_doc = {"requestBody": {"required": True,
                                  "content": {"application/json": {"schema": ENDPOINT_LABELS_SCHEMA}}}}
    _add_routes(
        app,
        ["endpoint"],
        [
            ("/api/v1/endpoints", list_endpoints, "GET", "list endpoints", None),
            ("/api/v1/endpoints/{endpoint_id}/labels", put_endpoint_labels, "PUT", "set endpoint labels",
             labels_doc),
            ("/api/v1/endpoints", create_endpoint, "POST", "create endpoint", body_doc),
            ("/api/v1/endpoints/{endpoint_id}", get_endpoint, "GET", "get endpoint", None),
            ("/api/v1/endpoints/{endpoint_id}", delete_endpoint, "DELETE", "delete endpoint", None),
            ("/api/v1/inspect/endpoints/{endpoint_id:path}", inspect_endpoint, "GET", "inspect endpoint", None),
        ],
        direct,
    )


Route = tuple[str, Callable[..., Awaitable[Any]], str | list[str], str, dict[str, Any] | None]


def _add_routes(app: FastAPI, tags: list[str], routes: list[Route], direct: DirectRoutes) -> None:
    """Register each route with and without the trailing slash (Contiv's form is the documented one),
    and with the layer that answers routes of its shapes past the router (netmaster.api.direct_routes)."""
    for path, endpoint, methods, name, extra in routes:
        method_list = [methods] if isinstance(methods, str) else methods
        for suffix in ("", "/"):
            app.add_api_route(
                path + suffix,
                endpoint,
                methods=method_list,
                tags=tags,
                openapi_extra=extra,
                include_in_schema=suffix == "/",
                name=name + suffix,
            )
        direct.add(method_list, endpoint, path)
