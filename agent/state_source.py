"""Where desired state comes from.

A source hands complete DesiredState snapshots to a callback. There are two: the file source here
(tests, the simulated cluster and a standalone host use it: write the JSON, the agent converges) and
the netmaster source (:mod:`agent.netmaster_source`, list+watch of netmaster) producing the same
snapshots, so the reconciler never learns where its state came from.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from agent.state import DesiredState

LOG = logging.getLogger(__name__)


class StateSource(Protocol):
    """What the daemon needs from a state source. The netmaster list+watch client will implement it:
    list, build a snapshot, apply it, then apply a fresh snapshot after every batch of watch events
    (and after a 410 re-list); ``poke`` re-applies the current snapshot (switch reconnected)."""

    def run(self, apply: Callable[[DesiredState], None]) -> None: ...

    def poke(self) -> None: ...

    def stop(self) -> None: ...


class FileStateSource:
    """Polls a JSON file (atomically replaced by its writer) and reports every new version.

    Polling the stat every 50 ms is cheap and needs no inotify; a reconcile can also be forced (after
    a switch reconnect) with :meth:`poke`.
    """

    def __init__(self, path: Path, interval: float = 0.05) -> None:
        self.path = Path(path)
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self, apply: Callable[[DesiredState], None]) -> None:
        last: tuple[int, int, int] | None = None
        current: DesiredState | None = None
        while not self._stop.is_set():
            forced = self._wake.is_set()
            self._wake.clear()
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except FileNotFoundError:
                stamp = None
            try:
                if stamp is not None and stamp != last:
                    current = DesiredState.load(self.path)
                    last = stamp
                    apply(current)
                elif forced and current is not None:
                    apply(current)
            except Exception:
                LOG.exception("applying %s failed; will retry", self.path)
                last = None
                self._wake.wait(1.0)
                continue
            self._wake.wait(self.interval)
