"""Prometheus metrics of the API, in a registry owned by the app (no process-global state)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sized
from typing import Protocol

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "netmaster_http_requests",
            "HTTP requests served, by route template, method and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "netmaster_http_request_seconds",
            "HTTP request latency by route template and method",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )

    def track_watchers(self, hub: WatchStats) -> None:
        """The watch fan-out's state, read at scrape time (netmaster.api.watch.WatchHub)."""
        self.registry.register(_WatchCollector(hub))

    def observe(self, method: str, route: str, status: int, started: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(time.perf_counter() - started)

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class WatchStats(Protocol):
    """What the metrics read of the watch fan-out (netmaster.api.watch.WatchHub)."""

    subscribers: Sized
    overflows: int
    span_resyncs: int
    span_adds: int

    @property
    def buffered(self) -> int: ...


class _WatchCollector(Collector):
    def __init__(self, hub: WatchStats) -> None:
        self.hub = hub

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        hub = self.hub
        yield GaugeMetricFamily("netmaster_watchers", "HTTP watch streams fed from memory", value=len(hub.subscribers))
        yield GaugeMetricFamily(
            "netmaster_watch_buffered_bytes", "encoded events waiting in watchers' buffers", value=hub.buffered
        )
        yield CounterMetricFamily(
            "netmaster_watch_overflows", "watchers cut off (410) because their buffer was full", value=hub.overflows
        )
        yield CounterMetricFamily(
            "netmaster_watch_span_resyncs",
            "agents' watches sent to re-list (410) because their host's span narrowed or changed before a resume",
            value=hub.span_resyncs,
        )
        yield CounterMetricFamily(
            "netmaster_watch_span_adds", "endpoints sent to agents' watches because their host's span widened",
            value=hub.span_adds,
        )
