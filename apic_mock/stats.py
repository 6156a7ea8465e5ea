"""Request counters for the admin API (``/mock/stats``).

Tests and benchmarks of the ACI gateway count APIC writes with these, so every request to ``/api/``
is counted when it arrives (before any fault is injected), whatever happens to it afterwards.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

LOG_LIMIT = 10_000


def is_write(method: str, path: str) -> bool:
    """A configuration write: POST or DELETE on ``/api/mo`` or ``/api/node/mo``."""
    return method in ("POST", "DELETE") and (path.startswith("/api/mo") or path.startswith("/api/node/mo"))


@dataclass
class RequestStats:
    """Counters since start or the last reset."""

    total: int = 0
    writes: int = 0
    writes_ok: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    by_path: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    log: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    since: float = field(default_factory=time.time)

    def arrived(self, method: str, path: str, query: str) -> dict[str, Any]:
        """Count a request; returns its log entry, completed by :meth:`finished`."""
        self.total += 1
        self.by_method[method] += 1
        self.by_path[f"{method} {path}"] += 1
        if is_write(method, path):
            self.writes += 1
        entry: dict[str, Any] = {"method": method, "path": path, "query": query, "status": None}
        if is_write(method, path):
            entry["write"] = True
        if len(self.log) < LOG_LIMIT:
            self.log.append(entry)
        else:
            self.dropped += 1
        return entry

    def finished(self, entry: dict[str, Any], status: int | str) -> None:
        entry["status"] = status
        self.by_status[str(status)] += 1
        if status == 200 and entry.get("write"):
            self.writes_ok += 1

    def reset(self) -> None:
        """Zero everything (the admin API's ``/mock/stats/reset``)."""
        fresh = RequestStats()
        self.__dict__.update(fresh.__dict__)

    def snapshot(self, with_log: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "total": self.total,
            "writes": self.writes,
            "writes_ok": self.writes_ok,
            "by_method": dict(self.by_method),
            "by_path": dict(self.by_path),
            "by_status": dict(self.by_status),
            "since": self.since,
            "log_dropped": self.dropped,
        }
        if with_log:
            out["log"] = list(self.log)
        return out
