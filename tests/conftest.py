"""Shared fixtures: free ports and store backends."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.etcd_server import stop_shared_etcd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session", autouse=True)
def _stop_shared_etcd() -> Iterator[None]:
    """The session's shared etcd (started on first use by tests/etcd_server.shared_etcd) stops last."""
    yield
    stop_shared_etcd()
