"""The ACI reconciler: keeps every app profile in the APIC (through aci-gw) equal to netmaster's intent.

Level-triggered, not event-replaying: a change to any object wakes the profiles it may affect (all
profiles of the object's tenant; all profiles for ``global`` and ``aciGw``); each woken profile
recomputes its payload from the current objects and pushes only if the payload's hash differs from
the last one the gateway accepted. So a rule change re-pushes exactly the profiles whose contracts
it alters, and a burst of changes (a script creating ten rules) gives one push per profile: each
profile waits a short debounce after being woken, and never has more than one push in flight.

Failures are retried with exponential backoff (with jitter, capped); a new change retries at once.
Each profile's push state is kept in the store at ``/contiv/aci/appProfile/<key>``::

    {"state": "pending" | "synced" | "failed", "operation": "create" | "delete",
     "reason": "<gateway or APIC message>", "payloadHash": ..., "syncedHash": ...,
     "lastAttempt": <unix time>, "lastSync": <unix time>, "attempts": <consecutive failures>}

and shown by ``GET /api/v1/inspect/appProfiles/<key>/`` as ``Oper.aciSync``. On start every profile
is pushed once (aci-gw answers an unchanged profile with a single APIC read), which also repairs
drift made in the APIC while netmaster was down.

Between pushes aci-gw watches the APIC and repairs drift itself; the reconciler reads the gateway's
drift state every ``drift_interval`` seconds and adds it to the record: ``repairs``,
``driftRepairedAt``, ``driftDetectedAt`` and ``lastDrift`` (as counted since aci-gw started). A repair
also moves ``lastSync`` forward, so agents announce their endpoints again (a re-created EPG has lost
what the fabric learnt). When the gateway restarted (its ``startedAt`` changed), every profile is
pushed again, because the new process knows no intent to watch until it is pushed.

Every push carries a fencing token: the store revision at which this reconciler started, higher for
each later leader, so a gateway refuses the pushes of a leader that was replaced (see aci_gw.fencing).

The reconciler only acts when ``global.networkInfraType`` is ``aci``. It is a start/stop object so that
HA can run it on the leader only (see :mod:`netmaster.aci.controller`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from netmaster.aci.client import AciGwClient, GatewayUnavailable
from netmaster.aci.follower import ObjectFollower
from netmaster.aci.payload import BuildError, ObjectView, build_payload, delete_payload, payload_hash
from netmaster.objects.index import ObjectIndex
from netmaster.store import keys
from netmaster.store.base import Store, StoreError
from netmaster.store.cache import cached

log = logging.getLogger("netmaster.aci")

#: Kinds whose change may alter the payload of every profile, whatever their tenant.
_GLOBAL_KINDS = frozenset({"global", "aciGw"})
#: Kinds that never take part in a payload.
_IGNORED_KINDS = frozenset({"Bgp", "serviceLB", "netprofile", "tenant"})


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter between ``initial`` and ``maximum`` seconds."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempts: int) -> float:
        bound = min(self.maximum, self.initial * 2 ** max(attempts - 1, 0))
        return random.uniform(bound / 2, bound)


@dataclass
class _Desired:
    operation: str  # create | delete | none (nothing to send: empty profile or unbuildable)
    payload: dict[str, Any]
    hash: str
    error: str = ""  # why nothing can be sent (unbuildable)
    note: str = ""  # said in the push state next to the gateway's answer


class _Profile:
    """One app profile's worker: woken by changes, debounced, one push at a time."""

    def __init__(self, key: str, record: dict[str, Any] | None) -> None:
        self.key = key
        self.wake = asyncio.Event()
        self.record: dict[str, Any] = dict(record or {})
        self.task: asyncio.Task[None] | None = None
        # Whether this run has pushed the profile: the stored syncedHash may be stale (APIC edited or
        # restored while netmaster was down), so the first pass of every run pushes regardless.
        self.verified = False


