"""A free TCP port, for servers the test bed starts (never a fixed port: parallel runs would collide)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at *host* right now (the kernel's choice of an ephemeral port)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
