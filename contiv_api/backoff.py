"""Capped exponential backoff with jitter, for every reconnect and retry loop.

Jitter matters in a cluster: after an etcd or netmaster restart, hundreds of agents and several
netmasters retry at once, and without it they would all hit the server in the same instant.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial: float = 0.1, maximum: float = 5.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._next = initial

    def next(self) -> float:
        """The delay before the next attempt (full jitter over the upper half of the step)."""
        step = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return step / 2 + random.random() * step / 2

    def reset(self) -> None:
        self._next = self.initial
