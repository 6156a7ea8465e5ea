"""SIGKILL the netmaster process that leads: another takes over when its etcd lease expires."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from netmaster.ha.leader import LeaderElector, read_leader
from netmaster.ha.membership import MemberInfo
from netmaster.store.base import Store
from testbed.etcd import shared_etcd

REPO = Path(__file__).resolve().parents[2]
TTL = 2.0


def start_elector_process(url: str, member_id: str, ttl: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cluster_state.elector_process", url, member_id, str(ttl)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


async def wait_line(proc: subprocess.Popen, event: str, within: float) -> dict:
    """The next JSON line from ``proc`` announcing ``event`` (read in a thread: stdout is a pipe)."""

    def read() -> dict:
        assert proc.stdout is not None
        for line in proc.stdout:
            msg = json.loads(line)
            if msg["event"] == event:
                return msg
        raise AssertionError(f"elector process exited before {event!r}")

    return await asyncio.wait_for(asyncio.to_thread(read), within)


async def test_sigkill_leader_process_fails_over_within_ttl(etcd_store: Store) -> None:
    proc = start_elector_process(shared_etcd().url, "victim", TTL)
    try:
        await wait_line(proc, "leader", 15)
        elector = LeaderElector(etcd_store, MemberInfo(id="survivor"), ttl=TTL)
        async with elector:
            await asyncio.sleep(0.3)
            assert not elector.is_leader
            assert (await read_leader(etcd_store)).id == "victim"
            os.kill(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.wait_for(elector.wait_leader(), TTL + 3)
            failover = time.monotonic() - killed
            # The lease outlives its holder by at most one TTL (plus etcd's 0.5 s expiry sweep).
            assert failover < TTL + 1.0
            assert (await read_leader(etcd_store)).id == "survivor"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
