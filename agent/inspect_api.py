"""The agent's local HTTP API: inspection and Prometheus metrics.

Served on a unix socket (default) or 127.0.0.1 only: it shows the datapath of this host and is meant
for operators, netctl (through netmaster or directly) and tests, never for remote clients.

Routes: ``GET /inspect/driver`` (add ``?flows=1`` for the flows of every stage),
``GET /inspect/endpoint/<id>``, ``GET /metrics``, ``GET /healthz``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from agent.reconciler import Reconciler

LOG = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    reconciler: Reconciler

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

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        rec = self.reconciler
        if url.path == "/inspect/driver":
            self._json(200, rec.driver_info(with_flows=query.get("flows", ["0"])[0] not in ("0", "")))
        elif url.path.startswith("/inspect/endpoint/"):
            info = rec.endpoint_info(unquote(url.path[len("/inspect/endpoint/"):]))
            self._json(200 if info else 404, info or {"error": "endpoint not found"})
        elif url.path == "/metrics":
            self._send(200, rec.metrics.render(), "text/plain; version=0.0.4")
        elif url.path == "/healthz":
            ok = rec.of.connected and rec.applied_revision >= 0
            self._json(200 if ok else 503, {"switch_connected": rec.of.connected,
                                            "revision": rec.applied_revision})
        else:
            self._json(404, {"error": "not found"})


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, Any]:
        request, _ = super().get_request()
        return request, ("local", 0)


def serve(reconciler: Reconciler, address: str) -> socketserver.BaseServer:
    """Start serving in a daemon thread. *address* is ``unix:/path`` or ``host:port``."""
    handler = type("Handler", (_Handler,), {"reconciler": reconciler})
    server: socketserver.BaseServer
    if address.startswith("unix:"):
        path = address[5:]
        if os.path.exists(path):
            os.unlink(path)
        server = _UnixHTTPServer(path, handler)
    else:
        host, _, port = address.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the inspect API only listens on the loopback or a unix socket")
        server = ThreadingHTTPServer((host, int(port)), handler)
    threading.Thread(target=server.serve_forever, name="inspect-api", daemon=True).start()
    return server
