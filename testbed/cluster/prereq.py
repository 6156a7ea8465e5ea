"""What a simulated cluster needs from the machine, as one skip reason (or None when all is there).

A real-component test whose prerequisite is missing is skipped on a developer's machine and fails
under ``CI=true``: CI promises the machine has everything, so a skip there would hide a broken
environment (a green run that tested nothing). Only optional extras (the cobra SDK, which only an
APIC ships) keep a plain skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from testbed.cluster import Cluster

C = TypeVar("C", bound="Cluster")

NEEDED = ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ip", "busybox")
MARKER = "prerequisite"  # pytest.mark.prerequisite(reason | None), enforced by tests/conftest.py


def missing_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths)"
    absent = [b for b in NEEDED if shutil.which(b) is None]
    return f"missing binaries: {', '.join(absent)}" if absent else None


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test for *reason*, or fail it under ``CI=true``."""
    import pytest  # only the test helpers need it: the demo imports this module too

    if under_ci():
        pytest.fail(f"CI=true and a prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def requires(reason: str | None) -> Any:
    """A mark for a test (or ``pytestmark``) that needs what *reason* says is missing (None: all there);
    tests/conftest.py calls :func:`unavailable` for it before the test runs."""
    import pytest

    return getattr(pytest.mark, MARKER)(reason)


def check_marks(item: Any) -> None:
    """The setup hook's half: enforce every ``prerequisite`` mark of *item*."""
    for mark in item.iter_markers(MARKER):
        if mark.args and mark.args[0]:
            unavailable(str(mark.args[0]))


def running(cluster: C) -> Iterator[C]:
    """The body of a cluster fixture: skip (fail under CI) without the prerequisites, bring *cluster* up,
    yield it, and tear it down proving nothing with its prefix is left behind."""
    from testbed.cluster import leftovers

    reason = missing_prerequisites()
    if reason:
        unavailable(reason)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()
        assert leftovers(cluster.prefix) == [], "cluster cleanup left something behind"
