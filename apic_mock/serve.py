"""Serving a mock with uvicorn: the listening socket and the server configuration.

Shared by the ``apic-mock`` command and :mod:`testbed.apic`. The listening socket must be
created with ``IPPROTO_TCP``: asyncio only sets ``TCP_NODELAY`` on sockets whose ``proto`` says TCP,
and without it every response stalls ~40 ms on a delayed ACK (uvicorn writes headers and body
separately).
"""

from __future__ import annotations

import socket

import uvicorn

from apic_mock.app import create_app
from apic_mock.service import ApicService


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (port 0 picks a free one) for the server.

    Listening at once, not when uvicorn starts: whoever reads the port (``--port-file``) may connect
    right away, and is queued until the server accepts instead of being refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def build_server(
    service: ApicService, *, certfile: str | None = None, keyfile: str | None = None, log_level: str = "info"
) -> uvicorn.Server:
    """A uvicorn server for ``service``; HTTPS when a certificate is given."""
    ssl: dict[str, str] = {"ssl_certfile": certfile, "ssl_keyfile": keyfile or ""} if certfile else {}
    config = uvicorn.Config(
        create_app(service),
        log_config=None,
        access_log=False,  # the front door logs requests itself; apic_mock.log masks websocket tokens
        lifespan="off",
        log_level=log_level,
        **ssl,  # type: ignore[arg-type]
    )
    return uvicorn.Server(config)
