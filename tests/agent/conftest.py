"""Fixtures for agent tests that need real OVS and namespaces (root, OVS binaries, busybox)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace

import pytest

from agent.state import DesiredState, Endpoint, Host, Network
from testbed.cluster import Cluster
from testbed.cluster.prereq import missing_prerequisites, requires, running
from testbed.netcheck import ping_eventually

requires_datapath = requires(missing_prerequisites())

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

    def pair(self, net: Network, *ips: str) -> list[str]:
        """Containers on h1, h2, h1, ... in *net* with *ips* (endpoints named a, b, ...), applied and
        reachable from the first; their namespaces."""
        names = "abcdefgh"[:len(ips)]
        spaces = [self.container(n) for n in names]
        self.apply(DesiredState(networks=(net,), endpoints=tuple(
            Endpoint(n, net.tenant, net.name, ip, self.hosts[i % 2].name, netns=ns)
            for i, (n, ip, ns) in enumerate(zip(names, ips, spaces, strict=True)))))
        assert all(ping_eventually(spaces[0], ip) for ip in ips[1:])
        return spaces

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
