"""The Docker plugin socket: libnetwork's HTTP protocol (POST + JSON) on a unix socket.

Every failure is answered ``{"Err": "message"}``. The status is 500 for a request that failed (as
Contiv's driver did), not 200: Docker's plugin client turns any non-200 reply carrying ``Err`` into
that error for every call, while some of its callers ignore ``Err`` in a 200 reply (dockerd 20.10's
remote IPAM parses the empty Pool of a failed RequestPool and reports "invalid CIDR address:").
400 is for a body that is not a JSON object, 404 for a call this driver does not implement
(libnetwork then treats it as optional), 405 for anything but POST.
"""

from __future__ import annotations

import json
import logging
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.docker.driver import ROUTES, DockerDriver
from agent.docker.netmaster_calls import DriverError, NetmasterCall, NetmasterIpam
from agent.docker.records import DriverRecords
from agent.unix_server import UnixSocketServer

if TYPE_CHECKING:
    from agent.endpoint_ops import EndpointOps

LOG = logging.getLogger(__name__)
CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
MAX_BODY = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    server: DockerPluginServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        LOG.debug("docker: " + fmt, *args)

    def address_string(self) -> str:
        return "docker"

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        started = time.monotonic()
        method = ROUTES.get(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, MAX_BODY + 1)) if length else b""
        if method is None:
            self._reply(404, {"Err": f"{self.path} is not implemented"})
            return
        try:
            if len(raw) > MAX_BODY:
                raise ValueError("request body too large")
            req = json.loads(raw) if raw.strip() else {}
            if not isinstance(req, dict):
                raise ValueError("request body must be a JSON object")
        except ValueError as exc:
            self._reply(400, {"Err": f"bad request: {exc}"})
            return
        try:
            out = getattr(self.server.driver, method)(req)
        except DriverError as exc:
            out = {"Err": str(exc)}
        except Exception as exc:  # a bug must come back as an error Docker shows, not a dropped connection
            LOG.exception("docker %s failed", self.path)
            out = {"Err": f"internal error: {type(exc).__name__}: {exc}"}
        LOG.info(
            "docker %s -> %s in %.1f ms",
            self.path,
            "Err: " + out["Err"] if "Err" in out else "ok",
            (time.monotonic() - started) * 1000,
        )
        self._reply(500 if "Err" in out else 200, out)

    def _not_allowed(self) -> None:
        self._reply(405, {"Err": "only POST is supported"})

    do_GET = do_PUT = do_DELETE = _not_allowed


class DockerPluginServer(UnixSocketServer):
    request_queue_size = 128
    client_label = "docker"

    def __init__(self, path: str, driver: DockerDriver) -> None:
        self.driver = driver
        super().__init__(path, _Handler)

    def start(self, name: str = "docker-plugin") -> DockerPluginServer:
        return super().start(name)


def serve(
    ops: EndpointOps, path: str, state_dir: Path, call: NetmasterCall, owner: str, scope: str = "global"
) -> DockerPluginServer:
    driver = DockerDriver(ops, NetmasterIpam(call, owner), DriverRecords(Path(state_dir) / "driver.json"), scope)
    return DockerPluginServer(path, driver).start()
