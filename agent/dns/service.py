"""Service discovery on a host: the DNS port, the responder on it and the records it answers from,
kept in step with the reconciler's state (``Reconciler(dns=...)``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from agent.dns.port import DnsPort
from agent.dns.records import Records
from agent.dns.responder import DnsResponder
from agent.state import DesiredState

LOG = logging.getLogger(__name__)


class DnsService:
    def __init__(self, port: DnsPort, responder: DnsResponder, zone: str = "contiv") -> None:
        self.port = port
        self.responder = responder
        self.zone = zone
        self._addresses: dict[str, str] = {}

    def converge(self, vrf_ids: Mapping[str, int]) -> int:
        """The port and its tenant addresses; its ofport for the flows (0: not there yet). A failure
        here (OVS refusing the port, ``ip`` failing) costs DNS only, never the rest of the pipeline:
        logged, and no redirect flows until the next full reconcile succeeds."""
        try:
            ofport, self._addresses = self.port.converge(vrf_ids)
        except Exception as exc:  # ovsdbapp, ip(8), /proc: whatever fails, the pipeline must not

            LOG.error("DNS port not ready, no service discovery for now: %s", exc)
            self._addresses = {}
            return 0
        return ofport

    def apply(self, state: DesiredState) -> None:
        """Answer from *state* (kept when netmaster goes away: the state stays), on every tenant's address."""
        self.responder.update(Records.of(state, self.zone))
        try:
            self.responder.listen(self._addresses)
        except (OSError, TimeoutError) as exc:
            LOG.error("DNS responder cannot listen: %s", exc)

    def info(self) -> dict[str, object]:
        return {"zone": self.zone, "addresses": dict(self._addresses), "queries": self.responder.queries,
                "forwarded": self.responder.forwarded,
                "kept": self.responder.kept_answers, "upstreams": [f"{h}:{p}" for h, p in self.responder.upstreams]}
