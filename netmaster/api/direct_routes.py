"""Contiv's object routes answered without the web framework's per-request machinery.

Why: ``/api/v1/<plural>/<key>`` (get, create or update, delete), the lists and the inspects are what
clients call most, and FastAPI spent about 0.8 ms on each of them before the handler ran: Starlette's
router tries the pattern of every registered route in turn (about 250 here, every object kind's
routes with and without the trailing slash), then FastAPI solves the endpoint's dependencies and
runs it inside its exception middleware. A tenant create on etcd is about 4 ms in all, so that was a
fifth of it (docs/performance.md).

This layer sits in the ASGI stack in front of the router (inside the token check, the metrics and
``X-Min-Revision``). It finds the route by splitting the path and one dict lookup, and calls the
*same* endpoint function the FastAPI route has, with the path parameter the router would have
given it; what it raises is answered by the app's own exception handlers. So both ways answer
byte for byte the same, and the FastAPI routes stay registered: they make the OpenAPI document,
and they answer whatever this layer passes on (unknown paths, other methods, malformed keys).

Which routes it serves is not written down twice: :class:`DirectRoutes` is filled from the object
routes as they are registered, and at the first request each entry is checked against the router
itself (the first route that matches a sample path with that method must be the entry's route):
an entry that another route shadows (``/api/v1/inspect/Bgps/{key}`` has a route of its own,
registered earlier) is dropped and left to the router.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("netmaster.api")

Endpoint = Callable[..., Awaitable[Response]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]

LIST, ITEM, INSPECT = "list", "item", "inspect"
_SAMPLE_KEY = "k"  # a key to check the router's choice with


@dataclass(frozen=True)
class DirectRoute:
    """One route this layer answers: the endpoint and how the metrics name the route."""

    endpoint: Endpoint
    path: str  # the route's template, "/api/v1/tenants/{key}"
    takes_request: bool  # a create or update reads the body


@dataclass(frozen=True)
class RouteLabel:
    """What the metrics middleware reads of ``scope["route"]``: the template the request matched,
    with its trailing slash if it had one (both forms are routes of their own to the router)."""

    path: str


class DirectRoutes:
    """The object routes by (shape, plural, method); filled while the routes are registered."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str, str], DirectRoute] = {}
        self._checked = False

    def add(self, shape: str, plural: str, methods: list[str], endpoint: Endpoint, path: str) -> None:
        takes_request = "request" in endpoint.__code__.co_varnames[: endpoint.__code__.co_argcount]
        for method in methods:
            self._routes[(shape, plural, method)] = DirectRoute(endpoint, path, takes_request)

    def check(self, routes: list[BaseRoute]) -> None:
        """Keep only the entries the router itself would send to the same endpoint."""
        if self._checked:
            return
        for (shape, plural, method), direct in list(self._routes.items()):
            sample = direct.path.replace("{key}", _SAMPLE_KEY)
            chosen = _first_match(routes, method, sample)
            if getattr(chosen, "endpoint", None) is not direct.endpoint:
                del self._routes[(shape, plural, method)]
                log.debug("route %s %s is left to the router", method, direct.path)
        self._checked = True

    def match(self, method: str, path: str) -> tuple[DirectRoute, str | None, RouteLabel] | None:
        """The route for a request and its key (``None`` for a list), or ``None`` to let the router
        decide. Paths are ``/api/v1/<plural>[/]``, ``/api/v1/<plural>/<key>[/]`` and
        ``/api/v1/inspect/<plural>/<key>[/]``; a key is one non-empty path segment, as the router's
        ``{key}`` is."""
        parts = path.split("/")
        slash = parts[-1] == ""
        if slash:
            parts.pop()  # both forms are registered
        n = len(parts)
        if n < 4 or parts[0] or parts[1] != "api" or parts[2] != "v1":
            return None
        if n == 4:
            direct, key = self._routes.get((LIST, parts[3], method)), None
        elif n == 5 and parts[4]:
            direct, key = self._routes.get((ITEM, parts[3], method)), parts[4]
        elif n == 6 and parts[3] == "inspect" and parts[5]:
            direct, key = self._routes.get((INSPECT, parts[4], method)), parts[5]
        else:
            return None
        if direct is None:
            return None
        return direct, key, RouteLabel(direct.path + "/" if slash else direct.path)


def _first_match(routes: list[BaseRoute], method: str, path: str) -> BaseRoute | None:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
    return None


class DirectRoutesMiddleware:
    """The ASGI layer: a request :class:`DirectRoutes` knows goes to its endpoint, every other
    request to the app (the router)."""

    def __init__(self, app: ASGIApp, table: DirectRoutes, routes: list[BaseRoute],
                 handlers: Mapping[Any, ExceptionHandler]) -> None:
        self.app = app
        self.table = table
        self.routes = routes  # the router's, checked against at the first request
        self.handlers = handlers  # the app's exception handlers, by exception class

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.table.check(self.routes)
            found = self.table.match(scope["method"], scope["path"])
            if found is not None:
                await self._serve(*found, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, direct: DirectRoute, key: str | None, label: RouteLabel, scope: Scope,
                     receive: Receive, send: Send) -> None:
        scope["route"] = label  # the metrics label requests by the route's template, as for the router's
        args: dict[str, Any] = {} if key is None else {"key": key}
        request = Request(scope, receive)
        if direct.takes_request:
            args["request"] = request
        try:
            response = await direct.endpoint(**args)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # a fault: the outer middleware logs it and answers 500
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> ExceptionHandler | None:
        for cls in type(exc).__mro__:
            if cls in self.handlers:
                return self.handlers[cls]
        return None
