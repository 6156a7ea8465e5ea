"""The gateway's operations, independent of HTTP: validate, push, delete, endpoint lookup, health,
and keeping the fabric as pushed (the drift watch and its repairs).

A push is: read the tenant subtree (one GET), read tenant common or other DNs only when the request
needs facts from there, translate, diff, and send the difference as one POST. Pushes of one tenant are
serialised (read-diff-write must not interleave); different tenants proceed in parallel. Replies are
Contiv's ``{"result": ..., "info": ...}`` with its result codes; a push also reports how many APIC
objects it changed. A push may carry a fencing token (:mod:`aci_gw.fencing`): one older than the
token recorded on the tenant is refused.

After a successful push the gateway remembers the intent (:mod:`aci_gw.drift`) and watches the tenant
(:mod:`aci_gw.watch`); an APIC change that departs from the intent is repaired with the same
read-diff-POST (:mod:`aci_gw.repair`), or only reported when ``APIC_DRIFT_REPAIR=no``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from aci_gw import fencing
from aci_gw.apic import ApicClient, ApicError, ApicUnavailable
from aci_gw.apic.rest import RestClient
from aci_gw.batch import Batcher
from aci_gw.config import ConfigError, GatewaySettings
from aci_gw.drift import Drift, DriftLedger, Intent, IntentBook, tenant_of
from aci_gw.metrics import Metrics
from aci_gw.mo import Mo
from aci_gw.ownership import owner_app
from aci_gw.reconcile import Plan, plan_delete, plan_push
from aci_gw.repair import RepairQueue
from aci_gw.translate import (
    ApicFacts,
    TranslationError,
    external_dns_outside,
    needs_common_bds,
    translate,
)
from aci_gw.watch import DriftWatch
from contiv_api.aci_gw_payload import (
    AppProfileRequest,
    PayloadError,
    parse_app_profile,
    parse_delete,
    parse_endpoint_query,
)

log = logging.getLogger("aci_gw")
drift_log = logging.getLogger("aci_gw.drift")

Reply = dict[str, Any]


def reply(result: str, info: str, **extra: Any) -> Reply:
    return {"result": result, "info": info, **extra}


@dataclass(frozen=True)
class _Push:
    req: AppProfileRequest
    fabric: Any
    token: int | None

    @property
    def what(self) -> str:
        return f"app profile {self.req.tenant}/{self.req.app}"


class Gateway:
    def __init__(self, settings: GatewaySettings, client: ApicClient | None, metrics: Metrics) -> None:
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._batcher: Batcher[_Push, tuple[Reply, Plan | None]] = Batcher(self._push_batch, lambda p: p.req.tenant)
        self.intents = IntentBook()
        self.ledger = DriftLedger()
        self.started_at = time.time()  # netmaster re-pushes everything when this changes (a restart)
        drift = settings.drift
        self.watch: DriftWatch | None = None
        self.repairs: RepairQueue | None = None
        if drift.watch and isinstance(client, RestClient) and not client.conn.uses_certificate:
            self.watch = DriftWatch(client, self._on_event, self._on_resync, timeout=drift.subscription_timeout,
                                    observe=metrics.subscribed)
            self.repairs = RepairQueue(self._repair, interval=drift.repair_interval)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the drift watch and the repair thread (no-op in dry-run mode or when switched off)."""
        if self.watch is not None and self.repairs is not None:
            self.repairs.start()
            self.watch.start()
            log.info("drift watch on (%s)", "repair" if self.settings.drift.repair else "report only, no repair")
        elif self.client is not None and self.settings.drift.watch:
            log.warning("drift watch off: it needs the REST backend with password authentication")

    def close(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        if self.repairs is not None:
            self.repairs.stop()

    def _tenant_lock(self, tenant: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(tenant, threading.Lock())

    @property
    def apic(self) -> ApicClient:
        if self.client is None:
            raise RuntimeError("no APIC client in dry-run mode")
        return self.client

    # -- Contiv API ----------------------------------------------------------------------------
    def validate(self, body: Any) -> Reply:
        """Schema and fabric settings only; never contacts the APIC."""
        try:
            req = parse_app_profile(body)
            self.settings.fabric.merged(req.gw_config).validate()
        except PayloadError as exc:
            return reply("failed", str(exc))
        except ConfigError as exc:
            return reply("error-gw-config", str(exc))
        return reply("success", "LGTM")

    def create(self, body: Any, token: int | None = None) -> Reply:
        started = time.monotonic()
        plan: Plan | None = None
        try:
            req = parse_app_profile(body)
            fabric = self.settings.fabric.merged(req.gw_config)
            fabric.validate()
        except PayloadError as exc:
            result = reply("invalid-args", str(exc))
        except ConfigError as exc:
            result = reply("error-gw-config", str(exc))
        else:
            if self.client is None:
                result = reply("success", "LGTM (dry run, APIC_URL=SANITY: nothing sent)")
            else:
                result, plan = self._batcher.submit(_Push(req, fabric, token))
        self.metrics.push("create", result["result"], time.monotonic() - started, plan)
        return result

    def _push_batch(self, pushes: list[_Push]) -> list[tuple[Reply, Plan | None]]:
        """Pushes of distinct tenants (from the batcher): one read of every tenant, then one POST of
        every difference to ``uni``. A lone push reads and writes its tenant's DN, as always."""
        with contextlib.ExitStack() as locks:
            for tenant in sorted(p.req.tenant for p in pushes):
                locks.enter_context(self._tenant_lock(tenant))
            if len(pushes) == 1:
                return [self._push(pushes[0].req, pushes[0].fabric, pushes[0].token)]
            try:
                tenants = self.apic.read_tenants([p.req.tenant for p in pushes])
            except ApicError as exc:
                log.error("push of %d tenants: reading the APIC failed: %s", len(pushes), exc)
                return [(reply("failed", f"{exc}; nothing was written"), None) for _ in pushes]
            prepared = [self._prepare(p.req, p.fabric, p.token, tenants) for p in pushes]
            results: list[tuple[Reply, Plan | None]] = []
            writes: list[tuple[int, _Push, Plan]] = []
            for i, (push, (plan, failure)) in enumerate(zip(pushes, prepared, strict=True)):
                if plan is None:
                    results.append((failure or reply("failed", "nothing planned"), None))
                elif plan.tree is None or len([p for p in prepared if p[0] and p[0].tree is not None]) == 1:
                    results.append(self._apply(f"uni/tn-{push.req.tenant}", plan, push.what))
                else:
                    results.append((reply("failed", "not written"), None))
                    writes.append((i, push, plan))
            if writes:
                for i, result in self._apply_together(writes):
                    results[i] = result
            for push, (result, _) in zip(pushes, results, strict=True):
                if self.watch is not None and result["result"] == "success":
                    self.watch.watch(push.req.tenant)
            return results

    def _apply_together(self, writes: list[tuple[int, _Push, Plan]]) -> list[tuple[int, tuple[Reply, Plan | None]]]:
        """One POST for several tenants; refused as a whole, each tenant is tried alone, so one bad
        profile cannot hold the others back."""
        tree = Mo("polUni", {}, [plan.tree for _, _, plan in writes if plan.tree is not None])
        try:
            self.apic.commit("uni", tree)
        except ApicUnavailable as exc:
            return [(i, self._unconfirmed(exc, push.what)) for i, push, _ in writes]
        except ApicError as exc:
            log.warning("POST of %d tenants refused (%s): writing each tenant alone", len(writes), exc)
            return [(i, self._apply(f"uni/tn-{push.req.tenant}", plan, push.what)) for i, push, plan in writes]
        return [(i, self._applied(plan, push.what, f"one POST with {len(writes) - 1} other tenants"))
                for i, push, plan in writes]

    def _facts(self, req: AppProfileRequest, fabric: Any, tenants: dict[str, Mo | None] | None = None) -> ApicFacts:
        if tenants is not None:
            tenant = tenants.get(req.tenant)
        else:
            tenant = self.apic.read(f"uni/tn-{req.tenant}", config_only=True)
        outside = external_dns_outside(req)
        common_bds: set[str] = set()
        existing: set[str] = set()
        if needs_common_bds(req, fabric, tenant) or any(dn.startswith("uni/tn-common/") for dn in outside):
            for mo in self.apic.children("uni/tn-common", ("fvBD", "vzBrCP")):
                existing.add(mo.attrs.get("dn", ""))
                if mo.cls == "fvBD":
                    common_bds.add(mo.attrs.get("name", ""))
        for dn in outside:
            if not dn.startswith("uni/tn-common/") and self.apic.exists(dn):
                existing.add(dn)
        return ApicFacts(tenant, frozenset(common_bds), frozenset(existing))

    def _plan(self, req: AppProfileRequest, fabric: Any, token: int | None,
              tenants: dict[str, Mo | None] | None = None) -> tuple[Mo, Plan, int | None]:
        """Read (unless ``tenants`` holds the tenant already), check the fencing token, translate and
        diff: the intent and what it takes."""
        facts = self._facts(req, fabric, tenants)
        recorded = fencing.check(f"uni/tn-{req.tenant}", facts.tenant, token)
        desired = translate(req, fabric, facts)
        fencing.mark(desired, recorded)
        return desired, plan_push(desired, facts.tenant, req.app), recorded

    def _prepare(self, req: AppProfileRequest, fabric: Any, token: int | None,
                 tenants: dict[str, Mo | None] | None = None) -> tuple[Plan | None, Reply | None]:
        """The plan of a push, or the reply that says why there is none; the intent is remembered
        before anything is written, so that the watch's echo of the POST matches it."""
        try:
            desired, plan, recorded = self._plan(req, fabric, token, tenants)
        except TranslationError as exc:
            return None, reply(exc.result, str(exc))
        except fencing.StaleToken as exc:
            self.metrics.fencing_refusals.inc()
            log.error("push %s/%s refused: %s", req.tenant, req.app, exc)
            return None, reply("failed", str(exc))
        except ApicError as exc:
            log.error("push %s/%s: reading the APIC failed: %s", req.tenant, req.app, exc)
            return None, reply("failed", f"{exc}; nothing was written")
        self.intents.record(Intent(req, fabric, recorded, desired))
        return plan, None

    def _push(self, req: AppProfileRequest, fabric: Any, token: int | None) -> tuple[Reply, Plan | None]:
        plan, failure = self._prepare(req, fabric, token)
        if plan is None:
            return failure or reply("failed", "nothing planned"), None
        result, applied = self._apply(f"uni/tn-{req.tenant}", plan, f"app profile {req.tenant}/{req.app}")
        if self.watch is not None and result["result"] == "success":
            self.watch.watch(req.tenant)
        return result, applied

    def _apply(self, tenant_dn: str, plan: Plan, what: str) -> tuple[Reply, Plan | None]:
        if plan.tree is None:
            log.info("%s: unchanged, nothing to write", what)
            return reply("success", f"{what} unchanged: nothing to write", changes=0), plan
        try:
            self.apic.commit(tenant_dn, plan.tree)
        except ApicUnavailable as exc:
            return self._unconfirmed(exc, what)
        except ApicError as exc:
            log.error("%s: APIC refused the change: %s", what, exc)
            return reply("failed", f"{exc}; nothing was written (the change is one atomic POST)"), None
        return self._applied(plan, what, "one POST")

    @staticmethod
    def _unconfirmed(exc: ApicError, what: str) -> tuple[Reply, Plan | None]:
        log.error("%s: APIC unavailable: %s", what, exc)
        return reply(
            "failed",
            f"{exc}; the change was one atomic POST that the APIC did not confirm: push again to converge",
        ), None

    @staticmethod
    def _applied(plan: Plan, what: str, how: str) -> tuple[Reply, Plan | None]:
        info = f"{what}: {plan.created} created, {plan.modified} modified, {plan.deleted} deleted in {how}"
        log.info(info)
        return reply("success", info, changes=plan.changes), plan

    def delete(self, body: Any, token: int | None = None) -> Reply:
        started = time.monotonic()
        plan: Plan | None = None
        try:
            tenant, app = parse_delete(body)
        except PayloadError as exc:
            result = reply("invalid-args", str(exc))
        else:
            if self.client is None:
                result = reply("success", "LGTM (dry run, APIC_URL=SANITY: nothing sent)")
            else:
                with self._tenant_lock(tenant):
                    result, plan = self._delete(tenant, app, token)
        self.metrics.push("delete", result["result"], time.monotonic() - started, plan)
        return result

    def _delete(self, tenant: str, app: str, token: int | None) -> tuple[Reply, Plan | None]:
        what = f"app profile {tenant}/{app}"
        try:
            current = self.apic.read(f"uni/tn-{tenant}", config_only=True)
            fencing.check(f"uni/tn-{tenant}", current, token)
        except fencing.StaleToken as exc:
            self.metrics.fencing_refusals.inc()
            log.error("delete %s refused: %s", what, exc)
            return reply("failed", str(exc)), None
        except ApicError as exc:
            return reply("failed", f"{exc}; nothing was written"), None
        self.intents.forget(tenant, app)
        if self.watch is not None and not self.intents.intents(tenant):
            self.watch.unwatch(tenant)
        if current is None or not any(owner_app(mo) == app for mo in current.children):
            return reply("success", f"{what} not found in the APIC: nothing to delete", changes=0), None
        return self._apply(f"uni/tn-{tenant}", plan_delete(tenant, current, app), what)

    def endpoint(self, body: Any) -> Reply:
        """Contiv's /getEndpoint: the fabric-learnt IP and VLAN of a MAC in an EPG."""
        try:
            q = parse_endpoint_query(body)
        except PayloadError as exc:
            return {"result": "error", "msg": str(exc), "ip": "None", "vlan": "None"}
        if self.client is None:
            return {"result": "None", "msg": "dry run (APIC_URL=SANITY)", "ip": "None", "vlan": "None"}
        dn = f"uni/tn-{q.tenant}/ap-{q.app}/epg-{q.epg}/cep-{q.mac}"
        try:
            mo = self.apic.read(dn, subtree="no")
        except ApicError as exc:
            return {"result": "failed", "msg": str(exc), "ip": "None", "vlan": "None"}
        if mo is None:
            return {"result": "None", "msg": "Not found in APIC", "ip": "None", "vlan": "None"}
        encap = mo.attrs.get("encap", "")
        vlan = encap.split("-", 1)[1] if encap.startswith("vlan-") else "None"
        return {"result": "success", "msg": "ok", "ip": mo.attrs.get("ip") or "None", "vlan": vlan}

    # -- drift ---------------------------------------------------------------------------------
    def _on_event(self, cls: str, attrs: dict[str, str]) -> None:
        """One APIC event from the watch (its thread): classify against the intent, queue a repair."""
        drift = self.intents.classify(cls, attrs)
        if drift is None or self.repairs is None:
            return
        self.metrics.drift_detected.labels(drift.kind).inc()
        tenant = tenant_of(drift.dn) or ""
        if drift.kind == "foreign":
            drift_log.info("tenant %s: %s", tenant, drift.describe())
            return
        self.repairs.add(tenant, "drift", drift)

    def _on_resync(self, tenant: str, reason: str) -> None:
        """The watch was interrupted (``reason``): what happened meanwhile is checked with one read."""
        if self.repairs is not None:
            self.repairs.add(tenant, f"watch resumed after {reason}")

    def _repair(self, tenant: str, drifts: list[Drift], reason: str, first_seen: float) -> bool:
        """Bring the tenant back to its intents (the repair queue's thread); True when something was
        written. In report-only mode the diff is computed and logged, never sent. Who made the change
        is read from the APIC's audit log before the repair (after it, the newest record would be the
        repair's own)."""
        wrote = False
        apps = {app for d in drifts for app in d.apps}
        what = "; ".join(d.describe() for d in drifts[:5]) + (f" and {len(drifts) - 5} more" if len(drifts) > 5 else "")
        with self._tenant_lock(tenant):
            who = self._who(drifts)
            for intent in self.intents.intents(tenant):
                if drifts and intent.req.app not in apps:
                    continue
                wrote |= self._repair_app(intent, f"{reason}: {what or 'changes while the watch was down'}; "
                                                  f"changed by {who}", first_seen)
        return wrote

    def _who(self, drifts: list[Drift]) -> str:
        """The APIC users the audit log names for the drifted objects."""
        dns = {d.dn for d in drifts}
        roots = sorted(dn for dn in dns if not any(dn.startswith(other + "/") for other in dns))[:10]
        if not roots:
            return "unknown (changed while the watch was down)"
        try:
            records = self.apic.audit(roots)
        except ApicError as exc:
            return f"unknown (the APIC's audit log could not be read: {exc})"
        users = sorted({r.attrs.get("user", "") for r in records} - {""})
        return ", ".join(users) if users else "unknown (no audit record)"

    def _repair_app(self, intent: Intent, found: str, first_seen: float) -> bool:
        tenant, app = intent.req.tenant, intent.req.app
        try:
            desired, plan, recorded = self._plan(intent.req, intent.fabric, intent.token)
        except fencing.StaleToken as exc:
            self.metrics.drift_repairs.labels("superseded").inc()
            drift_log.warning("app profile %s/%s: not repaired, the intent was superseded: %s", tenant, app, exc)
            self.intents.forget(tenant, app)
            if self.watch is not None and not self.intents.intents(tenant):
                self.watch.unwatch(tenant)
            return False
        except (ApicError, TranslationError) as exc:
            self.metrics.drift_repairs.labels("failed").inc()
            drift_log.error("app profile %s/%s: drift check failed: %s", tenant, app, exc)
            return False
        if plan.tree is None:
            self.metrics.drift_repairs.labels("unchanged").inc()
            return False
        summary = f"{plan.created} to create, {plan.modified} to modify, {plan.deleted} to delete ({found})"
        self.ledger.detected(tenant, app, [found], time.time())
        if not self.settings.drift.repair:
            self.metrics.drift_repairs.labels("reported").inc()
            drift_log.warning("app profile %s/%s drifted, not repaired (APIC_DRIFT_REPAIR=no): %s",
                              tenant, app, summary)
            return False
        self.intents.record(Intent(intent.req, intent.fabric, recorded, desired))
        result, applied = self._apply(f"uni/tn-{tenant}", plan, f"drift repair of {tenant}/{app}")
        if result["result"] != "success":
            self.metrics.drift_repairs.labels("failed").inc()
            return False
        self.metrics.drift_repairs.labels("repaired").inc()
        self.metrics.drift_repair_seconds.observe(time.monotonic() - first_seen)
        if applied is not None:
            self.metrics.written(applied)
        self.ledger.repaired(tenant, app, summary, time.time())
        drift_log.warning("app profile %s/%s drifted and was repaired in one POST: %s", tenant, app, summary)
        return True

    def drift_status(self) -> dict[str, Any]:
        """The read API's view: the watch's state and, per app profile, drift seen and repairs made."""
        return {
            "startedAt": self.started_at,
            "watch": "off" if self.watch is None else ("connected" if self.watch.connected.is_set() else "connecting"),
            "repair": self.settings.drift.repair,
            "watchedTenants": sorted(self.watch.subscribed()) if self.watch is not None else [],
            "appProfiles": self.ledger.view(),
        }

    # -- health --------------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        if self.client is None:
            return True, {"status": "ok", "mode": "dry-run"}
        try:
            info = self.apic.health()
        except ApicError as exc:
            return False, {"status": "unavailable", "error": str(exc)}
        return True, {"status": "ok", **info}
