"""The repair queue: drift found by the watch, repaired per tenant, debounced and rate-limited.

Deleting one EPG in the APIC emits an event per removed object, and an operator's script may touch
many objects in a row, so a tenant's drift is collected for ``debounce`` seconds and repaired once.
A tenant is repaired at most once per ``interval``; when repairs keep finding something to write
(more than ``FIGHT_REPAIRS`` in ``FIGHT_WINDOW`` seconds: someone, or some other controller, keeps
changing the objects back), the interval doubles up to ``max_interval`` so the gateway does not fight
at full speed, and resets once the tenant is quiet.
Repairs run on one thread of their own, never on the watch's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aci_gw.drift import Drift

log = logging.getLogger("aci_gw.drift")

FIGHT_REPAIRS = 5
FIGHT_WINDOW = 30.0

#: ``run(tenant, drifts, reason, first_seen)`` repairs a tenant and returns whether it wrote anything.
RunRepair = Callable[[str, list[Drift], str, float], bool]


@dataclass
class _Pending:
    due: float
    first_seen: float
    reasons: set[str] = field(default_factory=set)
    drifts: list[Drift] = field(default_factory=list)


class RepairQueue:
    def __init__(self, run: RunRepair, *, debounce: float = 0.05, interval: float = 1.0,
                 max_interval: float = 60.0) -> None:
        self.run = run
        self.debounce = debounce
        self.interval = interval
        self.max_interval = max_interval
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self._last: dict[str, float] = {}
        self._spacing: dict[str, float] = {}
        self._writes: dict[str, list[float]] = {}  # times of the recent repairs that wrote, per tenant
        self._stop = False
        self._thread: threading.Thread | None = None

    def add(self, tenant: str, reason: str, drift: Drift | None = None) -> None:
        now = time.monotonic()
        with self._cond:
            pending = self._pending.get(tenant)
            if pending is None:
                earliest = self._last.get(tenant, -1e9) + self._spacing.get(tenant, self.interval)
                pending = self._pending[tenant] = _Pending(max(now + self.debounce, earliest), now)
            pending.reasons.add(reason)
            if drift is not None and len(pending.drifts) < 100:
                pending.drifts.append(drift)
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="aci-gw-drift-repair", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(10)

    def _next(self) -> tuple[str, _Pending] | None:
        with self._cond:
            while not self._stop:
                now = time.monotonic()
                if self._pending:
                    tenant, pending = min(self._pending.items(), key=lambda kv: kv[1].due)
                    if pending.due <= now:
                        del self._pending[tenant]
                        return tenant, pending
                    self._cond.wait(pending.due - now)
                else:
                    self._cond.wait()
            return None

    def _loop(self) -> None:
        while (item := self._next()) is not None:
            tenant, pending = item
            try:
                wrote = self.run(tenant, pending.drifts, ", ".join(sorted(pending.reasons)), pending.first_seen)
            except Exception:  # a bug in one repair must not stop the others
                log.exception("repair of tenant %s failed", tenant)
                wrote = False
            with self._cond:
                now = time.monotonic()
                writes = [t for t in self._writes.get(tenant, []) if now - t < FIGHT_WINDOW] + ([now] if wrote else [])
                self._writes[tenant] = writes
                spacing = self._spacing.get(tenant, self.interval)
                fighting = len(writes) > FIGHT_REPAIRS
                self._spacing[tenant] = min(spacing * 2, self.max_interval) if fighting else self.interval
                if fighting:
                    log.warning("tenant %s: %d repairs in %.0f s, something keeps changing it back; next "
                                "repair in %.0f s at the earliest", tenant, len(writes), FIGHT_WINDOW,
                                self._spacing[tenant])
                self._last[tenant] = now
