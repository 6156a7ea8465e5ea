"""The agent's state source when it follows netmaster: list+watch into a cache, DesiredState out.

The hard parts of following netmaster (snapshot, watch, reconnect with backoff, resume from the last
complete revision, re-snapshot on 410, dropping repeated events) live in ``contiv_api.netmaster_client`` and
``contiv_api.informer``; this module runs an informer on an asyncio loop in a thread of its own and
turns its cache into DesiredState snapshots for the reconciler:

- the informer's handlers only mirror objects into a lock-protected dict and wake the apply loop;
  the loop builds one state from whatever arrived meanwhile and applies it, so a burst of events
  becomes one reconcile (batching without a timer);
- nothing is applied before the first snapshot: an agent that starts while netmaster is down must
  not reconcile an empty state (that would delete every flow). It applies the last state it applied
  (saved in its state directory) instead, and keeps retrying netmaster, saying so in the log;
- while netmaster is down the last applied state stays in force: existing traffic is unaffected;
- the agent's own record (``PUT /api/v1/agents/<host>/``) is renewed every third of its TTL; it
  carries the endpoints this host could not re-claim (``conflicts``, set by ``agent.reclaim``);
- the state is completed with what netmaster does not list (``with_last_known``): this host's local
  records always, and remote endpoints deleted while their host's agent record was absent (netmaster's
  endpoint GC collecting a host cut off from it) until they are re-claimed, their address goes to
  another endpoint, or their host has been back for ``RETAIN_AFTER_RETURN`` seconds without
  re-claiming them (``agent.retained``, kept on disk). Neither side of a control-plane partition loses a
  running container's traffic.

Endpoints this agent creates or deletes are reflected at once through a small overlay, so an
``EndpointOps.add`` can program its endpoint's flows synchronously (``sync(apply=...)``, the quick
apply) without waiting for its own watch event; it then wakes the loop (``request_sync``), whose
full apply converges the whole host in the background, once for a burst of calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent.local_endpoints import LocalEndpointStore
from agent.metrics import AgentMetrics
from agent.netmaster_state import NmObject, build_state, with_last_known
from agent.retained import RetainedEndpoints
from agent.state import DesiredState
from contiv_api.informer import Informer
from contiv_api.k8s_netpol import KIND_NAMESPACE, KIND_POD, KIND_POLICY
from contiv_api.netmaster_client import NetmasterClient, NetmasterError
from contiv_api.watch_format import ObjectState

LOG = logging.getLogger(__name__)
T = TypeVar("T")

KINDS = ("global", "network", "endpointGroup", "policy", "rule", "endpoint", "agent", "appProfile", "aciSync",
         "netprofile", "serviceLB", "Bgp", KIND_POLICY, KIND_NAMESPACE, KIND_POD)
_DELETED = None  # overlay value of an endpoint this agent deleted
SETTLE = 0.5  # seconds without endpoint calls before the background full apply runs
SETTLE_MAX = 2.0  # ... but no later than this after the first call of a burst
RETAIN_AFTER_RETURN = 30.0  # seconds a returned host has to re-claim the endpoints others retain for it


@dataclass(frozen=True)
class AgentIdentity:
    """What the agent announces about itself in its netmaster record."""

    host_label: str
    vtep_ip: str = ""
    ctrl_ip: str = ""
    version: str = ""
    ttl: int = 15
    inspect_url: str = ""  # the read-only inspect listener netmaster proxies to ('' if none)


class NetmasterStateSource:
    def __init__(self, urls: str | list[str], identity: AgentIdentity, local: LocalEndpointStore, *,
                 token: str | None = None, request_wait: float = 5.0, cache_file: Path | None = None,
                 idle_timeout: float = 20.0, metrics: AgentMetrics | None = None) -> None:
        self.urls = urls
        self.identity = identity
        self.local = local
        self.token = token
        self.request_wait = request_wait  # how long an endpoint call waits for an absent netmaster
        self.cache_file = cache_file
        self.idle_timeout = idle_timeout
        self._objects: dict[tuple[str, str], NmObject] = {}
        # remote endpoints collected while their host was away (agent.retained), kept across restarts
        self._retained = RetainedEndpoints(cache_file.with_name("retained-endpoints.json") if cache_file else None)
        self._returned: dict[str, float] = {}  # host -> monotonic time its agent record came back
        self._unlisted: dict[str, str] = {}  # local endpoints netmaster does not list -> holder ('' none)
        self.conflicts: dict[str, dict[str, str]] = {}  # endpoint id -> conflict report (agent.reclaim)
        # L3 mode: the speaker's neighbour -> session state, sent with each heartbeat (docs/bgp.md)
        self.bgp_neighbors: Callable[[], dict[str, str]] | None = None
        self.reconnects = 0  # times the heartbeat succeeded after failing (or for the first time)
        self.metrics = metrics or AgentMetrics()
        self._overlay: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Lock()  # guards _objects, _overlay, _retained, _returned
        self._apply_lock = threading.RLock()  # one build+apply at a time, in revision order
        # Group commit for concurrent sync() callers (a burst of CNI ADDs): each takes a ticket; an
        # apply whose build started after ticket t was taken covers t, so its caller need not apply again.
        # A full apply covers quick callers too; a quick apply covers only quick callers.
        self._ticket_lock = threading.Lock()
        self._sync_tickets = 0
        self._covered_full = 0
        self._covered_quick = 0
        self._quick_since_full = False  # ports changed outside a full apply: the next one must run
        self._burst_started = 0.0  # monotonic time of the first and last request_sync of a burst
        self._burst_last = 0.0
        self._apply: Callable[[DesiredState], None] | None = None
        self._applied: DesiredState | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._force = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._informer: Informer | None = None
        self._ops_client: NetmasterClient | None = None
        self._watch_client: NetmasterClient | None = None
        self._heartbeat_ok: bool | None = None
        self._started = threading.Event()

    # -- the loop thread ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start following netmaster (idempotent). Endpoint calls work from here on."""
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="netmaster-sync", daemon=True).start()
        self.call(self._start_async(), timeout=10)

    async def _start_async(self) -> None:
        urls = self.urls
        source = self.identity.ctrl_ip or None  # connections leave from the control address
        watch_client = NetmasterClient(urls, token=self.token, agent_id=self.identity.host_label,
                                       idle_timeout=self.idle_timeout, local_address=source)
        self._ops_client = NetmasterClient(urls, token=self.token, retry_for=self.request_wait,
                                           timeout=max(1.0, min(5.0, self.request_wait)), local_address=source)
        self._watch_client = watch_client
        self._informer = Informer(watch_client, kinds=KINDS, on_add=self._mirror, on_update=self._replace,
                                  on_delete=self._forget, on_resync=self._resynced)
        await self._informer.start()
        asyncio.get_running_loop().create_task(self._heartbeat(), name="agent-heartbeat")
        self._started.set()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run *coro* on the sync loop from another thread and wait for its result."""
        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def ops(self, fn: Callable[[NetmasterClient], Awaitable[T]]) -> T:
        """Run an endpoint call with the client whose retries stop after ``request_wait``."""
        return self.ops_started(fn).result(self.ops_timeout)

    @property
    def ops_timeout(self) -> float:
        """How long an endpoint call may take at most (its retries stop after ``request_wait``)."""
        return self.request_wait + 30

    def ops_started(self, fn: Callable[[NetmasterClient], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """``ops`` without waiting: the caller does other work meanwhile, then takes the result (wait
        at most ``ops_timeout``)."""
        assert self._ops_client is not None, "start() first"
        assert self._loop is not None
        client = self._ops_client

        async def run() -> T:
            return await fn(client)

        return asyncio.run_coroutine_threadsafe(run(), self._loop)

    # -- informer handlers (on the loop thread) -----------------------------------------------------

    def _mirror(self, state: ObjectState) -> None:
        with self._lock:
            if state.kind == "agent" and state.id not in self._objects:
                self._returned[state.key] = time.monotonic()
            self._objects[state.id] = NmObject(state.kind, state.key, state.object or {}, state.status)
            if state.kind == "endpoint":
                self._retained.drop(state.key)
        self._wake.set()

    def _replace(self, _old: ObjectState, new: ObjectState) -> None:
        self._mirror(new)

    def _forget(self, old: ObjectState) -> None:
        with self._lock:
            self._objects.pop(old.id, None)
            host = (old.object or {}).get("host", "")
            if old.kind == "agent":
                self._returned.pop(old.key, None)
            elif (old.kind == "endpoint" and host and host != self.identity.host_label
                  and ("agent", host) not in self._objects and self._serves_tenant(old)):
                LOG.info("endpoint %s of absent host %s deleted in netmaster; forwarding to it is kept "
                         "until its host re-claims it or its address is reused", old.key, host)
                self._retained.keep(NmObject(old.kind, old.key, old.object or {}, old.status))
        self._wake.set()

    def _serves_tenant(self, endpoint: ObjectState) -> bool:
        """Whether this host runs an endpoint of *endpoint*'s tenant: only then can it need forwarding to
        it. netmaster sends a host only the endpoints of its span (netmaster.api.span), and a re-list
        after the span narrowed drops the rest, which is no reason to retain them."""
        tenant = (endpoint.object or {}).get("tenantName", "default")
        return any(rec.tenant == tenant for rec in self.local.all().values())

    def _resynced(self, revision: int) -> None:
        LOG.info("netmaster snapshot at revision %d: %d objects", revision, len(self._objects))
        self._wake.set()

    async def _heartbeat(self) -> None:
        ident = self.identity
        body = {"vtepIP": ident.vtep_ip, "ctrlIP": ident.ctrl_ip, "version": ident.version, "ttl": ident.ttl,
                "inspectURL": ident.inspect_url}
        path = f"/api/v1/agents/{ident.host_label}/"
        while True:
            assert self._ops_client is not None
            conflicts = sorted(self.conflicts.values(), key=lambda c: c["endpointID"])
            try:
                bgp = self.bgp_neighbors() if self.bgp_neighbors else None
                extra = {**({"conflicts": conflicts} if conflicts else {}), **({"bgp": bgp} if bgp else {})}
                await self._ops_client.request("PUT", path, {**body, **extra})
                if self._heartbeat_ok is not True:
                    LOG.info("registered with netmaster as %s (vtep %s)", ident.host_label, ident.vtep_ip or "-")
                    if self._watch_client is not None:
                        self._watch_client.retry_now()  # netmaster is back: the watch need not wait
                    self.reconnects += 1  # agent.reclaim verifies every local endpoint after each
                self._heartbeat_ok = True
            except NetmasterError as exc:
                if self._heartbeat_ok is not False:
                    LOG.warning("netmaster %s not reachable (%s); retrying, serving the last known state",
                                self.urls, exc.message)
                self._heartbeat_ok = False
            await asyncio.sleep(ident.ttl / 3)

    # -- the overlay of this agent's own endpoint calls --------------------------------------------

    def note_endpoint(self, record: dict[str, Any]) -> None:
        """netmaster created *record*: use it now, before its watch event arrives."""
        with self._lock:
            self._overlay[record["endpointID"]] = record

    def note_deleted(self, endpoint_id: str) -> None:
        with self._lock:
            self._overlay[endpoint_id] = _DELETED

    # -- building and applying ---------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._informer is not None and self._informer.synced

    def wait_synced(self, timeout: float) -> bool:
        """Whether the first snapshot arrives within *timeout* seconds (from another thread).

        An endpoint ADD that finds the agent not yet synced (just started, or netmaster just back)
        waits this long rather than failing at once: it needs netmaster anyway, and the watch is
        told to reconnect now instead of at the end of its backoff delay.
        """
        if self.synced:
            return True
        if self._loop is None or self._informer is None or self._watch_client is None:
            return False
        informer, watch = self._informer, self._watch_client

        async def wait() -> bool:
            watch.retry_now()
            try:
                await asyncio.wait_for(informer.wait_synced(), timeout)
            except TimeoutError:
                return False
            return True

        return self.call(wait(), timeout + 5)

    @property
    def netmaster_reachable(self) -> bool:
        return bool(self._heartbeat_ok)

    def _objects_now(self) -> list[NmObject]:
        with self._lock:
            objects = dict(self._objects)
            for ep_id, record in list(self._overlay.items()):
                key = ("endpoint", ep_id)
                seen = objects.get(key)
                if record is _DELETED:
                    if seen is None:
                        del self._overlay[ep_id]  # the watch caught up (or it never existed)
                    objects.pop(key, None)
                elif seen is not None and seen.object == record:
                    del self._overlay[ep_id]
                else:
                    objects[key] = NmObject("endpoint", ep_id, record)
        return list(objects.values())

    def _retained_now(self) -> list[NmObject]:
        """Retained endpoints whose host has not been back for long (the others are dropped now)."""
        now = time.monotonic()
        with self._lock:
            for obj in self._retained.all():
                back = self._returned.get(obj.object.get("host", ""))
                if back is not None and now - back >= RETAIN_AFTER_RETURN:
                    LOG.info("endpoint %s was not re-claimed by its returned host; forwarding to it ends", obj.key)
                    self._retained.drop(obj.key)
            return self._retained.all()

    def build(self) -> DesiredState | None:
        """The current desired state, or None before the first snapshot."""
        if not self.synced or self._informer is None:
            return None
        revision = self._informer.revision or 0
        local = self.local.all()
        retained = self._retained_now()
        objects, self._unlisted = with_last_known(self._objects_now(), local, retained, self.identity.host_label)
        self.metrics.retained_endpoints.set(len({o.key for o in retained} & {o.key for o in objects}))
        return build_state(objects, local, self.identity.host_label, revision)

    def cached_endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        """The endpoint's record as the watch last described it (None if absent)."""
        with self._lock:
            obj = self._objects.get(("endpoint", endpoint_id))
        return obj.object if obj is not None else None

    def unlisted(self) -> dict[str, str]:
        """Local endpoints the last build found missing from netmaster (id -> the listed endpoint holding
        their address or id, '' if none): the re-claim candidates."""
        return dict(self._unlisted)

    def partition_info(self) -> dict[str, Any]:
        """For the agent's inspect: what this host keeps that netmaster does not list."""
        with self._lock:
            retained = sorted(o.key for o in self._retained.all())
        return {"reachable": self.netmaster_reachable, "unlisted_local": self.unlisted(),
                "conflicts": dict(self.conflicts), "retained_remote": retained}

    def sync(self, force: bool = False, apply: Callable[[DesiredState], None] | None = None) -> DesiredState | None:
        """Build and apply now, in the caller's thread. Raises what the apply raised.

        With *apply* (EndpointOps: ``Reconciler.reconcile_flows``) this is the quick apply of the
        endpoint path: it runs whenever no apply built after the caller's change has finished yet,
        and does not count as a full apply (the run loop's next sync still converges everything)."""
        quick = apply is not None
        with self._ticket_lock:
            self._sync_tickets += 1
            ticket = self._sync_tickets
        with self._apply_lock:
            if not force and (self._covered_quick if quick else self._covered_full) >= ticket:
                return self._applied  # an apply built after our changes were noted has finished
            with self._ticket_lock:
                covers = self._sync_tickets
            state = self.build()
            if state is None and quick and self._applied is not None:
                # not synced since the start (netmaster away): an endpoint delete still takes its flows
                # out of the saved state being served
                self._applied = self._recorded_only(self._applied)
                apply(self._applied)
                return self._applied
            if state is None or self._apply is None:
                return None
            if apply is not None:  # quick: covers only quick callers
                apply(state)
                self._quick_since_full = True
                self._covered_quick = max(self._covered_quick, covers)
                return state
            if force or self._quick_since_full or state != self._applied:
                self._apply(state)
                self._applied, self._quick_since_full = state, False
                self._save(state)
                # Only an apply that ran covers quick callers: their ports may be newer than the last one.
                self._covered_quick = max(self._covered_quick, covers)
            self._covered_full = max(self._covered_full, covers)
            return state

    def request_sync(self) -> None:
        """Ask the run loop for a full apply soon (after an endpoint call's quick apply)."""
        now = time.monotonic()
        with self._ticket_lock:
            self._burst_started = self._burst_started or now
            self._burst_last = now
        self._wake.set()

    def _settle(self) -> None:
        """During a burst of endpoint calls, hold the full apply back until the calls pause for
        ``SETTLE`` seconds (at most ``SETTLE_MAX`` after the first): a full apply holds the apply lock
        the calls' quick applies need, and one at the end of the burst does the job of many."""
        while not self._stop.is_set():
            with self._ticket_lock:
                if not self._burst_started:
                    return
                now = time.monotonic()
                until = min(self._burst_last + SETTLE, self._burst_started + SETTLE_MAX)
                if now >= until:
                    self._burst_started = 0.0
                    return
            self._stop.wait(until - now)

    def _save(self, state: DesiredState) -> None:
        if self.cache_file is not None:
            try:
                state.save(self.cache_file)
            except OSError as exc:
                LOG.warning("cannot save the last state to %s: %s", self.cache_file, exc)

    def _apply_cached(self) -> None:
        """Before netmaster answers: re-apply the last state this host applied (after a restart), less
        the local endpoints whose record is gone (deleted since, e.g. a delete the restart interrupted
        and EndpointOps.resume finished: the saved state must not plumb them again)."""
        if self.cache_file is None or not self.cache_file.exists():
            return
        try:
            state = DesiredState.load(self.cache_file)
        except (OSError, ValueError, TypeError) as exc:
            LOG.warning("ignoring the saved state %s: %s", self.cache_file, exc)
            return
        state = self._recorded_only(state)
        with self._apply_lock:
            if self._applied is None and self._apply is not None:
                LOG.info("applying the last known state (revision %d) until netmaster answers", state.revision)
                self._apply(state)
                self._applied = state

    def _recorded_only(self, state: DesiredState) -> DesiredState:
        """*state* (a saved one, served while netmaster is away) less this host's endpoints whose local
        record is gone: deleted meanwhile, they must not be plumbed again."""
        records, me = self.local.all(), self.identity.host_label
        kept = tuple(ep for ep in state.endpoints if ep.host != me or ep.id in records)
        return state if kept == state.endpoints else dataclasses.replace(state, endpoints=kept)

    def _reapply(self) -> None:
        with self._apply_lock:
            if self._applied is not None and self._apply is not None:
                self._applied = self._recorded_only(self._applied)
                self._apply(self._applied)

    # -- StateSource --------------------------------------------------------------------------------

    def poke(self) -> None:
        self._force = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self, apply: Callable[[DesiredState], None]) -> None:
        self._apply = apply
        self.start()
        waiting_since = time.monotonic()
        last_warning = 0.0
        cached_tried = False
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            if not self.synced:
                if not cached_tried:
                    cached_tried = True
                    self._try(self._apply_cached)
                elif self._force:  # the switch reconnected meanwhile: replay what it had
                    self._force = False
                    self._try(self._reapply)
                if time.monotonic() - last_warning >= 10:
                    last_warning = time.monotonic()
                    LOG.warning("waiting for netmaster %s (%.0f s so far); retrying", self.urls,
                                time.monotonic() - waiting_since)
                continue
            self._settle()
            force, self._force = self._force, False
            if not self._try(lambda f=force: self.sync(f)):  # type: ignore[misc]
                self._force = force
                self._stop.wait(1.0)
                self._wake.set()
        self.close()

    def _try(self, fn: Callable[[], Any]) -> bool:
        try:
            fn()
            return True
        except Exception:
            LOG.exception("applying netmaster state failed; retrying")
            return False

    def close(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            if self._informer is not None:
                await self._informer.stop()
                await self._informer.client.close()
            if self._ops_client is not None:
                await self._ops_client.close()

        try:
            self.call(shutdown(), timeout=5)
        except Exception as exc:  # shutting down anyway
            LOG.debug("closing the netmaster client: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        self._loop = None
