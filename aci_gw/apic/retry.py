"""Retry timing: exponential backoff with full jitter.

Why jitter: several gateways (or netmaster retries) hitting an APIC that just came back would
otherwise retry in lockstep. Full jitter (a uniform draw up to the exponential bound) spreads them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4  # attempts after the first
    base: float = 0.25  # seconds; the bound doubles per attempt
    cap: float = 8.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        bound = min(self.cap, self.base * (2 ** (attempt - 1)))
        return (rng or random).uniform(bound / 2, bound)
