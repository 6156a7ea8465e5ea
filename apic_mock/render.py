"""Turning MOs into APIC JSON.

Top-level objects carry ``dn``, nested ones ``rn``; every value is a string; ``children`` appears only
when there are some (ansible branches on its presence). Attributes come out sorted by name, as APIC
writes them. The same property reader serves filters, so a filter sees exactly what a reply shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apic_mock.classes import CLASSES
from apic_mock.relations import resolve
from apic_mock.tree import Mo, Tree

# Properties APIC adds to every object it returns.
UID = "15374"


def meta_props(mo: Mo) -> dict[str, str]:
    """The implicit properties of any returned object."""
    return {"childAction": "", "lcOwn": "local", "modTs": mo.mod_ts, "status": "", "uid": UID}


def prop_getter(tree: Tree) -> Callable[[Mo, str], str | None]:
    """A reader for one property of an object, as a filter or ``order-by`` sees it."""

    def get(mo: Mo, name: str) -> str | None:
        value = mo.attrs.get(name)
        if value is not None:
            meta = CLASSES.get(mo.cls)
            if meta is not None and name in meta.props and meta.props[name].secret:
                return None
            return value
        if name == "dn":
            return mo.dn
        if name == "rn":
            return mo.rn
        related = resolve(tree, mo)
        if name in related:
            return related[name]
        return meta_props(mo).get(name)

    return get


def attributes(
    tree: Tree, mo: Mo, *, top: bool, include: str = "all", secrets: bool = False
) -> dict[str, str]:
    """The ``attributes`` object of ``mo``.

    ``include`` is APIC's ``rsp-prop-include``: ``all``, ``naming-only``, ``config-only`` (also
    ``config-explicit``/``config-all``) or ``oper``.
    """
    meta = CLASSES.get(mo.cls)
    props = meta.props if meta else {}
    out: dict[str, str]
    if include == "naming-only":
        naming = meta.naming if meta else ()
        out = {k: mo.attrs.get(k, "") for k in naming}
    elif include.startswith("config"):
        out = {
            k: v for k, v in mo.attrs.items() if (p := props.get(k)) is None or (p.config and not p.secret)
        }
    else:
        out = {k: v for k, v in mo.attrs.items() if secrets or (p := props.get(k)) is None or not p.secret}
        out.update(resolve(tree, mo))
        out.update(meta_props(mo))
        if include == "oper":
            naming = set(meta.naming) if meta else set()
            out = {k: v for k, v in out.items() if k in naming or (p := props.get(k)) is None or not p.config}
    out["dn" if top else "rn"] = mo.dn if top else mo.rn
    return dict(sorted(out.items()))


def wrap(cls: str, attrs: dict[str, str], children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``{cls: {"attributes": ..., "children": [...]}}`` with ``children`` only when non-empty."""
    body: dict[str, Any] = {"attributes": attrs}
    if children:
        body["children"] = children
    return {cls: body}


def render(
    tree: Tree,
    mo: Mo,
    *,
    subtree: str = "no",
    classes: set[str] | None = None,
    keep: Callable[[Mo], bool] | None = None,
    include: str = "all",
    top: bool = True,
    secrets: bool = False,
) -> dict[str, Any]:
    """``mo`` with its subtree as asked (``rsp-subtree`` no, children or full).

    ``classes`` (``rsp-subtree-class``) and ``keep`` (``rsp-subtree-filter``) select nested objects;
    with ``full``, ancestors needed to reach a selected object are included too.
    """

    def selected(node: Mo) -> bool:
        return (classes is None or node.cls in classes) and (keep is None or keep(node))

    def nested(node: Mo, depth_left: int) -> list[dict[str, Any]]:
        out = []
        for child in node.children.values():
            grand = nested(child, depth_left - 1) if depth_left > 1 else []
            if grand or selected(child):
                attrs = attributes(tree, child, top=False, include=include, secrets=secrets)
                out.append(wrap(child.cls, attrs, grand))
        return out

    children: list[dict[str, Any]] = []
    if subtree == "children":
        children = nested(mo, 1)
    elif subtree == "full":
        children = nested(mo, 10_000)
    return wrap(mo.cls, attributes(tree, mo, top=top, include=include, secrets=secrets), children)
