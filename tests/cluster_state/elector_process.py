"""A separate process that campaigns for leadership, so tests and benchmarks can SIGKILL a leader.

Run as ``python -m tests.cluster_state.elector_process STORE_URL ID TTL [KEY]``. It prints one JSON
line per change: ``{"event": "leader", "id": ..., "t": <time.time()>}`` when elected and
``{"event": "follower", ...}`` when deposed, flushing at once so the parent sees it immediately.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from netmaster.ha.leader import LEADER_KEY, LeaderElector
from netmaster.ha.membership import MemberInfo
from netmaster.store import open_store


def _say(event: str, member_id: str) -> None:
    print(json.dumps({"event": event, "id": member_id, "t": time.time()}), flush=True)


async def _main(url: str, member_id: str, ttl: float, key: str) -> None:
    store = open_store(url)

    async def lead() -> None:
        _say("leader", member_id)
        await asyncio.Event().wait()

    elector = LeaderElector(
        store,
        MemberInfo(id=member_id, url=f"process:{member_id}"),
        key=key,
        ttl=ttl,
        on_elected=lead,
        on_deposed=lambda: _say("follower", member_id),
    )
    _say("started", member_id)
    await elector.start()
    # SIGTERM resigns (revoking the lease, so a successor need not wait); SIGKILL is the crash case.
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await elector.stop()
    await store.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(_main(args[0], args[1], float(args[2]), args[3] if len(args) > 3 else LEADER_KEY))
