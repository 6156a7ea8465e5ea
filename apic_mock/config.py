"""Configuration: APIC's POST (merge) and DELETE semantics over the tree.

A POST carries one MO tree (or, as aciClient sends, a list of them). Each object's DN comes from an
explicit ``dn``, from the URL when the URL names the object itself, or from URL + RN otherwise.
Objects are merged: unmentioned properties and siblings stay as they are. A request is atomic: any
error undoes what the request had already changed, so a failed POST leaves no half-built tenant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from apic_mock import errors, naming
from apic_mock.classes import CLASSES, ROOT_CLASS, MoClass, lookup
from apic_mock.dn import join_dn, parent_dn
from apic_mock.errors import ApicError
from apic_mock.tree import Mo, Tree

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_NESTING = 48
MAX_OBJECTS = 200_000

# Properties APIC returns on every object; a client that posts back what it read may send them.
IGNORED_PROPS = {"childAction", "lcOwn", "modTs", "uid", "rn", "configIssues", "monPolDn", "extMngdBy"}
# Computed by relation resolution, never stored.
COMPUTED_REL_PROPS = {"tCl", "tRn", "tType", "tContextDn", "state", "stateQual", "forceResolve", "rType"}
PROTECTED_DNS = {
    "",
    "uni",
    "uni/tn-common",
    "uni/tn-infra",
    "uni/tn-mgmt",
    "uni/infra",
    "uni/fabric",
    "uni/userext",
    "topology",
}
STATUS_WORDS = {"created", "modified", "deleted"}
ATTRIBUTES_FIRST = (
    "invalid data at line '1'. Attributes are missing, tag 'attributes' must be specified first, "
    "before any other tag"
)


def parse_body(raw: bytes) -> Any:
    """Decode a request body as JSON whatever its Content-Type, with APIC's error text."""
    if len(raw) > MAX_BODY_BYTES:
        raise ApicError(400, f"Request body too large: {len(raw)} bytes (limit {MAX_BODY_BYTES})")
    if not raw.strip():
        raise ApicError(400, "JSON parsing failed - empty request body at line: 1")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise ApicError(400, "JSON parsing failed - invalid UTF-8 at line: 1") from None
    except json.JSONDecodeError as exc:
        raise ApicError(400, f"JSON parsing failed - {exc.msg} at line: {exc.lineno}") from None
    except RecursionError:
        raise ApicError(400, f"invalid data: nesting deeper than {MAX_NESTING} levels") from None


@dataclass
class Change:
    """What a request did to one object; ``attrs`` holds the changed (or, when created, all) values."""

    status: str
    mo: Mo
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """The result of a POST or DELETE: the posted roots and every change, in order."""

    roots: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def events(self) -> Iterator[Change]:
        """Per-object changes, with a deleted subtree expanded to one change per removed object."""
        for change in self.changes:
            if change.status == "deleted":
                for mo in Tree.walk(change.mo):
                    yield Change("deleted", mo)
            else:
                yield change


def unwrap(node: Any) -> tuple[str, dict[str, str], list[Any]]:
    """Check the ``{"cls":{"attributes":{...},"children":[...]}}`` shape of one posted object."""
    if not isinstance(node, dict) or len(node) != 1:
        raise ApicError(400, 'invalid data: each object must be {"<class>":{"attributes":{...}}}')
    ((cls, body),) = node.items()
    if not isinstance(body, dict) or not body or next(iter(body)) != "attributes":
        raise ApicError(400, ATTRIBUTES_FIRST)
    raw_attrs = body["attributes"]
    children = body.get("children", [])
    if not isinstance(raw_attrs, dict):
        raise ApicError(400, f"invalid data: attributes of '{cls}' must be an object")
    if not isinstance(children, list):
        raise ApicError(400, f"invalid data: children of '{cls}' must be a list")
    attrs: dict[str, str] = {}
    for key, value in raw_attrs.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, int | float):
            value = str(value)
        elif not isinstance(value, str):
            raise ApicError(
                400, f"invalid data: value of attribute '{key}' in element '{cls}' must be a string"
            )
        attrs[str(key)] = value
    return str(cls), attrs, children


