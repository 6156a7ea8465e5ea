"""The audit log: who created, modified or deleted what, as APIC's ``aaaModLR`` records.

An APIC records every configuration change a user makes (``aaaModLR``: ``user``, ``affected`` DN,
``ind`` creation/modification/deletion, ``changeSet``, ``created``, ``txId`` ...) and serves them to
class queries such as ``/api/node/class/aaaModLR.json?query-target-filter=eq(aaaModLR.affected,"DN")``.
The mock keeps the newest ``LIMIT`` records apart from the object tree (they are not configuration: no
subscription events, not in dumps or the state file) and answers class queries on ``aaaModLR`` from
them, newest first, with filters and paging. Records exist for changes made through ``/api/``;
the ``/mock/`` admin actions (seeding, learnt endpoints) leave none, as fabric activity would not.
"""

from __future__ import annotations

import itertools
from collections import deque

from apic_mock.config import Outcome
from apic_mock.dn import split_dn
from apic_mock.filters import Predicate
from apic_mock.tree import Mo, now_ts

LIMIT = 10_000
_IND = {"created": "creation", "modified": "modification", "deleted": "deletion"}


class AuditLog:
    def __init__(self, limit: int = LIMIT) -> None:
        self.records: deque[Mo] = deque(maxlen=limit)
        self._ids = itertools.count(4294967297)
        self._tx = itertools.count(576460752303423489)

    def record(self, user: str, session: str, outcome: Outcome) -> None:
        """One record per object the request changed (a deleted subtree: one per removed object)."""
        tx = str(next(self._tx))
        created = now_ts()
        for change in outcome.events():
            record_id = str(next(self._ids))
            dn = change.mo.dn
            attrs = {
                "affected": dn, "cause": "transition", "changeSet": ", ".join(
                    f"{k}:{v}" for k, v in sorted(change.attrs.items()) if k != "status"),
                "code": "E4206326", "created": created, "id": record_id, "ind": _IND.get(change.status, change.status),
                "descr": f"{change.mo.cls} {split_dn(dn)[-1] if dn else ''} {change.status}",
                "sessionId": session, "severity": "info", "trig": "config", "txId": tx, "user": user,
            }
            self.records.append(Mo("aaaModLR", f"subj-[{dn}]/mod-{record_id}", f"mod-{record_id}", attrs))

    def query(self, keep: Predicate | None) -> list[Mo]:
        """Matching records, newest first."""
        return [mo for mo in reversed(self.records) if keep is None or keep(mo)]

    def clear(self) -> None:
        self.records.clear()
