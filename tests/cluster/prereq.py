"""What a simulated cluster needs from the machine, as one skip reason (or None when all is there)."""

from __future__ import annotations

import os
import shutil

NEEDED = ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ip", "busybox")


def missing_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths)"
    absent = [b for b in NEEDED if shutil.which(b) is None]
    return f"missing binaries: {', '.join(absent)}" if absent else None