class Configurator:
    """Applies POST bodies and DELETEs to a tree, atomically."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    # --- public operations ----------------------------------------------------------------------
    def post(self, url_dn: str, body: Any, *, privileged: bool = False) -> Outcome:
        """Merge ``body`` into the tree at ``url_dn``.

        ``privileged`` is for the seed, state file and admin API: it may write read-only classes and
        operational properties (the fabric's own view), and creates missing ancestors.
        """
        url_parts = naming.parse_dn(url_dn)
        canonical_url = "/".join(p.rn for p in url_parts)
        items = body if isinstance(body, list) else [body]
        if not items:
            raise ApicError(400, "invalid data: no managed object in request")
        run = _Run(self.tree, privileged)
        try:
            for item in items:
                cls_name, attrs, children = unwrap(item)
                meta = self._class(cls_name)
                dn = self._root_dn(meta, attrs, canonical_url, url_parts)
                run.outcome.roots.append(dn)
                run.apply(meta, attrs, children, dn, depth=1, check_path=True)
        except BaseException:
            run.rollback()
            raise
        return run.outcome

    def delete(self, dn: str, *, privileged: bool = False) -> Outcome:
        """Remove ``dn`` and its subtree; an absent DN is not an error (APIC answers 200)."""
        canonical = dn if self.tree.get(dn) is not None else naming.canonical_dn(dn)
        run = _Run(self.tree, privileged)
        run.outcome.roots.append(canonical)
        mo = self.tree.get(canonical)
        if mo is not None:
            run.remove(mo)
        return run.outcome

    # --- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _class(name: str) -> MoClass:
        meta = lookup(name)
        if meta is None:
            raise errors.unknown_class(name)
        return meta

    @staticmethod
    def _root_dn(meta: MoClass, attrs: dict[str, str], url_dn: str, url_parts: list[naming.RnPart]) -> str:
        """Where a top-level posted object lives (reference §3.1, rules 1 to 3)."""
        if "dn" in attrs:
            return attrs["dn"]
        rn = _rn_from_attrs(meta, attrs, url_dn)
        last = url_parts[-1] if url_parts else None
        if last is not None and last.cls.name == meta.name and (rn is None or rn == last.rn):
            return url_dn
        if rn is None:
            missing = [p for p in meta.naming if p not in attrs]
            raise ApicError(400, f"Naming property {missing[0]} of class {meta.name} must be specified")
        return join_dn(url_dn, rn)


def _rn_from_attrs(meta: MoClass, attrs: dict[str, str], parent: str) -> str | None:
    """The RN built from posted naming values (None if one is missing); validates them first."""
    if any(p not in attrs for p in meta.naming):
        return None
    for prop in meta.naming:
        spec = meta.props[prop]
        value = spec.canonical(attrs[prop])
        if not spec.enum_ok(value):
            raise errors.bad_enum(value, prop, meta.name, parent)
        if not spec.format_ok(value):
            raise errors.failed_validation(prop, parent, value)
    return meta.rn.build({p: meta.props[p].canonical(attrs[p]) for p in meta.naming})


class _Run:
    """One request's worth of changes, with an undo journal."""

    def __init__(self, tree: Tree, privileged: bool) -> None:
        self.tree = tree
        self.privileged = privileged
        self.outcome = Outcome()
        self.journal: list[tuple[str, Mo, dict[str, str], str]] = []
        self.by_dn: dict[str, Change] = {}
        self.count = 0

    def rollback(self) -> None:
        """Undo everything this request did, newest first."""
        for action, mo, old_attrs, old_ts in reversed(self.journal):
            if action == "add":
                self.tree.detach(mo)
            elif action == "del":
                self.tree.attach(mo)
            else:
                mo.attrs = old_attrs
                mo.mod_ts = old_ts
        self.journal.clear()

    def record(self, status: str, mo: Mo, attrs: dict[str, str]) -> None:
        """Note a change; a later change to an object created in this request stays "created"."""
        previous = self.by_dn.get(mo.dn)
        if previous is not None and previous.status != "deleted" and status == "modified":
            previous.attrs.update(attrs)
            return
        change = Change(status, mo, dict(attrs))
        self.by_dn[mo.dn] = change
        self.outcome.changes.append(change)

    def remove(self, mo: Mo) -> None:
        meta = CLASSES.get(mo.cls)
        if not self.privileged and (mo.dn in PROTECTED_DNS or meta is None or not meta.configurable):
            label = meta.label if meta else mo.cls
            raise ApicError(107, f"Cannot delete {label} ({mo.cls}) {mo.dn}: object is managed by the system")
        self.tree.detach(mo)
        self.journal.append(("del", mo, {}, ""))
        self.record("deleted", mo, {})

    def apply(
        self,
        meta: MoClass,
        attrs: dict[str, str],
        children: list[Any],
        dn: str,
        *,
        depth: int,
        check_path: bool = False,
    ) -> None:
        """Create, update or delete one object, then its children."""
        if depth > MAX_NESTING:
            raise ApicError(400, f"invalid data: nesting deeper than {MAX_NESTING} levels")
        self.count += 1
        if self.count > MAX_OBJECTS:
            raise ApicError(400, f"invalid data: more than {MAX_OBJECTS} objects in one request")
        if check_path:
            parents, naming_values = self._place(meta, dn)
            dn = join_dn("/".join(p.rn for p in parents), meta.rn.build(naming_values))
            if self.privileged:
                self._ensure_ancestors(parents)
        else:
            naming_values = {p: meta.props[p].canonical(attrs[p]) for p in meta.naming}
        status = self._status(meta, attrs.get("status", ""), dn)
        if "deleted" in status:
            existing = self.tree.get(dn)
            if existing is not None:
                self.remove(existing)
            return
        parent = self.tree.get(parent_dn(dn))
        rn = meta.rn.build(naming_values) if meta.naming else meta.rn.fmt
        if parent is None:
            raise errors.parent_missing(dn)
        if not meta.allows_parent(parent.cls):
            raise errors.cannot_contain(rn, parent.dn)
        if not meta.configurable and not self.privileged:
            raise ApicError(122, f"Cannot configure {meta.label} ({meta.name}): class is read-only")
        values = self._validated(meta, attrs, dn)
        values.update(naming_values)
        mo = self.tree.get(dn)
        if mo is None:
            if status == {"modified"}:
                raise errors.parent_missing(dn)
            self._create(meta, parent, rn, values)
            mo = self.tree.get(dn)
            assert mo is not None
        else:
            if status == {"created"}:
                raise errors.already_exists(meta.label, meta.name, dn)
            diff = {k: v for k, v in values.items() if mo.attrs.get(k) != v}
            if diff:
                self.journal.append(("mod", mo, dict(mo.attrs), mo.mod_ts))
                mo.attrs.update(diff)
                self.tree.touch(mo)
                self.record("modified", mo, diff)
        for child in children:
            self._child(mo, child, depth + 1)

    @staticmethod
    def _place(meta: MoClass, dn: str) -> tuple[list[naming.RnPart], dict[str, str]]:
        """Parse an explicit DN for an object of class ``meta``: its ancestors and naming values.

        The last RN is parsed with the posted class's own format, so a well-formed RN under the
        wrong parent gets APIC's "Can not contain child" rather than "Invalid RN".
        """
        rns = naming.split(dn)
        if not rns:
            raise errors.invalid_rn(dn)
        parents = naming.parse_dn("/".join(rns[:-1]))
        values = meta.rn.parse(rns[-1]) if meta.rn.props or rns[-1] == meta.rn.fmt else None
        if values is None:
            raise errors.invalid_rn(rns[-1])
        parent_class = parents[-1].cls.name if parents else ROOT_CLASS
        if not meta.allows_parent(parent_class):
            raise errors.cannot_contain(rns[-1], "/".join(p.rn for p in parents))
        _rn_from_attrs(meta, values, "/".join(p.rn for p in parents))
        return parents, values

    def _child(self, parent: Mo, node: Any, depth: int) -> None:
        if depth > MAX_NESTING:
            raise ApicError(400, f"invalid data: nesting deeper than {MAX_NESTING} levels")
        cls_name, attrs, children = unwrap(node)
        meta = lookup(cls_name)
        if meta is None:
            raise errors.unknown_class(cls_name)
        rn = _rn_from_attrs(meta, attrs, parent.dn) if meta.naming else meta.rn.fmt
        if rn is None and "dn" in attrs:
            self.apply(meta, attrs, children, attrs["dn"], depth=depth, check_path=True)
            return
        if rn is None:
            missing = [p for p in meta.naming if p not in attrs]
            raise ApicError(400, f"Naming property {missing[0]} of class {meta.name} must be specified")
        self.apply(meta, attrs, children, join_dn(parent.dn, rn), depth=depth)

    def _create(self, meta: MoClass, parent: Mo, rn: str, values: dict[str, str]) -> None:
        attrs = meta.defaults()
        attrs.update(values)
        mo = self.tree.add(parent, meta.name, rn, attrs)
        self.journal.append(("add", mo, {}, ""))
        self.record(
            "created",
            mo,
            {k: v for k, v in attrs.items() if not meta.props.get(k) or not meta.props[k].secret},
        )
        for cls_name, implicit_attrs in meta.implicit:
            child_meta = CLASSES[cls_name]
            child_rn = child_meta.rn.build(implicit_attrs) if child_meta.naming else child_meta.rn.fmt
            if child_rn not in mo.children:
                self._create(child_meta, mo, child_rn, dict(implicit_attrs))

    def _ensure_ancestors(self, parts: list[naming.RnPart]) -> None:
        """Privileged writes (seed, state, admin) create missing containers with default values."""
        dn = ""
        for part in parts:
            parent = self.tree.get(dn)
            dn = join_dn(dn, part.rn)
            if self.tree.get(dn) is None and parent is not None:
                self._create(part.cls, parent, part.rn, dict(part.naming))

    @staticmethod
    def _status(meta: MoClass, status: str, dn: str) -> set[str]:
        words = {w.strip() for w in status.split(",") if w.strip()}
        if not words <= STATUS_WORDS or ("deleted" in words and len(words) > 1):
            raise errors.bad_enum(status, "status", meta.name, dn)
        return words

    def _validated(self, meta: MoClass, attrs: dict[str, str], dn: str) -> dict[str, str]:
        """Check every posted property; returns canonical values of the ones to store."""
        out: dict[str, str] = {}
        for name, value in attrs.items():
            if name in ("dn", "status") or name in IGNORED_PROPS:
                continue
            spec = meta.props.get(name)
            if spec is None:
                raise errors.unknown_attribute(name, meta.name)
            if name in COMPUTED_REL_PROPS or (name == "tDn" and meta.relation and meta.relation.name_prop):
                continue
            if not spec.config and not self.privileged:
                continue
            value = spec.canonical(value)
            if not spec.enum_ok(value):
                raise errors.bad_enum(value, name, meta.name, dn)
            if value and not spec.format_ok(value):
                raise errors.failed_validation(name, dn, value)
            out[name] = value
        return out


def modified_reply(tree: Tree, outcome: Outcome) -> list[dict[str, Any]]:
    """The ``rsp-subtree=modified`` reply: changed MOs nested like the request, with ``status``.

    Unchanged ancestors between a posted root and a changed object appear with ``status: ""`` so the
    nesting stays intact; inside a deleted subtree only its root is reported. A no-op POST gives an
    empty list, which is how ansible's ``aci_rest`` knows nothing changed.
    """
    deleted = {c.mo.dn for c in outcome.changes if c.status == "deleted"}
    nodes: dict[str, dict[str, Any]] = {}
    roots = set(outcome.roots)
    top: list[str] = []

    def node(dn: str, cls: str) -> dict[str, Any]:
        if dn not in nodes:
            nodes[dn] = {"cls": cls, "attrs": {"status": ""}, "rn": dn.rpartition("/")[2], "children": []}
        return nodes[dn]

    for change in outcome.changes:
        mo = change.mo
        ancestor = mo.parent
        if any(a.dn in deleted for a in _ancestors(mo)):
            continue
        entry = node(mo.dn, mo.cls)
        entry["rn"] = mo.rn
        entry["attrs"] = {**(change.attrs if change.status != "deleted" else {}), "status": change.status}
        child = mo
        while child.dn not in roots and ancestor is not None and ancestor.dn != "":
            parent_entry = node(ancestor.dn, ancestor.cls)
            if child.dn not in parent_entry["children"]:
                parent_entry["children"].append(child.dn)
            child, ancestor = ancestor, ancestor.parent
        if child.dn not in top:
            top.append(child.dn)

    def build(dn: str, is_top: bool) -> dict[str, Any]:
        entry = nodes[dn]
        attrs = dict(entry["attrs"])
        attrs["dn" if is_top else "rn"] = dn if is_top else entry["rn"]
        body: dict[str, Any] = {"attributes": dict(sorted(attrs.items()))}
        kids = [build(c, False) for c in entry["children"]]
        if kids:
            body["children"] = kids
        return {entry["cls"]: body}

    return [build(dn, True) for dn in top]


def _ancestors(mo: Mo) -> Iterator[Mo]:
    node = mo.parent
    while node is not None:
        yield node
        node = node.parent
