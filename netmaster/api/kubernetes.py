"""Routes of Kubernetes objects: ``POST /api/v1/kubernetes/?tenant=T`` takes one manifest
(NetworkPolicy networking.k8s.io/v1, Namespace v1, Pod v1: only its metadata counts), as
``netctl apply -f`` and a Kubernetes adapter send them; ``GET``/``DELETE
/api/v1/kubernetes/{networkpolicies,namespaces,pods}/<tenant>:<namespace>[:<name>]/`` read and remove
them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from netmaster.kubernetes.service import KubernetesService
from netmaster.store.cache import CachedStore

REVISION_HEADER = "X-Revision"


def add_kubernetes_routes(app: FastAPI, service: KubernetesService, cache: CachedStore,
                          read_json: Callable[[Request], Awaitable[Any]]) -> None:
    async def apply(request: Request, tenant: str = Query("default", min_length=1, max_length=64)) -> JSONResponse:
        record, revision = await service.apply(await read_json(request), tenant)
        return JSONResponse(record, headers={REVISION_HEADER: str(revision)})

    async def list_objects(plural: str) -> JSONResponse:
        await cache.fresh()
        return JSONResponse(await service.list(plural))

    async def get_object(plural: str, key: str) -> JSONResponse:
        await cache.fresh()
        return JSONResponse(await service.get(plural, key))

    async def delete_object(plural: str, key: str) -> JSONResponse:
        revision = await service.delete(plural, key)
        return JSONResponse({"key": key, "deleted": True}, headers={REVISION_HEADER: str(revision)})

    for suffix in ("", "/"):
        app.add_api_route("/api/v1/kubernetes" + suffix, apply, methods=["POST"], tags=["kubernetes"],
                          include_in_schema=bool(suffix), name="apply kubernetes object" + suffix)
        app.add_api_route("/api/v1/kubernetes/{plural}" + suffix, list_objects, methods=["GET"],
                          tags=["kubernetes"], include_in_schema=bool(suffix), name="list kubernetes" + suffix)
        for method, fn in (("GET", get_object), ("DELETE", delete_object)):
            app.add_api_route("/api/v1/kubernetes/{plural}/{key}" + suffix, fn, methods=[method],
                              tags=["kubernetes"], include_in_schema=bool(suffix),
                              name=f"{method.lower()} kubernetes object{suffix}")
