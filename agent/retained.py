"""Remote endpoints an agent keeps forwarding to after netmaster deleted them while their host was away.

netmaster's endpoint GC cannot tell a dead host from one cut off from it, so an endpoint deleted while
its host's agent record is absent may belong to a container that still runs. Every other agent keeps
such an endpoint in its state (``agent.netmaster_state.with_last_known``) until it is re-claimed, its
address is given to another endpoint, or its host is back without re-claiming it. The records are
kept in a file of the agent's state directory, so an agent restarted meanwhile keeps them too.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from agent.netmaster_state import NmObject

LOG = logging.getLogger(__name__)


class RetainedEndpoints:
    """The retained endpoint records by id, written through to *path* (if given). Not thread-safe:
    the state source guards it with its lock."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._records: dict[str, NmObject] = self._load()

    def keep(self, obj: NmObject) -> None:
        self._records[obj.key] = obj
        self._save()

    def drop(self, endpoint_id: str) -> None:
        if self._records.pop(endpoint_id, None) is not None:
            self._save()

    def get(self, endpoint_id: str) -> NmObject | None:
        return self._records.get(endpoint_id)

    def all(self) -> list[NmObject]:
        return list(self._records.values())

    def _load(self) -> dict[str, NmObject]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            items = json.loads(self.path.read_text())
            return {o["key"]: NmObject("endpoint", o["key"], o["object"]) for o in items}
        except (OSError, ValueError, TypeError, KeyError) as exc:
            LOG.warning("ignoring the retained endpoints in %s: %s", self.path, exc)
            return {}

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps([{"key": o.key, "object": o.object} for o in self._records.values()]))
            os.replace(tmp, self.path)
        except OSError as exc:
            LOG.warning("cannot save the retained endpoints to %s: %s", self.path, exc)
