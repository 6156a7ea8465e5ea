"""Re-claiming this host's endpoints after netmaster lost them: how a returning host meets endpoint GC.

netmaster's leader collects the endpoints of a host whose agent record has been absent for
``--endpoint-gc-grace`` seconds (``netmaster.ha.endpoint_gc``); it cannot tell a dead host from one
cut off from it. The host's containers kept running meanwhile, and its agent kept forwarding for them
with the last state (its local records are its truth about what runs here, see
``agent.netmaster_state.with_last_known``). When netmaster answers again the agent puts them back:

- after every reconnect (the heartbeat succeeding after it failed, and at start) every local record
  is created again in netmaster with its own address: a create is idempotent, so an endpoint netmaster
  still holds answers as it is, and a collected one gets its address back if it is still free. The
  watch may not have caught up yet at that moment, so the pass does not trust the cache;
- in between, a local record the cache shows missing (a watch delete) is re-claimed the same way;
- an endpoint whose address (or id) went to another endpoint meanwhile is a *conflict*: the container
  keeps its address, port and flows on this host (its traffic to other hosts may be misdelivered
  while the other holder lives), it is flagged in inspect (``netmaster.conflicts``) and in
  ``contiv_agent_endpoint_conflicts``, logged once as a warning, and reported to netmaster in the
  agent record's ``conflicts``. The re-claim is retried every ``CONFLICT_RETRY`` seconds, so the
  conflict ends by itself when the other holder goes; an operator may also delete either endpoint;
- an add waits for the pass (``EndpointOps.before_add``): a new container on this host must not be
  given the address of a container that runs here but is not re-claimed yet.
"""

from __future__ import annotations

import logging
import threading
import time

from agent.endpoint_ops import EndpointError, EndpointOps

LOG = logging.getLogger(__name__)

RETRY = 2.0  # seconds between attempts for an endpoint netmaster does not list (an error other than conflict)
CONFLICT_RETRY = 10.0  # seconds between attempts for an endpoint in conflict


class Reclaimer:
    def __init__(self, ops: EndpointOps, interval: float = 0.5) -> None:
        self.ops = ops
        self.source = ops.source
        self.metrics = ops.reconciler.metrics
        self.interval = interval
        self._lock = threading.Lock()  # one pass at a time (the background thread, or an add's)
        self._verified_reconnect = 0  # source.reconnects the last full pass covered
        self._tried: dict[str, float] = {}  # endpoint id -> monotonic time of the last failed attempt

    def start(self) -> None:
        self.ops.before_add = self.settle
        threading.Thread(target=self._run, name="endpoint-reclaim", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                self.settle()
            except Exception:  # a bug must not end re-claiming for the life of the agent
                LOG.exception("endpoint re-claim failed unexpectedly; trying again")
            time.sleep(self.interval)

    def settle(self) -> None:
        """Re-claim what is due now (nothing while netmaster is unreachable)."""
        source = self.source
        if not source.synced or not source.netmaster_reachable:
            return
        with self._lock:
            local = self.ops.local.all()
            reconnects = source.reconnects
            now = time.monotonic()
            if reconnects != self._verified_reconnect:
                due = sorted(local)
            else:
                due = sorted(ep_id for ep_id in source.unlisted() if ep_id in local and now - self._tried.get(
                    ep_id, 0.0) >= (CONFLICT_RETRY if ep_id in source.conflicts else RETRY))
            complete = all(self._reclaim(ep_id) for ep_id in due)
            if reconnects != self._verified_reconnect and complete:
                self._verified_reconnect = reconnects
            self._report({k: v for k, v in source.conflicts.items() if k in self.ops.local.all()})

    def _reclaim(self, ep_id: str) -> bool:
        """One endpoint; False if netmaster could not answer (the pass is repeated)."""
        local = self.ops.local.get(ep_id)
        conflicts = dict(self.source.conflicts)
        known = self.source.cached_endpoint(ep_id)
        try:
            record = self.ops.reclaim(ep_id)
        except EndpointError as exc:
            self._tried[ep_id] = time.monotonic()
            if exc.kind == "unavailable":
                return False
            if exc.kind != "conflict" or local is None:
                LOG.warning("endpoint %s: re-claim failed (%s); retrying", ep_id, exc)
                return True
            if ep_id not in conflicts:
                LOG.warning("endpoint %s: address conflict: %s; the container keeps %s and its port on this "
                            "host, reported to netmaster", ep_id, exc.message, local.ip,
                            extra={"event": "endpoint_conflict", "endpointID": ep_id, "ipAddress": local.ip})
            conflicts[ep_id] = {"endpointID": ep_id, "ipAddress": local.ip,
                                "network": f"{local.tenant}:{local.network}", "reason": exc.message[:200]}
            self._report(conflicts)
            return True
        self._tried.pop(ep_id, None)
        if record is not None and (known is None or known.get("createdAt") != record.get("createdAt")):
            self.metrics.reclaimed.inc()
            LOG.info("endpoint %s re-claimed in netmaster with its address %s", ep_id, record.get("ipAddress"),
                     extra={"event": "endpoint_reclaimed", "endpointID": ep_id})
        if conflicts.pop(ep_id, None) is not None:
            LOG.info("endpoint %s: address conflict resolved", ep_id)
            self._report(conflicts)
        return True

    def _report(self, conflicts: dict[str, dict[str, str]]) -> None:
        """Publish the conflicts (a new dict: the heartbeat and inspect read it from other threads)."""
        self.source.conflicts = conflicts
        self.metrics.conflicts.set(len(conflicts))
