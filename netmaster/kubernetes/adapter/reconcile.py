"""Bring netmaster's Kubernetes objects of one tenant to what the API server holds.

Two entry points, both fed with objects as the API server sends them (dicts):

* :meth:`Reconciler.relist`: a full list of one resource. netmaster's objects of the tenant are read
  back and diffed against it: what differs is applied, what the API server no longer has is deleted
  (the only way a deletion missed during a watch gap is noticed);
* :meth:`Reconciler.handle`: one watch event (ADDED, MODIFIED, DELETED).

Between the two the reconciler remembers what netmaster holds (key -> fingerprint), so an event that
changes nothing netmaster keeps (a pod's status, most pod updates) costs no call. An object netmaster
refuses (400, or 404 for a missing tenant) is logged with netmaster's reason and counted, and the
watch goes on: netmaster keeps what it held before, as it does for any refused request. A netmaster
that cannot be reached raises, so the informer retries the same event later instead of losing it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from contiv_api.netmaster_client import NetmasterClient, NetmasterError, NetmasterUnavailableError
from netmaster.kubernetes.adapter.metrics import AdapterMetrics
from netmaster.kubernetes.adapter.translate import (
    RESOURCES,
    Desired,
    Resource,
    desired,
    held_fingerprint,
    netmaster_key,
)

log = logging.getLogger("contiv-k8s-adapter")

#: netmaster's statuses that mean "this object, not this call": refused, logged, not retried.
REFUSALS = (400, 404, 409, 422)


class Reconciler:
    def __init__(self, client: NetmasterClient, tenant: str, metrics: AdapterMetrics) -> None:
        self.client = client
        self.tenant = tenant
        self.metrics = metrics
        self._held: dict[str, dict[str, str]] = {r.plural: {} for r in RESOURCES}
        self.refused: dict[str, dict[str, str]] = {r.plural: {} for r in RESOURCES}  # key -> reason

    def held(self, resource: Resource) -> dict[str, str]:
        """What netmaster holds of *resource* for the tenant, as far as this reconciler knows."""
        return dict(self._held[resource.plural])

    async def relist(self, resource: Resource, objects: Iterable[Mapping[str, Any]]) -> None:
        wanted: dict[str, Desired] = {}
        for obj in objects:
            want = desired(resource, obj, self.tenant)
            if want is not None:
                wanted[want.key] = want
        records = await self.client.request("GET", f"/api/v1/kubernetes/{resource.plural}/")
        prefix = self.tenant + ":"
        held = self._held[resource.plural]
        held.clear()
        held.update({r["key"]: held_fingerprint(resource, r) for r in records if r["key"].startswith(prefix)})
        refused = self.refused[resource.plural]
        for key in set(refused) - set(wanted):
            del refused[key]
        for key, want in sorted(wanted.items()):
            if held.get(key) != want.fingerprint:
                await self._apply(resource, want)
        for key in sorted(set(held) - set(wanted)):
            await self._delete(resource, key)
        self._synced(resource)

    async def handle(self, resource: Resource, event_type: str, obj: Mapping[str, Any]) -> None:
        self.metrics.events.labels(resource.plural, event_type).inc()
        want = None if event_type == "DELETED" else desired(resource, obj, self.tenant)
        if want is None:
            key = netmaster_key(resource, obj, self.tenant)
            self.refused[resource.plural].pop(key, None)
            if key in self._held[resource.plural]:
                await self._delete(resource, key)
        elif self._held[resource.plural].get(want.key) != want.fingerprint:
            await self._apply(resource, want)
        self._synced(resource)

    async def _apply(self, resource: Resource, want: Desired) -> None:
        path = f"/api/v1/kubernetes/?tenant={quote(self.tenant, safe='')}"
        try:
            await self.client.request("POST", path, want.manifest)
        except NetmasterError as exc:
            if isinstance(exc, NetmasterUnavailableError) or exc.status not in REFUSALS:
                raise  # the informer counts it and retries
            self.refused[resource.plural][want.key] = exc.message
            self.metrics.errors.labels(resource.plural, "refused").inc()
            log.warning("netmaster refused %s %s: %s", resource.kind, want.key, exc.message,
                        extra={"resource": resource.plural, "key": want.key, "status": exc.status})
            return
        self.refused[resource.plural].pop(want.key, None)
        self._held[resource.plural][want.key] = want.fingerprint
        self.metrics.writes.labels(resource.plural, "apply").inc()
        log.info("applied %s %s", resource.kind, want.key, extra={"resource": resource.plural, "key": want.key})

    async def _delete(self, resource: Resource, key: str) -> None:
        try:
            await self.client.request("DELETE", f"/api/v1/kubernetes/{resource.plural}/{quote(key, safe='')}/")
        except NetmasterError as exc:
            if exc.status != 404:
                raise
        self._held[resource.plural].pop(key, None)
        self.metrics.writes.labels(resource.plural, "delete").inc()
        log.info("deleted %s %s", resource.kind, key, extra={"resource": resource.plural, "key": key})

    def _synced(self, resource: Resource) -> None:
        self.metrics.held.labels(resource.plural).set(len(self._held[resource.plural]))
        self.metrics.refused.labels(resource.plural).set(len(self.refused[resource.plural]))
        self.metrics.last_sync.labels(resource.plural).set(time.time())
