"""What the gateway last wrote, and whether an APIC change departs from it.

The gateway stays stateless towards the APIC (ownership is read back from annotations), but to notice
drift between pushes it must remember the last intent: per app profile, the request, the fabric
settings and the fencing token of the last successful push, and the desired tree that push computed.
From the desired trees of a tenant it keeps an index by DN, so that each event of the drift watch
(one MO created, modified or deleted) is classified without asking the APIC:

* an object of the intent deleted, or modified so that an attribute we set now differs, is drift;
* an object created below one of ours that carries our annotation but is not in the intent is drift
  (the diff removes it);
* an object created below one of ours without our annotation is a user's: reported, never touched;
* the echo of our own POSTs (objects created or modified to exactly the intended values) is not.

A repair is not computed from the event: it is the same read-diff-POST a push does, with the
remembered request, so what is written is exactly the difference to the intent.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from aci_gw.mo import NAMING_PROPS, Mo, parent_dn
from aci_gw.ownership import PROTECTED_CLASSES, is_owned
from aci_gw.reconcile import same_value
from contiv_api.aci_gw_payload import AppProfileRequest

#: Attributes of an event that describe the event or the object's bookkeeping, not its configuration.
_EVENT_ONLY = frozenset({"dn", "rn", "status", "childAction", "modTs", "lcOwn", "uid", "userdom", "monPolDn",
                         "extMngdBy", "configIssues"})


@dataclass
class Intent:
    """The last successful push of one app profile."""

    req: AppProfileRequest
    fabric: Any  # FabricSettings, merged with the request's gw-config
    token: int | None
    desired: Mo


@dataclass(frozen=True)
class Drift:
    """One departure from the intent: ``kind`` is deleted, modified, added or foreign (a user's object
    added below one of ours, reported only)."""

    kind: str
    dn: str
    cls: str
    detail: str = ""
    apps: frozenset[str] = frozenset()

    def describe(self) -> str:
        return f"{self.kind} {self.cls} {self.dn}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class _TenantIndex:
    nodes: dict[str, tuple[Mo, set[str]]] = field(default_factory=dict)


def _index_tree(index: _TenantIndex, node: Mo, dn: str, app: str) -> None:
    if node.managed:
        _, apps = index.nodes.setdefault(dn, (node, set()))
        apps.add(app)
    for child in node.children:
        _index_tree(index, child, f"{dn}/{child.rn}", app)


def tenant_of(dn: str) -> str | None:
    """``uni/tn-NAME/...`` -> NAME."""
    if not dn.startswith("uni/tn-"):
        return None
    rest = dn[len("uni/tn-"):]
    return rest.split("/", 1)[0] or None


class IntentBook:
    """Intents by tenant and app profile, with a per-tenant DN index; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._intents: dict[str, dict[str, Intent]] = {}
        self._index: dict[str, _TenantIndex] = {}

    def record(self, intent: Intent) -> None:
        with self._lock:
            self._intents.setdefault(intent.req.tenant, {})[intent.req.app] = intent
            self._reindex(intent.req.tenant)

    def forget(self, tenant: str, app: str) -> None:
        with self._lock:
            apps = self._intents.get(tenant, {})
            apps.pop(app, None)
            if not apps:
                self._intents.pop(tenant, None)
                self._index.pop(tenant, None)
            else:
                self._reindex(tenant)

    def _reindex(self, tenant: str) -> None:
        index = _TenantIndex()
        for app, intent in self._intents.get(tenant, {}).items():
            _index_tree(index, intent.desired, f"uni/{intent.desired.rn}", app)
        self._index[tenant] = index

    def tenants(self) -> list[str]:
        with self._lock:
            return sorted(self._intents)

    def intents(self, tenant: str) -> list[Intent]:
        with self._lock:
            return list(self._intents.get(tenant, {}).values())

    def classify(self, cls: str, attrs: dict[str, str]) -> Drift | None:
        """Whether one subscription event departs from the intent."""
        dn, status = attrs.get("dn", ""), attrs.get("status", "")
        tenant = tenant_of(dn)
        with self._lock:
            index = self._index.get(tenant or "")
            if index is None:
                return None
            found = index.nodes.get(dn)
            parent = index.nodes.get(parent_dn(dn))
        if found is not None:
            node, apps = found
            if status == "deleted":
                return Drift("deleted", dn, cls, apps=frozenset(apps))
            naming = NAMING_PROPS.get(node.cls, ())
            diffs = [
                f"{k}={attrs[k]!r}, intended {v!r}" for k, v in node.attrs.items()
                if k in attrs and k not in naming and k not in _EVENT_ONLY and not same_value(k, v, attrs[k])
            ]
            if diffs:
                return Drift("modified", dn, cls, "; ".join(diffs), frozenset(apps))
            return None
        if parent is not None and status == "created":
            apps = frozenset(parent[1])
            if is_owned(Mo(cls, attrs)):
                return Drift("added", dn, cls, "carries the gateway's annotation but is not intended", apps)
            if cls in PROTECTED_CLASSES:  # not one the APIC adds by itself (fvRsTenantMonPol, ...)
                return Drift("foreign", dn, cls, "a user's object below an owned one: left alone", apps)
        return None


@dataclass
class AppDriftStatus:
    """What the read API reports per app profile (netmaster shows it in ``Oper.aciSync``)."""

    repairs: int = 0
    drift_repaired_at: float | None = None
    drift_detected_at: float | None = None
    last_drift: list[str] = field(default_factory=list)
    last_repair: str = ""

    def view(self, tenant: str, app: str) -> dict[str, Any]:
        return {"tenant": tenant, "app": app, "repairs": self.repairs, "driftRepairedAt": self.drift_repaired_at,
                "driftDetectedAt": self.drift_detected_at, "lastDrift": list(self.last_drift),
                "lastRepair": self.last_repair}


class DriftLedger:
    """Per app profile: repairs made and the last drift seen; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: dict[tuple[str, str], AppDriftStatus] = {}

    def detected(self, tenant: str, app: str, drifts: list[str], when: float) -> None:
        with self._lock:
            status = self._apps.setdefault((tenant, app), AppDriftStatus())
            status.drift_detected_at = when
            status.last_drift = drifts[:10]

    def repaired(self, tenant: str, app: str, summary: str, when: float) -> None:
        with self._lock:
            status = self._apps.setdefault((tenant, app), AppDriftStatus())
            status.repairs += 1
            status.drift_repaired_at = when
            status.last_repair = summary

    def view(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.view(t, a) for (t, a), s in sorted(self._apps.items())]
