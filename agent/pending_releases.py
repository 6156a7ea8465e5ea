"""Endpoint releases netmaster still owes this host: kept on disk until netmaster confirms them.

A CNI DEL or Docker DeleteEndpoint removes the host side at once (flows, port, veth, local record)
and then asks netmaster to release the endpoint. When netmaster cannot be reached the teardown must
still succeed (a runtime retrying DEL for minutes blocks pod deletion), so the release is written
here first, one empty file per endpoint id, and retried until netmaster answers. The file is written
before anything is removed, so an agent killed in the middle still knows on its next start, and
removed only after netmaster's delete succeeded (netmaster's delete is idempotent: a repeated one
releases nothing twice).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import quote, unquote


class PendingReleases:
    """Thread-safe set of endpoint ids, each an empty file in *directory* (survives restarts)."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._ids = {unquote(p.stem) for p in self.dir.glob("*.release")}

    def _path(self, endpoint_id: str) -> Path:
        return self.dir / (quote(endpoint_id, safe="") + ".release")

    def add(self, endpoint_id: str) -> None:
        with self._lock:
            if endpoint_id in self._ids:
                return
            path = self._path(endpoint_id)
            with open(path, "w") as f:
                os.fsync(f.fileno())  # durable before the host side goes
            self._ids.add(endpoint_id)

    def discard(self, endpoint_id: str) -> None:
        with self._lock:
            self._path(endpoint_id).unlink(missing_ok=True)
            self._ids.discard(endpoint_id)

    def __contains__(self, endpoint_id: object) -> bool:
        with self._lock:
            return endpoint_id in self._ids

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    def all(self) -> list[str]:
        with self._lock:
            return sorted(self._ids)
