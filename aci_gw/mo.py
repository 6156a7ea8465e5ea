"""A light managed-object (MO) tree: the one data shape shared by translation, reconcile and the APIC
backends.

APIC speaks in trees of ``{"<class>": {"attributes": {...}, "children": [...]}}``. Both backends (REST
and cobra) convert to and from this class, so the translation and diff code never sees a wire format.
Relative names (RNs) are computed from the class's naming properties, following the MIM formats, so a
desired tree can be built without knowing DNs and a read tree (whose children carry only ``rn``) can be
matched against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: RN format per class the gateway reads or writes. ``{prop}`` is a naming property; values that may
#: contain ``/`` are bracketed as APIC does (``subnet-[10.1.1.1/24]``).
RN_FORMATS: dict[str, str] = {
    "polUni": "uni",
    "fvTenant": "tn-{name}",
    "fvCtx": "ctx-{name}",
    "fvBD": "BD-{name}",
    "fvRsCtx": "rsctx",
    "fvSubnet": "subnet-[{ip}]",
    "fvAp": "ap-{name}",
    "fvAEPg": "epg-{name}",
    "fvRsBd": "rsbd",
    "fvRsDomAtt": "rsdomAtt-[{tDn}]",
    "vmmSecP": "sec",
    "fvRsNodeAtt": "rsnodeAtt-[{tDn}]",
    "fvRsPathAtt": "rspathAtt-[{tDn}]",
    "fvRsProv": "rsprov-{tnVzBrCPName}",
    "fvRsCons": "rscons-{tnVzBrCPName}",
    "fvRsConsIf": "rsconsIf-{tnVzCPIfName}",
    "fvCEp": "cep-{mac}",
    "vzBrCP": "brc-{name}",
    "vzCPIf": "cif-{name}",
    "vzSubj": "subj-{name}",
    "vzRsSubjFiltAtt": "rssubjFiltAtt-{tnVzFilterName}",
    "vzFilter": "flt-{name}",
    "vzEntry": "e-{name}",
    "physDomP": "phys-{name}",
    "tagAnnotation": "annotationKey-[{key}]",
}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")

#: Naming properties per class, derived from the RN formats so the two can never disagree.
NAMING_PROPS: dict[str, tuple[str, ...]] = {
    cls: tuple(_PLACEHOLDER.findall(fmt)) for cls, fmt in RN_FORMATS.items()
}


def split_dn(dn: str) -> list[str]:
    """Split a DN into RNs on ``/`` at bracket depth 0 (``rspathAtt-[topology/.../pathep-[eth1/1]]``
    is one RN)."""
    rns: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in dn:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == "/" and depth == 0:
            rns.append("".join(current))
            current = []
        else:
            current.append(ch)
    if current or dn.endswith("/"):
        rns.append("".join(current))
    return [rn for rn in rns if rn]


def parent_dn(dn: str) -> str:
    """The DN one level up ("" for a top-level RN)."""
    return "/".join(split_dn(dn)[:-1])


def rn_for(cls: str, attrs: dict[str, str]) -> str:
    """RN of an object of class ``cls`` from its naming attributes."""
    try:
        fmt = RN_FORMATS[cls]
    except KeyError:
        raise ValueError(f"no RN format known for class {cls}") from None
    return fmt.format(**{prop: attrs[prop] for prop in NAMING_PROPS[cls]})


@dataclass(eq=False)
class Mo:
    """One managed object with its children.

    ``managed`` is meaningful only on the desired side: False marks a container the gateway does not
    own (an existing user tenant, say) that appears only so owned children can hang below it; its
    attributes are never written.
    """

    cls: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Mo] = field(default_factory=list)
    managed: bool = True
    # RN -> position in ``children``; keeps building and diffing trees of hundreds of objects linear
    # instead of quadratic. Change ``children`` through add()/remove(); a list changed directly is
    # re-indexed when its length or the entry found no longer matches.
    _index: dict[str, int] = field(default_factory=dict, repr=False)
    # The RN, computed once: naming attributes never change after an object is built.
    _rn: str = field(default="", repr=False)

    @property
    def rn(self) -> str:
        if not self._rn:
            if self.attrs.get("rn"):
                self._rn = self.attrs["rn"]
            elif self.attrs.get("dn"):
                self._rn = split_dn(self.attrs["dn"])[-1]
            else:
                self._rn = rn_for(self.cls, self.attrs)
        return self._rn

    def _by_rn(self) -> dict[str, int]:
        if len(self._index) != len(self.children):
            self._index = {c.rn: i for i, c in enumerate(self.children)}
        return self._index

    def add(self, child: Mo) -> Mo:
        """Append ``child`` (replacing a same-RN child, so building is order-insensitive) and return it."""
        index = self._by_rn()
        rn = child.rn
        if rn in index:
            self.children[index[rn]] = child
        else:
            index[rn] = len(self.children)
            self.children.append(child)
        return child

    def remove(self, rn: str) -> Mo | None:
        """Remove and return the child with this RN, if any."""
        found = self.child(rn)
        if found is not None:
            self.children.remove(found)
            self._index = {}
        return found

    def child(self, rn: str) -> Mo | None:
        position = self._by_rn().get(rn)
        if position is not None and self.children[position].rn != rn:
            self._index = {}
            position = self._by_rn().get(rn)
        return self.children[position] if position is not None else None

    def children_of(self, cls: str) -> list[Mo]:
        return [c for c in self.children if c.cls == cls]

    def walk(self) -> Iterator[Mo]:
        """This object and all descendants, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()

    def to_json(self) -> dict[str, Any]:
        """Wire form; ``attributes`` first (APIC requires it), ``children`` only when non-empty."""
        body: dict[str, Any] = {"attributes": dict(self.attrs)}
        if self.children:
            body["children"] = [c.to_json() for c in self.children]
        return {self.cls: body}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Mo:
        """Parse one ``{"<class>": {...}}`` element of an APIC reply."""
        if len(obj) != 1:
            raise ValueError(f"an MO element has exactly one class key, got {sorted(obj)}")
        ((klass, body),) = obj.items()
        attrs = {k: str(v) for k, v in (body.get("attributes") or {}).items()}
        children = [cls.from_json(c) for c in body.get("children") or []]
        return cls(klass, attrs, children)