class AciReconciler:
    def __init__(
        self,
        store: Store,
        client: AciGwClient,
        *,
        retry: RetryPolicy | None = None,
        debounce: float = 0.05,
        drift_interval: float = 2.0,
        index: ObjectIndex | None = None,
    ) -> None:
        self.store = store
        # netmaster passes its shared object index; standing alone, the reconciler keeps its own.
        self.index = index or ObjectIndex(cached(store))
        self.client = client
        self.retry = retry or RetryPolicy()
        self.debounce = debounce
        self.follower = ObjectFollower(self.index, self._on_change)
        self._profiles: dict[str, _Profile] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.drift_interval = drift_interval
        self.fencing_token: int | None = None
        self._gateway_started: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the push states, then follow the store; returns once running (not once synced)."""
        if self._tasks:
            return
        kvs, _ = await self.store.list(keys.aci_sync())
        for kv in kvs:
            key = kv.key[len(keys.aci_sync()) :]
            self._profiles[key] = _Profile(key, json.loads(kv.value))
        try:
            self.fencing_token = await self.store.put(keys.ACI + "fencing", json.dumps({"startedAt": time.time()}))
        except StoreError as exc:  # pushes still work, unfenced, as Contiv's did
            log.warning("ACI fencing token not taken (%s): pushes go without one", exc)
            self.fencing_token = None
        self._tasks.append(asyncio.create_task(self.follower.run(), name="aci-follower"))
        self._tasks.append(asyncio.create_task(self._follow_drift(), name="aci-drift"))

    async def stop(self) -> None:
        """Cancel the follower and every worker; in-flight pushes are abandoned (the next leader re-pushes)."""
        tasks = self._tasks + [p.task for p in self._profiles.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._profiles.clear()
        self._gateway_started = None
        self.follower = ObjectFollower(self.index, self._on_change)

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    # -- change routing ----------------------------------------------------------------------------

    def _on_change(self, kind: str | None, key: str | None) -> None:
        view = self.follower.objects
        if kind is None or kind in _GLOBAL_KINDS:
            affected = set(view.get("appProfile", {})) | set(self._profiles)
        elif kind in _IGNORED_KINDS:
            return
        elif kind == "appProfile" and key is not None:
            affected = {key}
        else:
            tenant = (key or "").split(":", 1)[0]
            affected = {k for k in view.get("appProfile", {}) if k.split(":", 1)[0] == tenant}
        for profile_key in affected:
            self._wake(profile_key)

    def _wake(self, key: str) -> None:
        profile = self._profiles.get(key)
        if profile is None:
            profile = self._profiles[key] = _Profile(key, None)
        if profile.task is None or profile.task.done():
            profile.task = asyncio.create_task(self._work(profile), name=f"aci-push-{key}")
        profile.wake.set()

    # -- one profile -------------------------------------------------------------------------------

    def _desired(self, key: str) -> _Desired:
        view = ObjectView(self.follower.objects)
        config = view.config("appProfile", key)
        if config is None:
            payload: dict[str, Any] = delete_payload(key)
            return _Desired("delete", payload, payload_hash(payload))
        if not config["endpointGroups"]:
            # aci-gw refuses a profile without EPGs; what the APIC should hold for it is nothing.
            payload = delete_payload(key)
            return _Desired(
                "delete", payload, payload_hash({"empty": key}), note="no endpoint groups, so nothing in the APIC: "
            )
        try:
            payload = build_payload(view, key)
        except BuildError as exc:
            return _Desired("none", {}, "", str(exc))
        except Exception as exc:  # a bug: reported in the push state and the log, the worker lives on
            log.exception("building the payload of %s failed", key)
            return _Desired("none", {}, "", f"internal error building the payload: {type(exc).__name__}: {exc}")
        return _Desired("create", payload, payload_hash(payload))

    async def _work(self, profile: _Profile) -> None:
        attempts = 0
        while True:
            await profile.wake.wait()
            await asyncio.sleep(self.debounce)  # let the rest of a burst arrive
            profile.wake.clear()
            if self.follower.infra_type() != "aci":
                continue
            desired = self._desired(profile.key)
            exists = profile.key in self.follower.objects.get("appProfile", {})
            if not exists and not profile.record:
                self._profiles.pop(profile.key, None)
                return  # created and deleted before any push: nothing in the APIC to remove
            if desired.error:
                attempts = 0
                await self._save(profile, state="failed", reason=desired.error, payloadHash="", attempts=0)
                continue
            record = profile.record
            if profile.verified and record.get("state") == "synced" and record.get("syncedHash") == desired.hash:
                continue
            await self._save(profile, state="pending", operation=desired.operation, payloadHash=desired.hash)
            ok, reason = await self._push(desired)
            now = time.time()
            if ok:
                attempts = 0
                profile.verified = True
                if not exists:
                    if profile.key in self.follower.objects.get("appProfile", {}):
                        continue  # re-created while the delete was in flight: its wake is pending
                    await self._forget(profile)
                    return
                await self._save(
                    profile,
                    state="synced",
                    reason=desired.note + reason,
                    syncedHash=desired.hash,
                    lastSync=now,
                    lastAttempt=now,
                    attempts=0,
                )
                continue
            attempts += 1
            await self._save(profile, state="failed", reason=reason, lastAttempt=now, attempts=attempts)
            delay = self.retry.delay(attempts)
            log.warning("ACI push of %s failed (attempt %d, retry in %.1fs): %s", profile.key, attempts, delay, reason)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(profile.wake.wait(), delay)
            profile.wake.set()

    async def _push(self, desired: _Desired) -> tuple[bool, str]:
        try:
            if desired.operation == "delete":
                result = await self.client.delete_app_profile(desired.payload, self.fencing_token)
            else:
                result = await self.client.create_app_profile(desired.payload, self.fencing_token)
        except GatewayUnavailable as exc:
            return False, str(exc)
        return result.ok, result.info if result.ok else result.reason

    # -- drift repaired by the gateway ------------------------------------------------------------

    async def _follow_drift(self) -> None:
        while True:
            await asyncio.sleep(self.drift_interval)
            if self.follower.infra_type() != "aci":
                continue
            try:
                status = await self.client.drift()
            except GatewayUnavailable as exc:
                log.debug("aci-gw drift state not read: %s", exc)
                continue
            await self._apply_drift(status)

    async def _apply_drift(self, status: dict[str, Any]) -> None:
        started = status.get("startedAt")
        if self._gateway_started is not None and started != self._gateway_started:
            log.info("aci-gw restarted: pushing every app profile again so that it watches them")
            for key, profile in list(self._profiles.items()):
                profile.verified = False
                self._wake(key)
        self._gateway_started = started
        for item in status.get("appProfiles") or []:
            profile = self._profiles.get(f"{item.get('tenant')}:{item.get('app')}")
            if profile is None or not profile.record:
                continue
            changes: dict[str, Any] = {
                "repairs": item.get("repairs", 0),
                "driftRepairedAt": item.get("driftRepairedAt"),
                "driftDetectedAt": item.get("driftDetectedAt"),
                "lastDrift": item.get("lastDrift") or [],
            }
            repaired = item.get("driftRepairedAt")
            if repaired and profile.record.get("state") == "synced" and repaired > profile.record.get("lastSync", 0):
                changes["lastSync"] = repaired
            await self._save(profile, **changes)

    async def _save(self, profile: _Profile, **changes: Any) -> None:
        record = {**profile.record, **changes}
        if record == profile.record:
            return
        profile.record = record
        try:
            await self.store.put(keys.aci_sync(profile.key), json.dumps(record, separators=(",", ":")))
        except StoreError as exc:  # the push state is informational; the push itself is what matters
            log.warning("ACI push state of %s not saved: %s", profile.key, exc)

    async def _forget(self, profile: _Profile) -> None:
        if self._profiles.get(profile.key) is profile:
            del self._profiles[profile.key]
        try:
            await self.store.delete(keys.aci_sync(profile.key))
        except StoreError as exc:
            log.warning("ACI push state of %s not removed: %s", profile.key, exc)
