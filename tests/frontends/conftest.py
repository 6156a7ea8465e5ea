"""Front-end test fixtures: the installed ``contiv`` binary and an agent-side CNI server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.frontends.fake_ops import FakeEndpointOps


@pytest.fixture
def fake_ops() -> FakeEndpointOps:
    return FakeEndpointOps()


@pytest.fixture
def cni_bin(tmp_path: Path) -> Path:
    from agent.cni.install import install

    return install(tmp_path / "bin")[0]


@pytest.fixture
def cni_socket(tmp_path: Path, fake_ops: FakeEndpointOps) -> Iterator[str]:
    from agent.cni.server import serve

    path = str(tmp_path / "run" / "contiv-cni.sock")
    server = serve(fake_ops, path)
    yield path
    server.stop()
