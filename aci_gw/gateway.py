"""The gateway's operations, independent of HTTP: validate, push, delete, endpoint lookup, health.

A push is: read the tenant subtree (one GET), read tenant common or other DNs only when the request
needs facts from there, translate, diff, and send the difference as one POST. Pushes of one tenant are
serialised (read-diff-write must not interleave); different tenants proceed in parallel. Replies are
Contiv's ``{"result": ..., "info": ...}`` with its result codes; a push also reports how many APIC
objects it changed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from aci_gw.apic import ApicClient, ApicError, ApicUnavailable
from aci_gw.config import ConfigError, GatewaySettings
from aci_gw.metrics import Metrics
from aci_gw.ownership import owner_app
from aci_gw.reconcile import Plan, plan_delete, plan_push
from aci_gw.translate import (
    ApicFacts,
    TranslationError,
    external_dns_outside,
    needs_common_bds,
    translate,
)
from contiv_api.aci_gw_payload import (
    AppProfileRequest,
    PayloadError,
    parse_app_profile,
    parse_delete,
    parse_endpoint_query,
)

log = logging.getLogger("aci_gw")

Reply = dict[str, Any]


def reply(result: str, info: str, **extra: Any) -> Reply:
    return {"result": result, "info": info, **extra}


class Gateway:
    def __init__(self, settings: GatewaySettings, client: ApicClient | None, metrics: Metrics) -> None:
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

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

    def create(self, body: Any) -> Reply:
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
                with self._tenant_lock(req.tenant):
                    result, plan = self._push(req, fabric)
        self.metrics.push("create", result["result"], time.monotonic() - started, plan)
        return result

    def _facts(self, req: AppProfileRequest, fabric: Any) -> ApicFacts:
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

    def _push(self, req: AppProfileRequest, fabric: Any) -> tuple[Reply, Plan | None]:
        try:
            facts = self._facts(req, fabric)
            desired = translate(req, fabric, facts)
            plan = plan_push(desired, facts.tenant, req.app)
        except TranslationError as exc:
            return reply(exc.result, str(exc)), None
        except ApicError as exc:
            log.error("push %s/%s: reading the APIC failed: %s", req.tenant, req.app, exc)
            return reply("failed", f"{exc}; nothing was written"), None
        return self._apply(f"uni/tn-{req.tenant}", plan, f"app profile {req.tenant}/{req.app}")

    def _apply(self, tenant_dn: str, plan: Plan, what: str) -> tuple[Reply, Plan | None]:
        if plan.tree is None:
            log.info("%s: unchanged, nothing to write", what)
            return reply("success", f"{what} unchanged: nothing to write", changes=0), plan
        try:
            self.apic.commit(tenant_dn, plan.tree)
        except ApicUnavailable as exc:
            log.error("%s: APIC unavailable: %s", what, exc)
            return reply(
                "failed",
                f"{exc}; the change was one atomic POST that the APIC did not confirm: "
                "push again to converge",
            ), None
        except ApicError as exc:
            log.error("%s: APIC refused the change: %s", what, exc)
            return reply("failed", f"{exc}; nothing was written (the change is one atomic POST)"), None
        info = (f"{what}: {plan.created} created, {plan.modified} modified, {plan.deleted} deleted "
                "in one POST")
        log.info(info)
        return reply("success", info, changes=plan.changes), plan

    def delete(self, body: Any) -> Reply:
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
                    result, plan = self._delete(tenant, app)
        self.metrics.push("delete", result["result"], time.monotonic() - started, plan)
        return result

    def _delete(self, tenant: str, app: str) -> tuple[Reply, Plan | None]:
        what = f"app profile {tenant}/{app}"
        try:
            current = self.apic.read(f"uni/tn-{tenant}", config_only=True)
        except ApicError as exc:
            return reply("failed", f"{exc}; nothing was written"), None
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

    # -- health --------------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        if self.client is None:
            return True, {"status": "ok", "mode": "dry-run"}
        try:
            info = self.apic.health()
        except ApicError as exc:
            return False, {"status": "unavailable", "error": str(exc)}
        return True, {"status": "ok", **info}
