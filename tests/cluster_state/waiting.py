"""Waiting for a condition in tests, with a bound, so a broken cluster fails the test instead of hanging."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(predicate: Callable[[], bool], within: float, what: str) -> float:
    """Poll ``predicate`` until it holds; returns how long that took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > within:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start
