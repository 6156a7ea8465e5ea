"""Waiting for a condition, with a deadline, so a broken system fails the test instead of hanging.

Tests never assert a state right after the event that causes it: they wait for it with one of these.
Both return what the probe returned (so ``tree = eventually(lambda: apic.tree(dn), what="the EPG")``
reads the state it waited for) and raise :class:`TimeoutError` naming *what* and the last value seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 20.0, what: str = "condition", interval: float = 0.05) -> T:
    """Call *probe* until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


async def until(
    probe: Callable[[], T | Awaitable[T]], within: float = 10.0, what: str = "condition", interval: float = 0.01
) -> T:
    """The asyncio form of :func:`eventually` (*within* seconds); *probe* may be a plain or a coroutine function."""
    deadline = time.monotonic() + within
    while True:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)
