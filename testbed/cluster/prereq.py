"""What a simulated cluster needs from the machine, as one skip reason (or None when all is there)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from testbed.cluster import Cluster

C = TypeVar("C", bound="Cluster")

NEEDED = ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ip", "busybox")


def missing_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths)"
    absent = [b for b in NEEDED if shutil.which(b) is None]
    return f"missing binaries: {', '.join(absent)}" if absent else None


def running(cluster: C) -> Iterator[C]:
    """The body of a cluster fixture: skip without the prerequisites, bring *cluster* up, yield it, and
    tear it down proving nothing with its prefix is left behind."""
    import pytest  # only this fixture helper needs it: the demo imports this module too

    from testbed.cluster import leftovers

    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()
        assert leftovers(cluster.prefix) == [], "cluster cleanup left something behind"
