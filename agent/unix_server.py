"""The agent's local servers (CNI socket, Docker plugin socket, inspect API) share one shape.

A threaded stream server on a unix socket that replaces a stale socket file left by a previous run,
is readable and writable by root only (creating and deleting endpoints is root's business), runs in
a daemon thread, and removes its socket file when stopped. ``http.server`` handlers need a
``(host, port)`` client address, which unix sockets lack, so the server supplies a fixed one.
"""

from __future__ import annotations

import os
import socket
import socketserver
import threading
from typing import Any, Self


class UnixSocketServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    client_label = "local"  # shown as the client address in http.server's logs

    def __init__(self, path: str, handler: type[socketserver.BaseRequestHandler], mode: int = 0o600) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        super().__init__(path, handler)
        os.chmod(path, mode)

    def get_request(self) -> tuple[socket.socket, Any]:
        request, _ = super().get_request()
        return request, (self.client_label, 0)

    def start(self, name: str) -> Self:
        threading.Thread(target=self.serve_forever, name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        try:
            os.unlink(self.server_address)  # type: ignore[arg-type]
        except OSError:
            pass
