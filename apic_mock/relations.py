"""Relation resolution: the ``tDn``/``state`` a relation MO reports, computed when it is read.

APIC accepts a relation to a target that does not exist yet and reports ``state: missing-target``
until the target appears. Resolving at read time gives the same behaviour without bookkeeping: the
state is always current, whatever the order objects were created in.
"""

from __future__ import annotations

from apic_mock.classes import CLASSES
from apic_mock.dn import split_dn
from apic_mock.tree import Mo, Tree

COMMON_TENANT = "uni/tn-common"


def _tenant_of(dn: str) -> str | None:
    rns = split_dn(dn)
    if len(rns) >= 2 and rns[0] == "uni" and rns[1].startswith("tn-"):
        return f"uni/{rns[1]}"
    return None


def resolve(tree: Tree, mo: Mo) -> dict[str, str]:
    """The operational relation properties of ``mo`` (empty for non-relation classes)."""
    meta = CLASSES.get(mo.cls)
    if meta is None or meta.relation is None:
        return {}
    rel = meta.relation
    if rel.name_prop is None:
        target_dn = mo.attrs.get("tDn", "")
        target = tree.get(target_dn)
        return {
            "tDn": target_dn,
            "tCl": target.cls if target else rel.target_class,
            "state": "formed" if target else "missing-target",
            "stateQual": "none",
        }
    name = mo.attrs.get(rel.name_prop, "")
    rn = (rel.target_rn or "").format(name=name or "default")
    tenant = _tenant_of(mo.dn)
    candidates = [f"{tenant}/{rn}"] if tenant and name else []
    candidates.append(f"{COMMON_TENANT}/{rn}")
    for dn in candidates:
        if tree.get(dn) is not None:
            return {
                "tDn": dn,
                "tRn": rn,
                "tCl": rel.target_class,
                "state": "formed",
                "stateQual": "none" if name else "default-target",
            }
    return {
        "tDn": candidates[0],
        "tRn": rn,
        "tCl": rel.target_class,
        "state": "missing-target",
        "stateQual": "none",
    }
