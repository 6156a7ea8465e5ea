"""Prometheus metrics of the gateway: pushes and their outcome, APIC requests by status, latency,
retries and logins. One registry per gateway instance so tests (and several apps in one process) do not
collide in the global default registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from aci_gw.reconcile import Plan

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Implements the APIC client's RequestObserver and counts pushes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pushes = Counter("aci_gw_pushes", "Contiv API operations by result",
                              ["operation", "result"], registry=r)
        self.push_seconds = Histogram("aci_gw_push_duration_seconds", "Time to serve a push or delete",
                                      ["operation"], buckets=_LATENCY_BUCKETS, registry=r)
        self.changes = Counter("aci_gw_apic_object_changes", "APIC objects written by pushes",
                               ["kind"], registry=r)
        self.apic_requests = Counter("aci_gw_apic_requests", "HTTP requests to the APIC by status",
                                     ["method", "status"], registry=r)
        self.apic_seconds = Histogram("aci_gw_apic_request_duration_seconds", "APIC request latency",
                                      ["method"], buckets=_LATENCY_BUCKETS, registry=r)
        self.apic_retries = Counter("aci_gw_apic_retries", "APIC requests repeated, by reason",
                                    ["reason"], registry=r)
        self.drift_detected = Counter("aci_gw_drift_detected", "APIC changes that depart from the intent, by "
                                      "kind (deleted, modified, added, foreign)", ["kind"], registry=r)
        self.drift_repairs = Counter("aci_gw_drift_repairs", "Drift checks by outcome (repaired, unchanged, "
                                     "reported, failed, superseded)", ["result"], registry=r)
        self.drift_repair_seconds = Histogram("aci_gw_drift_repair_seconds", "From the first drift event to the "
                                              "repair written", buckets=_LATENCY_BUCKETS, registry=r)
        self.subscriptions = Counter("aci_gw_apic_subscriptions", "APIC subscriptions made by the drift watch, "
                                     "by reason (new, expired, reconnect)", ["reason"], registry=r)
        self.fencing_refusals = Counter("aci_gw_fencing_refusals", "Pushes refused for a stale fencing token",
                                        registry=r)
        self.apic_logins = Counter("aci_gw_apic_logins", "APIC logins and refreshes by result",
                                   ["kind", "result"], registry=r)

    # RequestObserver
    def request(self, method: str, status: str, seconds: float) -> None:
        self.apic_requests.labels(method, status).inc()
        self.apic_seconds.labels(method).observe(seconds)

    def retry(self, reason: str) -> None:
        self.apic_retries.labels(reason).inc()

    def login(self, kind: str, ok: bool) -> None:
        self.apic_logins.labels(kind, "ok" if ok else "failed").inc()

    def subscribed(self, reason: str) -> None:
        self.subscriptions.labels(reason).inc()

    # pushes
    def push(self, operation: str, result: str, seconds: float, plan: Plan | None = None) -> None:
        self.pushes.labels(operation, result).inc()
        self.push_seconds.labels(operation).observe(seconds)
        if plan is not None:
            self.written(plan)

    def written(self, plan: Plan) -> None:
        """APIC objects a push, delete or drift repair wrote."""
        for kind in ("created", "modified", "deleted"):
            if getattr(plan, kind):
                self.changes.labels(kind).inc(getattr(plan, kind))

    def render(self) -> bytes:
        return generate_latest(self.registry)
