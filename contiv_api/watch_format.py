"""The snapshot and watch wire format, both ends: netmaster writes these lines, consumers parse them.

``GET /api/v1/snapshot`` answers ``{"revision": R, "objects": [OBJ, ...]}``; ``GET /api/v1/watch``
streams NDJSON lines, each one of:

* ``{"type": "put"|"delete", "revision": R, "kind": K, "key": KEY, "object": {...}|null, "status": {...}|null}``
* ``{"type": "bookmark", "revision": R}``: every change up to R has been sent;
* ``{"type": "error", "error": "...", "status": 410?}``: the stream ends (410: take a new snapshot).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal


def encode_line(obj: dict[str, Any]) -> bytes:
    """One watch line, compact JSON and a newline."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def change_line(change: str, revision: int, described: bytes) -> bytes:
    """A put or delete line from the object's part already encoded (``{"kind":...,"key":...}``, compact):
    netmaster encodes an object once and stamps it with each line's type and revision. The same bytes
    as :func:`encode_line` of ``{"type": change, "revision": revision, **described}``."""
    return b'{"type":"%s","revision":%d,%s\n' % (change.encode(), revision, described[1:])


def bookmark_line(revision: int) -> bytes:
    return encode_line({"type": "bookmark", "revision": revision})


def error_line(error: str, status: int | None = None) -> bytes:
    """The last line of a stream that broke; ``status=410`` tells the client to re-list."""
    return encode_line({"type": "error", "error": error, **({"status": status} if status else {})})


class ResyncRequired(Exception):
    """The watch revision is compacted (HTTP 410): take a new snapshot."""


class WatchInterrupted(Exception):
    """The watch stream ended or broke; resume from the last complete revision."""


@dataclass(frozen=True)
class ObjectState:
    """One object as netmaster reports it: its config (``object``) and allocated values (``status``)."""

    kind: str
    key: str
    object: dict[str, Any] | None
    status: dict[str, Any] | None

    @property
    def id(self) -> tuple[str, str]:
        return (self.kind, self.key)


@dataclass(frozen=True)
class Change:
    type: Literal["put", "delete"]
    revision: int
    state: ObjectState


@dataclass(frozen=True)
class Resync:
    """The complete state at ``revision``: replace any cache with it."""

    revision: int
    objects: list[ObjectState]


@dataclass(frozen=True)
class Progress:
    """A bookmark: every change up to ``revision`` has been delivered."""

    revision: int


StreamItem = Change | Resync | Progress


def object_state(d: dict[str, Any]) -> ObjectState:
    """One object of a snapshot or a watch line."""
    return ObjectState(kind=d["kind"], key=d["key"], object=d.get("object"), status=d.get("status"))


def parse_line(line: str) -> Change | Progress:
    """One NDJSON line of ``/api/v1/watch``; error lines raise :class:`WatchInterrupted`."""
    msg = json.loads(line)
    kind = msg.get("type")
    if kind in ("put", "delete"):
        return Change(kind, int(msg["revision"]), object_state(msg))
    if kind == "bookmark":
        return Progress(int(msg["revision"]))
    if kind == "error":
        if msg.get("status") == 410:  # compaction noticed after the stream had started
            raise ResyncRequired(str(msg.get("error")))
        raise WatchInterrupted(f"netmaster ended the watch: {msg.get('error')}")
    raise WatchInterrupted(f"unexpected watch line type {kind!r}")
