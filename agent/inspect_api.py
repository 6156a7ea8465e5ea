"""The agent's local HTTP API: inspection and Prometheus metrics.

Served on a unix socket (default) or 127.0.0.1 only: it shows the datapath of this host and is meant
for operators, netctl (directly) and tests, never for remote clients.

``--inspect-listen HOST:PORT`` adds a TCP listener for netmaster, which proxies ``netctl agent inspect
--host`` to it: read-only (inspection, metrics, health; never the endpoint API), on 127.0.0.1 unless
an address is given, and with ``--netmaster-token`` set it wants that token as a bearer token, the
same one netmaster sends. Its URL is published in the agent's netmaster record (``inspectURL``).

Routes: ``GET /inspect/driver`` (add ``?flows=1`` for the flows of every stage, ``?rules=1`` for
packets and bytes per policy rule, read from the switch by the rule id in the flow cookies),
``GET /inspect/endpoint/<id>``, ``GET /inspect/bgp`` (L3 mode: neighbours, their state and prefixes,
the routes, live from the BGP daemon; Contiv's netplugin served the same path), ``GET /metrics``,
``GET /healthz``.

With netmaster sync the same socket also serves the local endpoint API (EndpointOps, the path the CNI
plugin and the Docker driver take): ``POST /endpoints`` with an AddRequest as JSON, ``DELETE
/endpoints/<id>``, ``GET /endpoints`` (this host's records), ``GET /endpoints/<id>/check`` and
``GET /status``. Errors answer ``{"kind": ..., "error": ...}`` with 400/404/409/503/500.
"""

from __future__ import annotations

import hmac
import json
import logging
import socketserver
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlparse

from agent.reconciler import Reconciler
from agent.unix_server import UnixSocketServer

if TYPE_CHECKING:
    from agent.endpoint_ops import EndpointOps

LOG = logging.getLogger(__name__)


_ERROR_STATUS = {"invalid": 400, "not_found": 404, "conflict": 409, "unavailable": 503, "internal": 500}


class _Handler(BaseHTTPRequestHandler):
    reconciler: Reconciler
    ops: EndpointOps | None = None
    token: str | None = None  # required as a bearer token when set (the TCP listener)

    def log_message(self, fmt: str, *args: Any) -> None:
        LOG.debug("inspect: " + fmt, *args)

    def address_string(self) -> str:  # unix sockets have no peer address tuple
        return "local"

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj, indent=1).encode())

    def _authorised(self) -> bool:
        if not self.token:
            return True
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token):
            return True
        self._json(401, {"error": "missing or invalid bearer token"})
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        url = urlparse(self.path)
        query = parse_qs(url.query)
        rec = self.reconciler
        if url.path == "/inspect/driver":
            info = rec.driver_info(with_flows=_flag(query, "flows"))
            if _flag(query, "rules"):
                info["rules"] = rec.rule_counters()
            self._json(200, info)
        elif url.path.startswith("/inspect/endpoint/"):
            info = rec.endpoint_info(unquote(url.path[len("/inspect/endpoint/") :]))
            self._json(200 if info else 404, info or {"error": "endpoint not found"})
        elif url.path == "/inspect/bgp":
            inspect_bgp = rec.bgp_inspect
            self._json(200, inspect_bgp() if inspect_bgp else {"state": "not configured", "neighbors": [],
                                                                 "routes": []})
        elif url.path == "/metrics":
            self._send(200, rec.metrics.render(), "text/plain; version=0.0.4")
        elif url.path == "/healthz":
            ok = rec.of.connected and rec.applied_revision >= 0
            self._json(200 if ok else 503, {"switch_connected": rec.of.connected, "revision": rec.applied_revision})
        elif url.path in ("/endpoints", "/status") or url.path.endswith("/check"):
            self._endpoints("GET", url.path)
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self._authorised():
            self._endpoints("POST", urlparse(self.path).path)

    def do_DELETE(self) -> None:
        if self._authorised():
            self._endpoints("DELETE", urlparse(self.path).path)

    def _endpoints(self, method: str, path: str) -> None:
        """The local endpoint API over EndpointOps (only with netmaster sync)."""
        from agent.endpoint_ops import AddRequest, EndpointError

        ops = self.ops
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if ops is None or parts[0] not in ("endpoints", "status"):
            self._json(404, {"error": "not found"})
            return
        try:
            if method == "GET" and parts == ["status"]:
                ready, reason = ops.status()
                self._json(200 if ready else 503, {"ready": ready, "reason": reason})
            elif method == "GET" and parts == ["endpoints"]:
                self._json(200, [asdict(e) for e in ops.list_local()])
            elif method == "GET" and len(parts) == 3 and parts[2] == "check":
                ops.check(parts[1])
                self._json(200, {"ok": True})
            elif method == "POST" and parts == ["endpoints"]:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                try:
                    req = AddRequest(**body)
                except TypeError as exc:
                    raise EndpointError("invalid", str(exc)) from None
                self._json(200, asdict(ops.add(req)))
            elif method == "DELETE" and len(parts) == 2:
                self._json(200, {"deleted": ops.delete(parts[1])})
            else:
                self._json(404, {"error": "not found"})
        except EndpointError as exc:
            self._json(_ERROR_STATUS[exc.kind], {"kind": exc.kind, "error": exc.message})
        except ValueError as exc:
            self._json(400, {"kind": "invalid", "error": str(exc)})


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["0"])[0] not in ("0", "")


def serve(reconciler: Reconciler, address: str, ops: EndpointOps | None = None) -> socketserver.BaseServer:
    """Start serving in a daemon thread. *address* is ``unix:/path`` or ``host:port``."""
    handler = type("Handler", (_Handler,), {"reconciler": reconciler, "ops": ops})
    server: socketserver.BaseServer
    if address.startswith("unix:"):
        server = UnixSocketServer(address[5:], handler)
    else:
        host, _, port = address.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the inspect API only listens on the loopback or a unix socket")
        server = ThreadingHTTPServer((host, int(port)), handler)
    threading.Thread(target=server.serve_forever, name="inspect-api", daemon=True).start()
    return server


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (IPv4 or a name; the host defaults to 127.0.0.1)."""
    host, _, port = value.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--inspect-listen {value!r}: expected HOST:PORT") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--inspect-listen {value!r}: port out of range")
    return host or "127.0.0.1", number


def serve_tcp(reconciler: Reconciler, host: str, port: int, token: str | None) -> ThreadingHTTPServer:
    """The read-only TCP listener netmaster proxies to (port 0: any free port, see server_address)."""
    handler = type("TcpHandler", (_Handler,), {"reconciler": reconciler, "ops": None, "token": token})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="inspect-tcp", daemon=True).start()
    return server


def published_url(server: ThreadingHTTPServer, ctrl_ip: str) -> str:
    """The URL netmaster should use: the bound address, or the control address for a wildcard bind."""
    host, port = server.server_address[:2]
    if host in ("0.0.0.0", ""):
        if not ctrl_ip:
            raise ValueError("--inspect-listen on 0.0.0.0 needs --ctrl-ip: the address netmaster should use")
        host = ctrl_ip
    return f"http://{host}:{port}"
