"""The query engine: DN and class queries with APIC's query options.

Order of evaluation follows APIC: pick the targets (``query-target`` over the DN or every object of
the class), keep ``target-subtree-class`` and ``query-target-filter`` matches, sort (``order-by``),
count (``totalCount`` is counted before paging), page, then render each target with the requested
nested subtree (``rsp-subtree*``) and properties (``rsp-prop-include``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apic_mock import naming
from apic_mock.classes import lookup
from apic_mock.dn import is_within
from apic_mock.errors import ApicError
from apic_mock.filters import Predicate, compile_filter
from apic_mock.render import prop_getter, render
from apic_mock.tree import Mo, Tree

QUERY_TARGETS = ("self", "children", "subtree")
RSP_SUBTREES = ("no", "children", "full")
RSP_SUBTREES_POST = ("no", "children", "full", "modified")
PROP_INCLUDES = ("all", "naming-only", "config-only", "config-explicit", "config-all", "oper")
SUBTREE_INCLUDES = (
    "count",
    "faults",
    "health",
    "relations",
    "required",
    "no-scoped",
    "subtree",
    "audit-logs",
    "event-logs",
    "fault-records",
    "health-records",
    "stats",
    "tasks",
    "deployment-records",
    "fault-count",
    "health-count",
)
TOO_BIG = "Unable to process the query, result dataset is too big"


@dataclass
class QueryOptions:
    """The query parameters of one request, validated."""

    query_target: str = "self"
    target_classes: set[str] | None = None
    target_filter: str | None = None
    rsp_subtree: str = "no"
    rsp_classes: set[str] | None = None
    rsp_filter: str | None = None
    rsp_include: set[str] = field(default_factory=set)
    prop_include: str = "all"
    order_by: list[tuple[str, str, bool]] = field(default_factory=list)
    page: int | None = None
    page_size: int | None = None
    subscription: str | None = None
    refresh_timeout: int | None = None


def _choice(params: Mapping[str, str], name: str, allowed: Iterable[str], default: str) -> str:
    value = params.get(name, default) or default
    if value not in allowed:
        raise ApicError(400, f"Invalid value '{value}' for query option {name}")
    return value


def _classes(value: str | None) -> set[str] | None:
    if not value:
        return None
    return {c.strip().replace(".", "") for c in value.split(",") if c.strip()}


def _int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ApicError(400, f"Invalid value '{raw}' for query option {name}")
    return int(raw)


def parse_options(params: Mapping[str, str], *, post: bool = False) -> QueryOptions:
    """Validate the query string of a GET (or, with ``post``, of a config POST)."""
    opts = QueryOptions()
    opts.query_target = _choice(params, "query-target", QUERY_TARGETS, "self")
    opts.target_classes = _classes(params.get("target-subtree-class"))
    opts.target_filter = params.get("query-target-filter") or None
    opts.rsp_subtree = _choice(params, "rsp-subtree", RSP_SUBTREES_POST if post else RSP_SUBTREES, "no")
    opts.rsp_classes = _classes(params.get("rsp-subtree-class"))
    opts.rsp_filter = params.get("rsp-subtree-filter") or None
    include = params.get("rsp-subtree-include") or ""
    opts.rsp_include = {p.strip() for p in include.split(",") if p.strip()}
    unknown = opts.rsp_include - set(SUBTREE_INCLUDES)
    if unknown:
        raise ApicError(400, f"Invalid value '{include}' for query option rsp-subtree-include")
    opts.prop_include = _choice(params, "rsp-prop-include", PROP_INCLUDES, "all")
    for item in (params.get("order-by") or "").split(","):
        item = item.strip()
        if not item:
            continue
        ref, _, direction = item.partition("|")
        cls, _, prop = ref.rpartition(".")
        if not prop or direction not in ("", "asc", "desc"):
            raise ApicError(400, f"Invalid value '{item}' for query option order-by")
        opts.order_by.append((cls.replace(".", ""), prop, direction == "desc"))
    opts.page = _int(params, "page")
    opts.page_size = _int(params, "page-size")
    sub = params.get("subscription")
    if sub is not None and sub not in ("yes", "no"):
        raise ApicError(400, f"Invalid value '{sub}' for query option subscription")
    opts.subscription = sub
    opts.refresh_timeout = _int(params, "refresh-timeout")
    return opts


@dataclass
class QueryScope:
    """What a query (or a subscription) is about: one DN, or a class optionally under a DN."""

    dn: str | None = None
    cls: str | None = None
    within: str | None = None


class QueryEngine:
    """Runs queries over one tree."""

    def __init__(self, tree: Tree, max_result: int = 100_000) -> None:
        self.tree = tree
        self.max_result = max_result
        self.get = prop_getter(tree)

    def predicate(self, text: str | None) -> Predicate | None:
        """Compile a filter (None when there is none)."""
        return compile_filter(text, self.get) if text else None

    def scope_for_dn(self, dn: str) -> QueryScope:
        """Resolve a URL DN: error 104 when it does not parse, canonical spelling otherwise."""
        if self.tree.get(dn) is not None:
            return QueryScope(dn=dn)
        return QueryScope(dn=naming.canonical_dn(dn))

    def scope_for_class(self, cls: str, within: str | None = None) -> QueryScope:
        """Resolve a class query target; unknown classes give APIC's "unresolved class" error."""
        meta = lookup(cls)
        if meta is None:
            raise ApicError(400, f"Request failed, unresolved class for {cls}")
        if within is not None and self.tree.get(within) is None:
            within = naming.canonical_dn(within)
        return QueryScope(cls=meta.name, within=within)

    def bases(self, scope: QueryScope) -> list[Mo]:
        """The objects the query starts from."""
        if scope.dn is not None:
            mo = self.tree.get(scope.dn)
            return [mo] if mo is not None else []
        found = self.tree.of_class(scope.cls or "")
        if scope.within is not None:
            within = scope.within
            found = [mo for mo in found if is_within(mo.dn, within)]
        return found

    def targets(self, scope: QueryScope, opts: QueryOptions) -> list[Mo]:
        """Targets after ``query-target``, ``target-subtree-class`` and ``query-target-filter``."""
        out: list[Mo] = []
        for base in self.bases(scope):
            if opts.query_target == "self":
                out.append(base)
            elif opts.query_target == "children":
                out.extend(base.children.values())
            else:
                out.extend(self.tree.walk(base))
        if opts.target_classes is not None:
            wanted = opts.target_classes
            out = [mo for mo in out if mo.cls in wanted]
        keep = self.predicate(opts.target_filter)
        if keep is not None:
            out = [mo for mo in out if keep(mo)]
        return out

    def run(self, scope: QueryScope, opts: QueryOptions) -> tuple[list[dict[str, Any]], int]:
        """``(imdata, totalCount)`` for a query."""
        found = self.targets(scope, opts)
        if opts.order_by:
            found = self._sorted(found, opts.order_by)
        total = len(found)
        if "no-scoped" in opts.rsp_include and opts.rsp_include & {
            "faults",
            "health",
            "fault-records",
            "health-records",
            "audit-logs",
            "event-logs",
            "stats",
            "tasks",
        }:
            # Only the included records are asked for, and the mock keeps none (no faults, no health).
            return [], 0
        if "count" in opts.rsp_include:
            count = {
                "moCount": {"attributes": {"childAction": "", "count": str(total), "dn": "", "status": ""}}
            }
            return [count], 1
        if opts.page_size is not None:
            start = (opts.page or 0) * opts.page_size
            found = found[start : start + opts.page_size]
        elif total > self.max_result:
            raise ApicError(400, TOO_BIG)
        return [self.render(mo, opts) for mo in found], total

    def render(self, mo: Mo, opts: QueryOptions) -> dict[str, Any]:
        """One target as the options ask."""
        return render(
            self.tree,
            mo,
            subtree=opts.rsp_subtree if opts.rsp_subtree in ("children", "full") else "no",
            classes=opts.rsp_classes,
            keep=self.predicate(opts.rsp_filter),
            include=opts.prop_include,
        )

    def _sorted(self, found: list[Mo], order: list[tuple[str, str, bool]]) -> list[Mo]:
        def key_for(cls: str, prop: str) -> Callable[[Mo], tuple[int, Any]]:
            def key(mo: Mo) -> tuple[int, Any]:
                value = self.get(mo, prop) if (not cls or mo.cls == cls) else None
                if value is None:
                    return (2, "")
                try:
                    return (0, float(value))
                except ValueError:
                    return (1, value)

            return key

        # Python's sort is stable: sort by the last key first to get a multi-key order.
        for cls, prop, desc in reversed(order):
            found = sorted(found, key=key_for(cls, prop), reverse=desc)
        return found
