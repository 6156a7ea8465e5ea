"""Prometheus metrics of the Kubernetes adapter, on a private registry (tests run several in one
process); ``contiv-k8s-adapter --metrics-listen`` serves them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class AdapterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("contiv_k8s_adapter_events", "Watch events handled", ["resource", "type"], registry=r)
        self.relists = Counter("contiv_k8s_adapter_relists",
                               "Lists of a resource reconciled (reason: start, gone = 410, error = after a failure)",
                               ["resource", "reason"], registry=r)
        self.writes = Counter("contiv_k8s_adapter_netmaster_writes", "Objects applied to or deleted from netmaster",
                              ["resource", "op"], registry=r)
        self.errors = Counter("contiv_k8s_adapter_errors",
                              "Errors (refused: netmaster refused an object; netmaster, apiserver: a call failed, "
                              "retried; internal: a bug)",
                              ["resource", "kind"], registry=r)
        self.last_sync = Gauge("contiv_k8s_adapter_last_sync_timestamp_seconds",
                               "When netmaster last matched the API server for a resource (a list or an event)",
                               ["resource"], registry=r)
        self.held = Gauge("contiv_k8s_adapter_objects", "Objects netmaster holds for the adapter's tenant",
                          ["resource"], registry=r)
        self.refused = Gauge("contiv_k8s_adapter_refused_objects",
                             "Objects of the API server netmaster refuses (each logged with its reason)",
                             ["resource"], registry=r)
