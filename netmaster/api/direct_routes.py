"""Contiv's object routes answered without the web framework's per-request machinery.

Why: ``/api/v1/<plural>/<key>`` (get, create or update, delete), the lists and the inspects are what
clients call most, and FastAPI spent about 0.8 ms on each of them before the handler ran: Starlette's
router tries the pattern of every registered route in turn (about 170 here, every object kind's
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
import re
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
_PARAM = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class DirectRoute:
    """One route this layer answers: the endpoint and how the metrics name the route."""

    endpoint: Endpoint
    path: str  # the route's template, "/api/v1/tenants/{key}"
    param: str | None  # the name of its path parameter ("key"), None for a list
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

    def add(self, methods: list[str], endpoint: Endpoint, path: str) -> bool:
        """A route as registered with the router (*path* its template), if it has one of the shapes
        this layer knows: ``/api/v1/<plural>``, ``/api/v1/<plural>/{param}`` or
        ``/api/v1/inspect/<plural>/{param}``, the parameter untyped. Others are left to the router."""
        parts = path.split("/")
        param = _PARAM.fullmatch(parts[-1])
        if len(parts) < 4 or parts[:3] != ["", "api", "v1"] or (param is not None and ":" in param.group(1)):
            return False
        if len(parts) == 4 and param is None:
            shape, plural = LIST, parts[3]
        elif len(parts) == 5 and param is not None and _PARAM.search(parts[3]) is None:
            shape, plural = ITEM, parts[3]
        elif len(parts) == 6 and param is not None and parts[3] == "inspect" and _PARAM.search(parts[4]) is None:
            shape, plural = INSPECT, parts[4]
        else:
            return False
        code = endpoint.__code__
        arguments = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
        if arguments - {"request", param.group(1) if param else ""}:
            return False  # the router would fill the others in (query parameters, dependencies)
        takes_request = "request" in arguments
        for method in methods:
            self._routes[(shape, plural, method)] = DirectRoute(
                endpoint, path, param.group(1) if param else None, takes_request)
        return True

    def check(self, routes: list[BaseRoute]) -> None:
        """Keep only the entries the router itself would send to the same endpoint: for a sample key,
        and with no route of a literal key beside them (``/api/v1/<plural>/special``)."""
        if self._checked:
            return
        literal = {_parent(path) for path in (getattr(r, "path", "").rstrip("/") for r in routes)
                   if path and not _PARAM.search(path.rsplit("/", 1)[-1])}
        for (shape, plural, method), direct in list(self._routes.items()):
            sample = _PARAM.sub(_SAMPLE_KEY, direct.path)
            chosen = _first_match(routes, method, sample)
            shadowed = direct.param is not None and _parent(direct.path) in literal
            if shadowed or getattr(chosen, "endpoint", None) is not direct.endpoint:
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


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


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
        args: dict[str, Any] = {} if direct.param is None else {direct.param: key}
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
