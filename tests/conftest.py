"""Fixtures every test directory may use: a free port, the session's shared etcd and apic_mock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from testbed.apic import ApicMock
from testbed.cluster.prereq import check_marks
from testbed.etcd import stop_shared_etcd
from testbed.ports import free_port


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A missing prerequisite of a real-component test: a skip here, a failure under CI=true."""
    check_marks(item)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session", autouse=True)
def _stop_shared_etcd() -> Iterator[None]:
    """The session's shared etcd (started on first use by tests/etcd_server.shared_etcd) stops last."""
    yield
    stop_shared_etcd()


@pytest.fixture(scope="session")
def apic_mock_server() -> Iterator[ApicMock]:
    """One HTTPS mock (with the demo fabric) for the whole test session."""
    with ApicMock.start() as apic:
        yield apic


@pytest.fixture
def apic_mock(apic_mock_server: ApicMock) -> Iterator[ApicMock]:
    """The shared mock, reset (tree, faults, stats) before each test."""
    apic_mock_server.admin.reset()
    yield apic_mock_server
    with contextlib.suppress(httpx.HTTPError):
        apic_mock_server.admin.clear_faults()
