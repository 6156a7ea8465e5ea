"""Fault injection, driven through the admin API.

Rules are matched against each APIC request (method and path regex). ``latency`` rules delay it;
``error`` rules answer with an HTTP status (503 by default) in APIC's error envelope; ``reset`` rules
drop the TCP connection (RST) without an answer. A rule fires for its next ``count`` matching
requests, or for a ``share`` of them (probability, reproducible with ``seed``), or always.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field
from typing import Any

from apic_mock.errors import ApicError

KINDS = ("latency", "error", "reset")


@dataclass
class FaultRule:
    """One injected fault."""

    id: int
    kind: str
    status: int = 503
    delay_ms: int = 0
    count: int | None = None
    share: float | None = None
    path: str | None = None
    method: str | None = None
    text: str = "Service Unavailable (fault injected by apic_mock)"
    fired: int = 0

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class FaultInjector:
    """The active fault rules."""

    rules: list[FaultRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add(self, spec: dict[str, Any]) -> FaultRule:
        """Validate and add a rule from its JSON form."""
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ApicError(400, f"fault kind must be one of {', '.join(KINDS)}")
        allowed = {"kind", "status", "delay_ms", "count", "share", "path", "method", "text", "seed"}
        unknown = set(spec) - allowed
        if unknown:
            raise ApicError(400, f"unknown fault fields: {', '.join(sorted(unknown))}")
        try:
            rule = FaultRule(
                id=next(self._ids),
                kind=kind,
                status=int(spec.get("status", 503)),
                delay_ms=int(spec.get("delay_ms", 0)),
                count=None if spec.get("count") is None else int(spec["count"]),
                share=None if spec.get("share") is None else float(spec["share"]),
                path=spec.get("path"),
                method=spec["method"].upper() if spec.get("method") else None,
                text=str(spec.get("text", FaultRule.text)),
            )
            if rule.path is not None:
                re.compile(rule.path)
        except (TypeError, ValueError, re.error) as exc:
            raise ApicError(400, f"invalid fault: {exc}") from None
        if not 100 <= rule.status <= 599 or (rule.share is not None and not 0 <= rule.share <= 1):
            raise ApicError(400, "invalid fault: status must be 100-599 and share 0-1")
        if kind == "latency" and rule.delay_ms <= 0:
            raise ApicError(400, "invalid fault: latency needs delay_ms > 0")
        if "seed" in spec:
            self.rng.seed(spec["seed"])
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def decide(self, method: str, path: str) -> tuple[int, FaultRule | None]:
        """For one request: total delay (ms) and the error/reset rule that fires, if any."""
        delay = 0
        chosen: FaultRule | None = None
        for rule in list(self.rules):
            if rule.method is not None and rule.method != method:
                continue
            if rule.path is not None and re.search(rule.path, path) is None:
                continue
            if rule.kind != "latency" and chosen is not None:
                continue
            if rule.share is not None and self.rng.random() >= rule.share:
                continue
            rule.fired += 1
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
            if rule.kind == "latency":
                delay += rule.delay_ms
            else:
                chosen = rule
        return delay, chosen
