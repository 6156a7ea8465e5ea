"""KeyedLocks: a process's transactions on one allocation pool queue instead of defeating each other."""

from __future__ import annotations

import asyncio

from netmaster.store.txn import KeyedLocks


async def test_same_key_is_serialized_other_keys_run_alongside() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    async def user(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0.005)
            inside[key] -= 1

    async def both_keys_at_once() -> bool:
        async with locks.hold("a"):
            done = asyncio.Event()

            async def other() -> None:
                async with locks.hold("b"):
                    done.set()

            task = asyncio.create_task(other())
            await asyncio.wait_for(done.wait(), 1)
            await task
            return True

    await asyncio.gather(*(user("a") for _ in range(10)), *(user("b") for _ in range(10)))
    assert most == {"a": 1, "b": 1}
    assert await both_keys_at_once()
    assert len(locks) == 0  # nobody holds or waits: nothing kept


async def test_lock_is_released_when_the_holder_fails() -> None:
    locks = KeyedLocks()

    async def failing() -> None:
        async with locks.hold("net"):
            raise RuntimeError("transaction failed")

    for _ in range(3):
        try:
            await failing()
        except RuntimeError:
            pass
    async with asyncio.timeout(1):
        async with locks.hold("net"):
            pass
    assert len(locks) == 0
