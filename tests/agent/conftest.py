"""Fixtures for agent tests that need real OVS and namespaces (root, OVS binaries, busybox)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace

import pytest

from agent.state import DesiredState, Host
from testbed.cluster import Cluster
from testbed.cluster.prereq import missing_prerequisites, running


def _missing() -> str | None:
    return missing_prerequisites()


requires_datapath = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")

_revisions = itertools.count(1)


def next_revision() -> int:
    return next(_revisions)


class ClusterEnv:
    """A running cluster plus the per-test containers to remove afterwards."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.hosts = tuple(Host(h.name, h.vtep_ip) for h in cluster.hosts)

    def container(self, name: str) -> str:
        return self.cluster.container(name)

    def apply(self, state: DesiredState) -> DesiredState:
        """Apply *state* (with this cluster's hosts and a fresh revision) on every agent."""
        full = replace(state, hosts=self.hosts, revision=next_revision())
        self.cluster.apply(full)
        return full

    def reset(self) -> None:
        self.apply(DesiredState())
        for ns in list(self.cluster.containers):
            self.cluster.remove_container(ns)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from running(Cluster(n_hosts=2))


@pytest.fixture
def env(cluster: Cluster) -> Iterator[ClusterEnv]:
    e = ClusterEnv(cluster)
    try:
        yield e
    finally:
        e.reset()
