"""Endpoint garbage collection: the leader frees the addresses of hosts whose agent is gone.

An endpoint is created by the agent of its host and deleted by it when the container goes. If the host
dies (or its agent is removed for good), nobody deletes its endpoints and their addresses stay taken
forever. The leader therefore watches over them:

* a host is *present* while it has an agent record (``/contiv/agents/<host>``, kept alive by the
  agent's heartbeat on a store lease, see :mod:`netmaster.api.agents`);
* a host that has endpoints and no agent record is *absent* from the first sweep that sees it so;
  once it has been absent for ``grace`` seconds (``--endpoint-gc-grace``), each of its endpoints is
  deleted with its address released, one transaction per endpoint that also checks the agent record
  is still absent, so an agent coming back at that moment keeps its endpoints;
* absence is timed by the leader that observes it, in memory: after a failover the new leader starts
  the clock again, which can only delay a collection, never hasten one;
* endpoints without a host are never collected; neither are endpoints of a host whose agent merely
  restarts (its record comes back within its TTL, far below the grace period);
* a host that was only cut off from netmaster loses nothing by a collection: its agent keeps its
  containers' ports and flows, the other agents keep forwarding to the collected endpoints, and the
  returning agent creates them again with their addresses (``agent/reclaim.py``);
* the same sweep releases address reservations (Docker IPAM) whose TTL has passed, in every network.

Each collection is logged (``endpoint collected``) and counted in ``/metrics``
(``netmaster_endpoints_collected_total``, ``netmaster_reservations_expired_total``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from prometheus_client import CollectorRegistry, Counter

from netmaster.errors import ApiError, UnavailableError
from netmaster.objects.endpoints import ReservationService, release_endpoint
from netmaster.store import keys
from netmaster.store.base import Store, StoreError
from netmaster.store.txn import Txn, run_txn

log = logging.getLogger(__name__)

DEFAULT_GRACE = 300.0


class EndpointCollector:
    def __init__(
        self, store: Store, *, grace: float = DEFAULT_GRACE, registry: CollectorRegistry | None = None
    ) -> None:
        self.store = store
        self.grace = grace
        # Sweep often enough that collection happens within about a quarter of the grace period late.
        self.interval = min(max(grace / 4, 0.2), 30.0)
        self.reservations = ReservationService(store)
        self._absent_since: dict[str, float] = {}  # host -> monotonic time it was first seen absent
        self.collected = Counter(
            "netmaster_endpoints_collected",
            "endpoints deleted by the garbage collector because their host's agent was gone",
            registry=registry,
        )
        self.expired = Counter(
            "netmaster_reservations_expired",
            "address reservations released by the garbage collector after their TTL",
            registry=registry,
        )

    async def run(self) -> None:
        """Sweep every ``interval`` until cancelled (a leader task)."""
        self._absent_since.clear()  # a new term: time absence from now on
        log.info("endpoint garbage collection running", extra={"grace": self.grace, "interval": self.interval})
        while True:
            try:
                await self.sweep()
            except (StoreError, ApiError) as exc:
                log.warning("endpoint garbage collection: %s; trying again", exc)
            except Exception:  # a bug (a malformed record?) must not end collection for the whole term
                log.exception("endpoint garbage collection failed unexpectedly; trying again")
            await asyncio.sleep(self.interval)

    async def sweep(self) -> int:
        """One round: collect what is due; the number of endpoints collected."""
        agent_kvs, _ = await self.store.list(keys.agent())
        present = {kv.key[len(keys.AGENTS) :] for kv in agent_kvs}
        endpoint_kvs, _ = await self.store.list(keys.endpoint())
        by_host: dict[str, list[str]] = {}
        for kv in endpoint_kvs:
            host = json.loads(kv.value).get("host", "")
            if host:
                by_host.setdefault(host, []).append(kv.key[len(keys.EP) :])
        now = time.monotonic()
        for host in list(self._absent_since):
            if host in present or host not in by_host:
                del self._absent_since[host]
        collected = 0
        for host, endpoint_ids in sorted(by_host.items()):
            if host in present:
                continue
            absent_for = now - self._absent_since.setdefault(host, now)
            if absent_for < self.grace:
                continue
            for endpoint_id in endpoint_ids:
                try:
                    collected += await self._collect(host, endpoint_id, absent_for)
                except (UnavailableError, StoreError):
                    raise  # the store is away: end this sweep, the next one starts over
                except ApiError as exc:  # e.g. its network is gone: report it, go on with the others
                    log.warning("endpoint %s of host %s not collected: %s", endpoint_id, host, exc.message)
        for resv in await self.reservations.sweep_expired():
            self.expired.inc()
            log.info(
                "address reservation expired",
                extra={"reservationID": resv["reservationID"], "owner": resv.get("owner", "")},
            )
        return collected

    async def _collect(self, host: str, endpoint_id: str, absent_for: float) -> bool:
        async def op(txn: Txn) -> dict | None:
            if await txn.get(keys.agent(host)) is not None:
                return None  # the agent is back: the commit compares this read, so it cannot race
            ep = await txn.get(keys.endpoint(endpoint_id))
            if ep is None or ep.get("host") != host:
                return None  # deleted or recreated elsewhere meanwhile
            return await release_endpoint(txn, endpoint_id)

        record, _ = await run_txn(self.store, op)
        if record is None:
            return False
        self.collected.inc()
        log.info(
            "endpoint collected",
            extra={
                "endpointID": endpoint_id,
                "host": host,
                "ipAddress": record.get("ipAddress", ""),
                "network": f"{record.get('tenantName', '')}:{record.get('networkName', '')}",
                "absentFor": round(absent_for, 1),
            },
        )
        return True
