"""HTTP wiring: APIC's REST paths, the event websocket and the ``/mock/`` admin API.

The outermost layer (:class:`FrontDoor`) counts every ``/api/`` request, injects faults and logs one
structured line per request, before Starlette sees it; it is also the only place that can reset a
connection, because it holds the server's own ``send`` and therefore its transport.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from apic_mock import errors, xmlcodec
from apic_mock.auth import Identity
from apic_mock.config import MAX_BODY_BYTES, parse_body
from apic_mock.dn import DnSyntaxError, split_dn
from apic_mock.errors import ApicError, envelope
from apic_mock.service import ApicService

log = logging.getLogger("apic_mock.http")

UNAUTHENTICATED = {"aaaLogin", "aaaListDomains"}


class ApicResponse(Response):
    """Compact JSON, as APIC writes it."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


class ApicXmlResponse(Response):
    """The same envelope in APIC's XML encoding (``.xml`` URLs)."""

    media_type = "application/xml"

    def render(self, content: Any) -> bytes:
        return xmlcodec.encode(content)


def reply(content: dict[str, Any], fmt: str = "json", status_code: int = 200) -> Response:
    """An APIC reply in the encoding the URL asked for."""
    cls = ApicXmlResponse if fmt == "xml" else ApicResponse
    return cls(content, status_code=status_code)


def error_response(exc: ApicError, fmt: str = "json") -> Response:
    return reply(exc.envelope(), fmt, exc.http_status)


