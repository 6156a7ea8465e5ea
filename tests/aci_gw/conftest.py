"""Fixtures for the aci_gw tests: the real apic_mock over HTTPS and a real gateway on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aci_gw_harness import RunningGateway, add_phys_domain, gateway_env

from testbed.aci_gw_payloads import PHYS_DOMAIN
from testbed.apic import ApicMock


@pytest.fixture
def apic(apic_mock: ApicMock) -> ApicMock:
    """The shared mock, reset, with the physical domain in place and counters zeroed."""
    add_phys_domain(apic_mock)
    apic_mock.admin.reset_stats()
    return apic_mock


@pytest.fixture
def start_gateway(apic: ApicMock) -> Iterator[Callable[..., RunningGateway]]:
    """Factory: a gateway for ``apic`` with Contiv's env variables plus overrides."""
    running: list[RunningGateway] = []

    def start(token: str | None = None, **env: str) -> RunningGateway:
        gw = RunningGateway(gateway_env(apic, **env), token)
        running.append(gw)
        return gw

    yield start
    for gw in running:
        gw.stop()


@pytest.fixture
def gateway(start_gateway: Callable[..., RunningGateway]) -> RunningGateway:
    """A gateway configured by environment: physical domain, one leaf, enforced policies."""
    return start_gateway(APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE="topology/pod-1/node-101")
