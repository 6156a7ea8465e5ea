"""The datapath interface the rest of the agent programs against.

Sync and the front ends (CNI, Docker) only need to hand over desired state and ask what is
programmed; how that becomes forwarding is the driver's business. ``agent.reconciler.Reconciler`` is
the Open vSwitch driver (ports via OVSDB, flows via OpenFlow); another data path (VPP, eBPF) would
implement the same three calls, as Contiv's plugin architecture intended.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.state import DesiredState


class Datapath(Protocol):
    def reconcile(self, state: DesiredState) -> None:
        """Converge this host to *state*; idempotent, safe to call with the same state again."""

    def driver_info(self, with_flows: bool = False) -> dict[str, Any]:
        """What is programmed, for /inspect/driver."""

    def endpoint_info(self, ep_id: str) -> dict[str, Any] | None:
        """One endpoint as programmed, for /inspect/endpoint/<id>; None if unknown."""