def _reset_connection(send: Send) -> bool:
    """Drop the client's TCP connection with an RST; False when the server does not expose it."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
    return True


class FrontDoor:
    """Stats, faults and access logs for APIC requests (``/api/``)."""

    def __init__(self, app: ASGIApp, service: ApicService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        stats = self.service.stats
        entry = stats.arrived(method, path, scope.get("query_string", b"").decode("latin-1"))
        started = time.perf_counter()
        status: int | str = 500
        try:
            delay, rule = self.service.faults.decide(method, path)
            if delay:
                await asyncio.sleep(delay / 1000)
            if rule is not None and rule.kind == "reset":
                status = "reset"
                if _reset_connection(send):
                    await asyncio.sleep(0)
                    return
                rule = None  # no transport to reset: fall through to a normal answer
            if rule is not None:
                status = rule.status
                await error_response(ApicError(rule.status, rule.text, rule.status))(scope, receive, send)
                return

            async def tracking_send(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            await self.app(scope, receive, tracking_send)
        finally:
            stats.finished(entry, status)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )


async def _read_body(request: Request) -> bytes:
    """The body, refusing more than ``MAX_BODY_BYTES`` without reading it all into memory."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApicError(400, f"Request body too large: {length} bytes (limit {MAX_BODY_BYTES})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApicError(400, f"Request body too large (limit {MAX_BODY_BYTES} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


class ApicApi:
    """The ``/api/`` endpoints: one dispatcher, because APIC's URL space is not a route table."""

    def __init__(self, service: ApicService) -> None:
        self.service = service

    async def __call__(self, request: Request) -> Response:
        fmt = "xml" if request.url.path.endswith(".xml") else "json"
        try:
            body = await _read_body(request)
            content, cookie = self.dispatch(request, body, fmt)
        except ApicError as exc:
            return error_response(exc, fmt)
        response = reply(content, fmt)
        if cookie is not None:
            secure = "; Secure" if request.url.scheme == "https" else ""
            response.headers["Set-Cookie"] = f"APIC-cookie={cookie}; path=/; HttpOnly{secure}"
        return response

    def dispatch(self, request: Request, body: bytes, fmt: str) -> tuple[dict[str, Any], str | None]:
        """Route one APIC call; returns the reply envelope and, after a login, the token to set."""
        svc = self.service
        method = request.method
        rest = request.path_params["rest"].lstrip("/")
        suffix = f".{fmt}"
        if not rest.endswith(suffix):
            raise ApicError(400, f"Invalid request: unknown format in /api/{rest}")
        name = rest[: -len(suffix)]
        params = request.query_params
        decode = xmlcodec.decode if fmt == "xml" else parse_body
        if name == "aaaListDomains":
            return envelope([{"name": "DefaultAuth", "guiBanner": ""}]), None
        if name == "aaaLogin":
            self._method(method, "POST")
            session = svc.login(decode(body))
            return svc.login_reply(session), session.token
        raw_target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        if query:
            raw_target += "?" + query
        identity = svc.auth.authenticate(request.headers.get("cookie", ""), method, raw_target, body)
        if name == "aaaRefresh":
            if identity.session is None:
                raise ApicError(403, errors.NEED_COOKIE, http_status=403)
            session = svc.auth.refresh(identity.session)
            return svc.login_reply(session), session.token
        if name == "aaaLogout":
            svc.logout(identity)
            return envelope([]), None
        if name == "webtokenSession":
            session = svc.auth.login(identity.user, kind="webtoken")
            attrs = {"token": session.token, "refreshTimeoutSeconds": str(svc.settings.refresh_timeout)}
            return envelope([{"webtokenSession": {"attributes": attrs}}]), None
        if name == "subscriptionRefresh":
            sub_id = params.get("id", "")
            if not svc.hub.refresh(sub_id):
                raise ApicError(400, f"Subscription refresh failed: unknown subscription id {sub_id}")
            return envelope([]), None
        for prefix in ("mo", "node/mo"):
            if name == prefix or name.startswith(prefix + "/"):
                dn = name[len(prefix) + 1 :]
                if method == "GET":
                    return svc.query(svc.scope_dn(dn), params, identity), None
                if method == "POST":
                    return svc.post(dn, decode(body), params, identity=identity), None
                if method == "DELETE":
                    return svc.delete(dn, params, identity=identity), None
                self._method(method, "GET", "POST", "DELETE")
        for prefix in ("class/", "node/class/"):
            if name.startswith(prefix):
                self._method(method, "GET")
                return self._class(name[len(prefix) :], params, identity), None
        raise ApicError(400, f"Request failed, unresolved method for {name}")

    @staticmethod
    def _method(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApicError(405, f"Method {method} not allowed here", http_status=405)

    def _class(self, rest: str, params: Any, identity: Identity) -> dict[str, Any]:
        try:
            rns = split_dn(rest)
        except DnSyntaxError:
            raise errors.invalid_rn(rest) from None
        cls = rns[-1] if rns else ""
        within = "/".join(rns[:-1]) if len(rns) > 1 else None
        scope = self.service.scope_class(cls, within)
        return self.service.query(scope, params, identity)


def _admin(service: ApicService) -> list[Route]:
    """The ``/mock/`` routes (no authentication: the mock listens on localhost for tests)."""

    def handler(fn: Callable[[Request, Any], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                raw = await _read_body(request)
                body = parse_body(raw) if raw.strip() else {}
                return ApicResponse(fn(request, body))
            except ApicError as exc:
                return error_response(exc)

        return endpoint

    def reset(request: Request, body: Any) -> Any:
        service.reset_tree()
        service.faults.clear()
        service.stats.reset()
        return {"status": "ok", "objects": len(service.tree)}

    def stats(request: Request, body: Any) -> Any:
        return service.stats.snapshot(with_log=request.query_params.get("log", "1") != "0")

    def stats_reset(request: Request, body: Any) -> Any:
        service.stats.reset()
        return {"status": "ok"}

    def faults(request: Request, body: Any) -> Any:
        if request.method == "POST":
            if not isinstance(body, dict):
                raise ApicError(400, "fault must be a JSON object")
            return service.faults.add(body).describe()
        if request.method == "DELETE":
            service.faults.clear()
        return {"faults": [r.describe() for r in service.faults.rules]}

    def expire(request: Request, body: Any) -> Any:
        user = body.get("user") if isinstance(body, dict) else None
        return {"expired": service.auth.expire(user)}

    def seed(request: Request, body: Any) -> Any:
        items = body.get("imdata", []) if isinstance(body, dict) and "imdata" in body else body
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise ApicError(400, "seed must be an APIC envelope, a list of MOs or one MO")
        return {"changes": service.seed(items)}

    def endpoints(request: Request, body: Any) -> Any:
        if not isinstance(body, dict):
            raise ApicError(400, "endpoint must be a JSON object")
        return service.add_endpoint(body)

    def objects(request: Request, body: Any) -> Any:
        dn = request.query_params.get("dn", "")
        if not dn:
            raise ApicError(400, "dn query parameter required")
        return {"removed": service.remove(dn)}

    def subscriptions(request: Request, body: Any) -> Any:
        return {
            "subscriptions": [
                {"id": s.id, "scope": s.scope.__dict__, "timeout": s.timeout, "expires": s.expires}
                for s in service.hub.subs.values()
            ]
        }

    def expire_subscriptions(request: Request, body: Any) -> Any:
        expired = len(service.hub.subs)
        service.hub.clear()
        return {"expired": expired}

    return [
        Route("/mock/health", handler(lambda r, b: {"status": "ok", **service.status()}), methods=["GET"]),
        Route("/mock/reset", handler(reset), methods=["POST"]),
        Route("/mock/dump", handler(lambda r, b: service.dump()), methods=["GET"]),
        Route("/mock/stats", handler(stats), methods=["GET"]),
        Route("/mock/stats", handler(stats_reset), methods=["DELETE"]),
        Route("/mock/stats/reset", handler(stats_reset), methods=["POST"]),
        Route("/mock/faults", handler(faults), methods=["GET", "POST", "DELETE"]),
        Route("/mock/tokens/expire", handler(expire), methods=["POST"]),
        Route("/mock/seed", handler(seed), methods=["POST"]),
        Route("/mock/endpoints", handler(endpoints), methods=["POST"]),
        Route("/mock/objects", handler(objects), methods=["DELETE"]),
        Route("/mock/subscriptions", handler(subscriptions), methods=["GET"]),
        Route("/mock/subscriptions/expire", handler(expire_subscriptions), methods=["POST"]),
    ]


def _websocket(service: ApicService) -> Callable[[WebSocket], Awaitable[None]]:
    async def endpoint(ws: WebSocket) -> None:
        token = ws.path_params["token"]
        try:
            session = service.auth.session_for(token)
        except ApicError:
            await ws.close(code=1008)  # before accept: the client sees HTTP 403
            return
        await ws.accept()
        queue = service.hub.attach(session.sid)
        log.info("websocket open", extra={"user": session.user, "session": session.sid})

        async def pump() -> None:
            while (frame := await queue.get()) is not None:
                await ws.send_text(frame)
            await ws.close()

        async def drain() -> None:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass

        tasks = {asyncio.create_task(pump()), asyncio.create_task(drain())}
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                exc = task.exception()
                if exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
                    raise exc
        finally:
            service.hub.detach(session.sid, queue)
            log.info("websocket closed", extra={"session": session.sid})

    return endpoint


async def _not_found(request: Request, exc: Exception) -> Response:
    return ApicResponse(errors.error_envelope(404, f"Not found: {request.url.path}"), status_code=404)


def create_app(service: ApicService) -> ASGIApp:
    """The ASGI application for one service."""
    api = ApicApi(service)
    routes = [
        Route("/api/{rest:path}", api.__call__, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
        WebSocketRoute("/socket{token}", _websocket(service)),
        *_admin(service),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    app.state.service = service
    return FrontDoor(app, service)
