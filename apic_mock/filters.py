"""The APIC filter grammar (``query-target-filter``, ``rsp-subtree-filter``).

``op(cls.prop,"value")`` terms (eq ne lt gt le ge bw wcard anybit allbits) composed with
``and(...)``, ``or(...)``, ``xor(...)`` and ``not(...)``, nested freely, values quoted or bare. A
filter is parsed once into a predicate over MOs so that a class query over thousands of objects pays
only for evaluation. A term on ``fvBD.name`` is false for objects of other classes, as on APIC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from apic_mock.errors import ApicError
from apic_mock.tree import Mo

Getter = Callable[[Mo, str], str | None]
Predicate = Callable[[Mo], bool]

MAX_FILTER_LENGTH = 8192
MAX_FILTER_DEPTH = 32

_COMPARE = {"eq", "ne", "lt", "gt", "le", "ge"}
_LOGIC = {"and", "or", "xor", "not"}
_CONST = {"true", "false", "pholder", "passive"}
_OTHER = {"bw", "wcard", "anybit", "allbits"}


class FilterError(ApicError):
    """A filter that does not parse; reported as APIC error 400 (unverified code, see docs)."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(400, f"Invalid filter '{text}': {reason}")


@dataclass(frozen=True)
class _PropRef:
    cls: str
    prop: str


@dataclass
class _Call:
    op: str
    args: list[_Call | _PropRef | str]


class _Parser:
    """Recursive descent over the filter text; tolerant of whitespace after commas."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, reason: str) -> FilterError:
        return FilterError(self.text, f"{reason} at position {self.pos}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def parse(self) -> _Call:
        node = self.call(0)
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.fail("trailing characters")
        return node

    def ident(self) -> str:
        self.skip_ws()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*").match(self.text, self.pos)
        if not m:
            raise self.fail("expected a name")
        self.pos = m.end()
        return m.group(0)

    def call(self, depth: int) -> _Call:
        if depth > MAX_FILTER_DEPTH:
            raise self.fail("filter nested too deeply")
        op = self.ident()
        if op not in _COMPARE | _LOGIC | _CONST | _OTHER:
            raise self.fail(f"unknown operator '{op}'")
        self.skip_ws()
        if self.pos >= len(self.text) or self.text[self.pos] != "(":
            raise self.fail("expected '('")
        self.pos += 1
        args: list[_Call | _PropRef | str] = []
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] == ")":
            self.pos += 1
            return _Call(op, args)
        while True:
            args.append(self.arg(op, depth))
            self.skip_ws()
            if self.pos >= len(self.text):
                raise self.fail("unterminated argument list")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == ")":
                return _Call(op, args)
            if ch != ",":
                raise self.fail("expected ',' or ')'")

    def arg(self, op: str, depth: int) -> _Call | _PropRef | str:
        self.skip_ws()
        if self.pos >= len(self.text):
            raise self.fail("missing argument")
        if op in _LOGIC:
            return self.call(depth + 1)
        ch = self.text[self.pos]
        if ch in "\"'":
            return self.quoted(ch)
        m = re.compile(r"[^,()\s]+").match(self.text, self.pos)
        if not m:
            raise self.fail("bad argument")
        self.pos = m.end()
        token = m.group(0)
        if "." in token and not _is_number(token):
            cls, _, prop = token.rpartition(".")
            return _PropRef(cls.replace(".", ""), prop)
        return token

    def quoted(self, quote: str) -> str:
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == quote:
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise self.fail("unterminated string")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _key(value: str) -> tuple[int, float | str]:
    """Sort/compare key: numbers numerically, everything else as text (numbers first)."""
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _compare(op: str, left: str, right: str) -> bool:
    if op == "eq":
        return left == right or (_is_number(left) and _is_number(right) and float(left) == float(right))
    if op == "ne":
        return not _compare("eq", left, right)
    a, b = _key(left), _key(right)
    if a[0] != b[0]:
        a, b = (1, left), (1, right)
    return {"lt": a < b, "gt": a > b, "le": a <= b, "ge": a >= b}[op]


def compile_filter(text: str, get: Getter) -> Predicate:
    """Parse ``text`` and return a predicate over MOs; ``get(mo, prop)`` reads a property."""
    text = text.strip()
    if not text:
        raise FilterError(text, "empty filter")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(text[:64] + "...", "filter too long")
    return _build(_Parser(text).parse(), get, text)


def _build(node: _Call, get: Getter, text: str) -> Predicate:
    op, args = node.op, node.args
    if op in _CONST:
        value = op != "false"
        return lambda mo: value
    if op in _LOGIC:
        subs = [_build(a, get, text) for a in args if isinstance(a, _Call)]
        if not subs or (op == "not" and len(subs) != 1):
            raise FilterError(text, f"wrong number of arguments to {op}")
        if op == "and":
            return lambda mo: all(p(mo) for p in subs)
        if op == "or":
            return lambda mo: any(p(mo) for p in subs)
        if op == "xor":
            return lambda mo: sum(1 for p in subs if p(mo)) % 2 == 1
        only = subs[0]
        return lambda mo: not only(mo)
    want = 3 if op == "bw" else 2
    if (
        len(args) != want
        or not isinstance(args[0], _PropRef)
        or not all(isinstance(a, str) for a in args[1:])
    ):
        raise FilterError(text, f"{op} takes a property and {want - 1} value(s)")
    ref = args[0]
    values = [str(a) for a in args[1:]]

    def prop(mo: Mo) -> str | None:
        if ref.cls and mo.cls != ref.cls:
            return None
        return get(mo, ref.prop)

    if op in ("eq", "ne") and not _is_number(values[0]):
        # The common case (names, DNs, states): a plain string comparison, no number parsing.
        want, equal = values[0], op == "eq"
        return lambda mo: (v := prop(mo)) is not None and (v == want) is equal
    if op in _COMPARE:
        return lambda mo: (v := prop(mo)) is not None and _compare(op, v, values[0])
    if op == "bw":
        lo, hi = values
        return lambda mo: (v := prop(mo)) is not None and _compare("ge", v, lo) and _compare("le", v, hi)
    if op == "wcard":
        try:
            rx = re.compile(values[0])
        except re.error:
            rx = re.compile(re.escape(values[0]))
        return lambda mo: (v := prop(mo)) is not None and rx.search(v) is not None
    flags = {f for f in values[0].split(",") if f}
    if op == "anybit":
        return lambda mo: (v := prop(mo)) is not None and bool(flags & set(v.split(",")))
    return lambda mo: (v := prop(mo)) is not None and flags <= set(v.split(","))
