"""Fixtures for the apic_mock conformance suite: a real server on a free 127.0.0.1 port."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from testbed.apic import ApicMock


@pytest.fixture
def api(apic_mock: ApicMock) -> Iterator[httpx.Client]:
    """A client logged in as admin on the shared (freshly reset) mock."""
    with apic_mock.client() as client:
        yield client
