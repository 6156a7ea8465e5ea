"""Event subscriptions: ``?subscription=yes`` queries and the ``/socket<token>`` websocket.

A subscription remembers its query (scope and options) and the login session that made it. After
each committed change the hub checks every live subscription and queues one frame per socket with
the ids that matched, shaped like APIC's: ``{"subscriptionId":[ids],"imdata":[{cls:{attributes}}]}``.
Subscriptions die when not refreshed within their timeout (default 60 s), as on APIC.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from apic_mock.config import Change
from apic_mock.dn import is_within, parent_dn
from apic_mock.filters import Predicate
from apic_mock.query import QueryOptions, QueryScope
from apic_mock.render import attributes, meta_props
from apic_mock.tree import Mo, Tree

log = logging.getLogger("apic_mock.subscriptions")

DEFAULT_TIMEOUT = 60
MAX_TIMEOUT = 3600
QUEUE_LIMIT = 10_000


@dataclass
class Subscription:
    """One subscription: which session, what scope, until when."""

    id: str
    sid: str
    scope: QueryScope
    opts: QueryOptions
    keep: Predicate | None
    timeout: int
    expires: float

    def matches(self, mo: Mo) -> bool:
        """Whether a change to ``mo`` is within this subscription's query."""
        scope, target = self.scope, self.opts.query_target
        if scope.dn is not None:
            if target == "children":
                inside = mo.dn != scope.dn and parent_dn(mo.dn) == scope.dn
            else:
                inside = is_within(mo.dn, scope.dn)
        else:
            if scope.within is not None and not is_within(mo.dn, scope.within):
                return False
            if target == "self":
                inside = mo.cls == scope.cls
            elif target == "children":
                inside = mo.parent is not None and mo.parent.cls == scope.cls
            else:
                node: Mo | None = mo
                inside = False
                while node is not None:
                    if node.cls == scope.cls:
                        inside = True
                        break
                    node = node.parent
        if not inside:
            return False
        if self.opts.target_classes is not None and mo.cls not in self.opts.target_classes:
            return False
        return self.keep is None or self.keep(mo)


@dataclass
class SubscriptionHub:
    """All subscriptions and connected websockets of one mock."""

    tree: Tree
    subs: dict[str, Subscription] = field(default_factory=dict)
    sockets: dict[str, set[asyncio.Queue[str | None]]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(72057611234574337))

    def subscribe(self, sid: str, scope: QueryScope, opts: QueryOptions, keep: Predicate | None) -> str:
        """Register a subscription; returns its id (a string shaped like APIC's large integers)."""
        timeout = min(max(opts.refresh_timeout or DEFAULT_TIMEOUT, 1), MAX_TIMEOUT)
        sub_id = str(next(self._ids))
        self.subs[sub_id] = Subscription(sub_id, sid, scope, opts, keep, timeout, time.time() + timeout)
        return sub_id

    def refresh(self, sub_id: str) -> bool:
        """Extend a subscription's life; False when it is unknown or already expired."""
        self.expire()
        sub = self.subs.get(sub_id)
        if sub is None:
            return False
        sub.expires = time.time() + sub.timeout
        return True

    def unsubscribe(self, sub_id: str) -> None:
        self.subs.pop(sub_id, None)

    def drop_session(self, sid: str) -> None:
        """A session ended: forget its subscriptions and close its sockets."""
        for sub_id in [i for i, s in self.subs.items() if s.sid == sid]:
            del self.subs[sub_id]
        for queue in self.sockets.pop(sid, set()):
            queue.put_nowait(None)

    def expire(self) -> None:
        now = time.time()
        for sub_id in [i for i, s in self.subs.items() if s.expires < now]:
            del self.subs[sub_id]

    def clear(self) -> None:
        self.subs.clear()

    def attach(self, sid: str) -> asyncio.Queue[str | None]:
        """A websocket for session ``sid`` connected: give it a queue of frames."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LIMIT)
        self.sockets.setdefault(sid, set()).add(queue)
        return queue

    def detach(self, sid: str, queue: asyncio.Queue[str | None]) -> None:
        queues = self.sockets.get(sid)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self.sockets[sid]

    def publish(self, changes: Iterable[Change]) -> int:
        """Queue events for the subscriptions the changes match; returns the number of frames."""
        self.expire()
        if not self.subs:
            return 0
        frames = 0
        for change in changes:
            ids_by_sid: dict[str, list[str]] = {}
            for sub in self.subs.values():
                if sub.sid in self.sockets and sub.matches(change.mo):
                    ids_by_sid.setdefault(sub.sid, []).append(sub.id)
            if not ids_by_sid:
                continue
            event = self.event(change)
            for sid, ids in ids_by_sid.items():
                frame = json.dumps({"subscriptionId": ids, "imdata": [event]}, separators=(",", ":"))
                for queue in self.sockets.get(sid, ()):
                    if queue.full():
                        log.warning("websocket queue full, dropping event", extra={"session": sid})
                        continue
                    queue.put_nowait(frame)
                    frames += 1
        return frames

    def event(self, change: Change) -> dict[str, Any]:
        """One pushed MO: full attributes when created, changed ones when modified, dn when deleted."""
        mo = change.mo
        if change.status == "created":
            attrs = attributes(self.tree, mo, top=True)
        else:
            meta = meta_props(mo)
            attrs = {"childAction": "", "dn": mo.dn, "modTs": meta["modTs"], "rn": mo.rn}
            if change.status == "modified":
                attrs.update(change.attrs)
        attrs["status"] = change.status
        return {mo.cls: {"attributes": dict(sorted(attrs.items()))}}
