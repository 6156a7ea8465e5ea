"""The management information tree (MIT) held in memory.

Objects are indexed by DN and by class, so a DN lookup and a class query each cost one dictionary
access, and each keeps its children in insertion order (APIC does not sort replies unless asked).
The tree does no validation: :mod:`apic_mock.config` decides what may change, the tree only stores.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

from apic_mock.classes import ROOT_CLASS
from apic_mock.dn import join_dn


def now_ts() -> str:
    """APIC's ``modTs`` format: ISO 8601 with milliseconds and a UTC offset."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Mo:
    """One managed object: class, DN, RN, property values and children by RN."""

    __slots__ = ("attrs", "children", "cls", "dn", "mod_ts", "parent", "rn")

    def __init__(self, cls: str, dn: str, rn: str, attrs: dict[str, str], parent: Mo | None = None) -> None:
        self.cls = cls
        self.dn = dn
        self.rn = rn
        self.attrs = attrs
        self.children: dict[str, Mo] = {}
        self.parent = parent
        self.mod_ts = now_ts()

    def __repr__(self) -> str:
        return f"Mo({self.cls}, {self.dn!r})"


class Tree:
    """The MIT: a root ``topRoot`` object plus DN and class indexes."""

    def __init__(self) -> None:
        self.started = time.time()
        self.generation = 0
        self.clear()

    def clear(self) -> None:
        """Drop every object but the root (other components keep their reference to this tree)."""
        self.root = Mo(ROOT_CLASS, "", "", {})
        self.by_dn: dict[str, Mo] = {"": self.root}
        self.by_cls: dict[str, dict[str, Mo]] = {ROOT_CLASS: {"": self.root}}
        self.generation += 1

    def get(self, dn: str) -> Mo | None:
        """The object at ``dn``, or None."""
        return self.by_dn.get(dn)

    def of_class(self, cls: str) -> list[Mo]:
        """Every object of ``cls``, in creation order."""
        return list(self.by_cls.get(cls, {}).values())

    def add(self, parent: Mo, cls: str, rn: str, attrs: dict[str, str]) -> Mo:
        """Create a childless object under ``parent`` (the caller checked it is allowed)."""
        mo = Mo(cls, join_dn(parent.dn, rn), rn, attrs, parent)
        self.attach(mo)
        return mo

    def attach(self, mo: Mo) -> None:
        """Insert ``mo`` and its existing subtree under ``mo.parent`` (also used to undo a delete)."""
        assert mo.parent is not None
        mo.parent.children[mo.rn] = mo
        for node in self.walk(mo):
            self.by_dn[node.dn] = node
            self.by_cls.setdefault(node.cls, {})[node.dn] = node
        self.generation += 1

    def detach(self, mo: Mo) -> list[Mo]:
        """Remove ``mo`` and its subtree; returns the removed objects, parents before children."""
        removed = list(self.walk(mo))
        for node in removed:
            self.by_dn.pop(node.dn, None)
            bucket = self.by_cls.get(node.cls)
            if bucket is not None:
                bucket.pop(node.dn, None)
        if mo.parent is not None:
            mo.parent.children.pop(mo.rn, None)
        self.generation += 1
        return removed

    def touch(self, mo: Mo) -> None:
        """Record a modification of ``mo``'s properties."""
        mo.mod_ts = now_ts()
        self.generation += 1

    @staticmethod
    def walk(mo: Mo) -> Iterator[Mo]:
        """``mo`` and its descendants, depth first, parents before children (no recursion limit)."""
        stack = [mo]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children.values()))

    def __len__(self) -> int:
        return len(self.by_dn)
