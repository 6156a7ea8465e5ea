"""Group commit: pushes of different tenants that arrive together go to the APIC together.

netmaster pushes every app profile at once when it starts (and after an aci-gw restart); one read and
one POST per tenant would cost a real APIC two round trips per tenant. Pushes are therefore queued:
the oldest waiting push leads, waits ``window`` seconds for company, and runs a batch of up to
``max_size`` pushes of distinct tenants (one read of all their subtrees, one POST to ``uni``); the
others wait for the batch that holds them. A push that arrives while a batch runs joins the next one.
A lone push pays only ``window``. Two pushes of one tenant never share a batch (the second's diff
depends on the first's result), so each tenant's pushes stay in arrival order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class _Slot(Generic[T, R]):
    item: T
    key: str
    result: R | None = None
    error: BaseException | None = None
    done: bool = False


class Batcher(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], list[R]], key: Callable[[T], str], *, window: float = 0.005,
                 max_size: int = 50) -> None:
        self.run = run
        self.key = key
        self.window = window
        self.max_size = max_size
        self._cond = threading.Condition()
        self._queue: list[_Slot[T, R]] = []
        self._running = False

    def submit(self, item: T) -> R:
        """Run ``item`` in some batch and return its result (or raise what the batch raised)."""
        slot: _Slot[T, R] = _Slot(item, self.key(item))
        with self._cond:
            self._queue.append(slot)
            while not slot.done and (self._running or self._queue[0] is not slot):
                self._cond.wait()
            if not slot.done:
                self._running = True
        if not slot.done:
            self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self) -> None:
        time.sleep(self.window)
        with self._cond:
            batch: list[_Slot[T, R]] = []
            keys: set[str] = set()
            for slot in list(self._queue):
                if len(batch) >= self.max_size:
                    break
                if slot.key not in keys:
                    keys.add(slot.key)
                    batch.append(slot)
                    self._queue.remove(slot)
        try:
            results = self.run([s.item for s in batch])
        except BaseException as exc:  # every caller of the batch sees the failure
            for slot in batch:
                slot.error = exc
        else:
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
        with self._cond:
            for slot in batch:
                slot.done = True
            self._running = False
            self._cond.notify_all()
