"""Distinguished names and relative names, bracket aware.

APIC wraps naming values that may contain ``/`` in brackets (``subnet-[10.1.1.1/24]``) and brackets
nest (``rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/1]]``), so a DN can only be split on ``/``
at bracket depth zero. RN formats follow the MIM notation ``tn-{name}``, ``subnet-[{ip}]``,
``vlanns-[{name}]-{allocMode}``; :class:`RnFormat` both builds and parses them.
"""

from __future__ import annotations

from dataclasses import dataclass


class DnSyntaxError(ValueError):
    """A DN whose brackets do not balance or that has an empty RN."""


def split_dn(dn: str) -> list[str]:
    """Split a DN into RNs on ``/`` at bracket depth 0; ``""`` (the root) has no RNs."""
    if dn == "":
        return []
    rns: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(dn):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise DnSyntaxError(f"unbalanced ']' in {dn!r}")
        elif ch == "/" and depth == 0:
            rns.append(dn[start:i])
            start = i + 1
    if depth != 0:
        raise DnSyntaxError(f"unbalanced '[' in {dn!r}")
    rns.append(dn[start:])
    if any(rn == "" for rn in rns):
        raise DnSyntaxError(f"empty RN in {dn!r}")
    return rns


def join_dn(parent: str, rn: str) -> str:
    """The DN of ``rn`` under ``parent`` (the root's children have no leading slash)."""
    return f"{parent}/{rn}" if parent else rn


def parent_dn(dn: str) -> str:
    """The parent's DN (``""`` for top-level objects such as ``uni``)."""
    rns = split_dn(dn)
    return "/".join(rns[:-1])


def is_within(dn: str, ancestor: str) -> bool:
    """True when ``dn`` is ``ancestor`` or lies in its subtree."""
    if ancestor == "":
        return True
    return dn == ancestor or dn.startswith(ancestor + "/")


@dataclass(frozen=True)
class _Token:
    literal: str | None = None
    prop: str | None = None
    bracketed: bool = False


class RnFormat:
    """One class's RN format, compiled once: build an RN from naming values, or parse one back."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.tokens = self._compile(fmt)
        self.props = tuple(t.prop for t in self.tokens if t.prop)
        first = self.tokens[0] if self.tokens else None
        self.prefix = first.literal if first and first.literal else ""

    @staticmethod
    def _compile(fmt: str) -> tuple[_Token, ...]:
        tokens: list[_Token] = []
        i = 0
        literal = ""
        while i < len(fmt):
            if fmt.startswith("[{", i) or fmt[i] == "{":
                bracketed = fmt[i] == "["
                end = fmt.index("}", i)
                name = fmt[i + (2 if bracketed else 1) : end]
                if literal:
                    tokens.append(_Token(literal=literal))
                    literal = ""
                tokens.append(_Token(prop=name, bracketed=bracketed))
                i = end + (2 if bracketed else 1)
            else:
                literal += fmt[i]
                i += 1
        if literal:
            tokens.append(_Token(literal=literal))
        return tuple(tokens)

    def build(self, values: dict[str, str]) -> str:
        """The RN for these naming values (raises KeyError when one is missing)."""
        out = []
        for t in self.tokens:
            if t.literal is not None:
                out.append(t.literal)
            else:
                value = values[t.prop or ""]
                out.append(f"[{value}]" if t.bracketed else value)
        return "".join(out)

    def parse(self, rn: str) -> dict[str, str] | None:
        """The naming values in ``rn``, or None when ``rn`` is not of this format.

        Brackets around a plain value are tolerated (``tn-[Dag]``), as APIC does in URLs.
        """
        out: dict[str, str] = {}
        return out if self._match(0, rn, 0, out) else None

    def _match(self, i: int, s: str, pos: int, out: dict[str, str]) -> bool:
        if i == len(self.tokens):
            return pos == len(s)
        tok = self.tokens[i]
        if tok.literal is not None:
            return s.startswith(tok.literal, pos) and self._match(i + 1, s, pos + len(tok.literal), out)
        name = tok.prop or ""
        if tok.bracketed or (pos < len(s) and s[pos] == "["):
            end = _closing_bracket(s, pos)
            if end is None or end == pos + 1:
                return False
            out[name] = s[pos + 1 : end]
            return self._match(i + 1, s, end + 1, out)
        last = i == len(self.tokens) - 1
        ends = [len(s)] if last else range(pos + 1, len(s))
        for end in ends:
            value = s[pos:end]
            if not value or "[" in value or "]" in value:
                continue
            out[name] = value
            if self._match(i + 1, s, end, out):
                return True
        out.pop(name, None)
        return False


def _closing_bracket(s: str, pos: int) -> int | None:
    """Index of the bracket closing the one at ``pos`` (None if ``s[pos]`` is not ``[``)."""
    if pos >= len(s) or s[pos] != "[":
        return None
    depth = 0
    for j in range(pos, len(s)):
        if s[j] == "[":
            depth += 1
        elif s[j] == "]":
            depth -= 1
            if depth == 0:
                return j
    return None
