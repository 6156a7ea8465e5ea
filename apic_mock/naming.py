"""Parse DNs against the class table: which class each RN is, with which naming values.

A URL DN is only meaningful once each RN has been matched to a class allowed under the previous one;
that is how the mock tells ``uni/tn-a/BD-b`` (valid, maybe absent) from ``uni/fabricNode`` (error 104)
and how it canonicalises ``tn-[Dag]`` to ``tn-Dag``.
"""

from __future__ import annotations

from dataclasses import dataclass

from apic_mock import errors
from apic_mock.classes import ROOT_CLASS, MoClass, child_classes
from apic_mock.dn import DnSyntaxError, join_dn, split_dn

MAX_DN_LENGTH = 4096


@dataclass(frozen=True)
class RnPart:
    """One RN of a parsed DN: its class, naming values and canonical spelling."""

    cls: MoClass
    naming: dict[str, str]
    rn: str


def parse_rn(parent_class: str, rn: str) -> RnPart:
    """Match ``rn`` against the classes allowed under ``parent_class`` (error 104 if none fits)."""
    for cls in child_classes(parent_class):
        if cls.rn.prefix and not rn.startswith(cls.rn.prefix):
            continue
        values = cls.rn.parse(rn)
        if values is not None:
            return RnPart(cls, values, cls.rn.build(values))
    raise errors.invalid_rn(rn)


def split(dn: str) -> list[str]:
    """:func:`split_dn` with APIC's error 104 for DNs that are too long or unbalanced."""
    if len(dn) > MAX_DN_LENGTH:
        raise errors.invalid_rn(dn[:64] + "...")
    try:
        return split_dn(dn)
    except DnSyntaxError:
        raise errors.invalid_rn(dn) from None


def parse_dn(dn: str) -> list[RnPart]:
    """Every RN of ``dn`` with its class; raises APIC error 104 for anything that does not parse."""
    rns = split(dn)
    parts: list[RnPart] = []
    parent = ROOT_CLASS
    for rn in rns:
        part = parse_rn(parent, rn)
        parts.append(part)
        parent = part.cls.name
    return parts


def canonical_dn(dn: str) -> str:
    """``dn`` with every RN rebuilt from its naming values (``uni/tn-[a]`` becomes ``uni/tn-a``)."""
    dn_out = ""
    for part in parse_dn(dn):
        dn_out = join_dn(dn_out, part.rn)
    return dn_out
