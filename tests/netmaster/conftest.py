"""A real netmaster process per module (or per test where global settings change), and a small client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.netmaster import NetmasterProcess
from testbed.rest import Api


@pytest.fixture(scope="module")
def shared_netmaster() -> Iterator[NetmasterProcess]:
    with NetmasterProcess.start("memory://") as nm:
        yield nm


@pytest.fixture
def api(shared_netmaster: NetmasterProcess) -> Api:
    return Api(shared_netmaster.url)


@pytest.fixture
def fresh_api() -> Iterator[Api]:
    """A netmaster of its own, for tests that change global settings."""
    with NetmasterProcess.start("memory://") as nm:
        yield Api(nm.url)
