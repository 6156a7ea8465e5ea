"""List + watch of one Kubernetes resource, as client-go's reflector does it, feeding a Reconciler.

* The first pass lists the resource and reconciles netmaster to the list; the watch then starts at
  the list's resourceVersion, so history is never replayed (a watch without one would start with
  synthetic ADDED events, and one from "0" with whatever an API server cache holds).
* Each event is handled before its resourceVersion is taken as the resume point: when netmaster is
  unreachable, the watch is re-opened from the last event applied and the failed one comes again.
* A dropped watch (a closed connection, a timeout, an API server restart) resumes from that
  resourceVersion without listing again.
* 410 Gone (the version is older than what the API server keeps) forgets the version: the next pass
  lists again, and the reconcile deletes what was deleted while the watch was away.
* Any other failure waits (capped exponential backoff with jitter) and tries again; the loop never
  ends by itself.

The API server is reached through a :class:`Source` (``source.LightkubeSource`` in production).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from contiv_api.backoff import Backoff
from contiv_api.netmaster_client import NetmasterError
from netmaster.kubernetes.adapter.metrics import AdapterMetrics
from netmaster.kubernetes.adapter.reconcile import Reconciler
from netmaster.kubernetes.adapter.translate import Resource

log = logging.getLogger("contiv-k8s-adapter")

Obj = Mapping[str, Any]


class ResourceGone(Exception):
    """The API server answered 410 Gone: the resourceVersion asked for is no longer kept."""


class SourceError(Exception):
    """The API server could not be reached, or refused a list or a watch; the message says why."""


class Source(Protocol):
    async def list(self, resource: Resource) -> tuple[list[Obj], str]:
        """Every object of *resource* (all namespaces) and the list's resourceVersion."""
        ...

    def watch(self, resource: Resource, resource_version: str) -> AsyncIterator[tuple[str, Obj]]:
        """(event type, object) after *resource_version*, until the watch ends; raises ResourceGone
        or SourceError."""
        ...


class ResourceInformer:
    def __init__(self, resource: Resource, source: Source, reconciler: Reconciler, metrics: AdapterMetrics,
                 *, backoff: Backoff | None = None) -> None:
        self.resource = resource
        self.source = source
        self.reconciler = reconciler
        self.metrics = metrics
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.resource_version: str | None = None  # resume point: every event up to it is applied
        self.synced = asyncio.Event()  # set by the first list reconciled
        self._relist_reason = "start"

    async def run(self) -> None:
        """Forever: :meth:`run_once`, with a backoff after failures."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop never ends by itself; a bug shows in the log with its traceback
                kind = "apiserver" if isinstance(exc, SourceError) else "netmaster"
                if not isinstance(exc, SourceError | NetmasterError):
                    kind = "internal"
                    log.error("%s: unexpected failure", self.resource.plural, exc_info=True)
                self.metrics.errors.labels(self.resource.plural, kind).inc()
                if self.resource_version is None:
                    self._relist_reason = "error"
                delay = self.backoff.next()
                log.warning("%s: %s; retrying in %.1fs from %s", self.resource.plural, exc, delay,
                            f"resourceVersion {self.resource_version}" if self.resource_version else "a new list",
                            extra={"resource": self.resource.plural, "failed": kind})
                await asyncio.sleep(delay)

    async def run_once(self) -> None:
        """One pass: a list when there is no version to resume from, then one watch until it ends.
        A 410 ends the pass with the version forgotten; other failures raise."""
        try:
            if self.resource_version is None:
                await self._list()
            async for event_type, obj in self.source.watch(self.resource, self.resource_version or ""):
                version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if event_type != "BOOKMARK":
                    await self.reconciler.handle(self.resource, event_type, obj)
                if version:
                    self.resource_version = version
                self.backoff.reset()
        except ResourceGone as exc:
            log.info("%s: resourceVersion %s is gone (%s); listing again", self.resource.plural,
                     self.resource_version, exc, extra={"resource": self.resource.plural})
            self.resource_version = None
            self._relist_reason = "gone"

    async def _list(self) -> None:
        objects, version = await self.source.list(self.resource)
        await self.reconciler.relist(self.resource, objects)
        self.resource_version = version
        self.metrics.relists.labels(self.resource.plural, self._relist_reason).inc()
        log.info("%s: listed %d at resourceVersion %s", self.resource.plural, len(objects), version,
                 extra={"resource": self.resource.plural, "objects": len(objects), "resourceVersion": version})
        self.synced.set()
        self.backoff.reset()
