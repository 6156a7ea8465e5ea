"""Validation of external contracts against the APIC, for external contracts groups in ACI mode.

Contiv accepted any DN and the push failed later, for every profile using the group. Here a DN that
the APIC does not hold is refused when the group is created (404, aci-gw's wording: ``External
contract <dn> not found in APIC``). When aci-gw cannot answer, the create is refused with 503 rather
than accepted unchecked: a mistyped DN would otherwise break every push of every profile using the
group, far from the request that caused it. Retry once the gateway is up.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from netmaster.aci.client import AciGwClient, GatewayUnavailable
from netmaster.errors import NotFoundError, UnavailableError

#: A transaction retried on conflict runs the check again; a short cache keeps that to one request.
CACHE_SECONDS = 2.0


class ExternalContractCheck:
    def __init__(self, client: AciGwClient) -> None:
        self.client = client
        self._cache: tuple[float, frozenset[str]] | None = None

    async def _known(self) -> frozenset[str]:
        now = time.monotonic()
        if self._cache is not None and now - self._cache[0] < CACHE_SECONDS:
            return self._cache[1]
        try:
            contracts = await self.client.contracts()
        except GatewayUnavailable as exc:
            raise UnavailableError(
                f"cannot validate external contracts against the APIC ({exc}); retry when aci-gw is reachable"
            ) from None
        known = frozenset(c.get("dn", "") for c in contracts)
        self._cache = (now, known)
        return known

    async def __call__(self, dns: Iterable[str]) -> None:
        """Raise 404 for the first DN the APIC does not hold, 503 if the APIC cannot be asked."""
        dns = list(dns)
        if not dns:
            return
        known = await self._known()
        missing = [dn for dn in dns if dn not in known]
        if missing:
            self._cache = None  # it may be created in the APIC right after this answer
            raise NotFoundError(f"External contract {missing[0]} not found in APIC")
