"""Reconcile, not recreate: the difference between the desired tenant tree and what the APIC holds,
as one POST body.

Contiv's gateway deleted and recreated the whole app profile on every change, which cut traffic. Here
a push reads the tenant subtree once, and this module computes the smallest tree that turns the
current state into the desired one:

* objects missing in the APIC are sent whole;
* owned objects whose attributes drifted are sent with the changed attributes only;
* owned objects no longer wanted are sent with ``status="deleted"`` — unless something live still
  refers to them (another app profile's EPG using a shared bridge domain, a user's EPG consuming one of
  our contracts), and never when they hold a user's object, in which case only our descendants go;
* everything else (user objects, APIC's own children, unchanged objects) is left out.

The result is one subtree rooted at the tenant, so the whole change is a single atomic POST, and an
unchanged payload produces no POST at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from aci_gw.mo import NAMING_PROPS, Mo
from aci_gw.ownership import is_mine, is_owned, is_protected, owner_app

#: Relation classes and what they point at: (target class, attribute naming the target).
_REFERENCES: dict[str, tuple[str, str]] = {
    "fvRsBd": ("fvBD", "tnFvBDName"),
    "fvRsCtx": ("fvCtx", "tnFvCtxName"),
    "fvRsProv": ("vzBrCP", "tnVzBrCPName"),
    "fvRsCons": ("vzBrCP", "tnVzBrCPName"),
    "vzRsAnyToProv": ("vzBrCP", "tnVzBrCPName"),
    "vzRsAnyToCons": ("vzBrCP", "tnVzBrCPName"),
    "vzRsSubjFiltAtt": ("vzFilter", "tnVzFilterName"),
    "vzRsFiltAtt": ("vzFilter", "tnVzFilterName"),
}

#: APIC rewrites some values (apic.md §3.5): well-known ports become names, protocol numbers names.
_PORT_NAMES = {
    "ftpData": "20", "ssh": "22", "smtp": "25", "dns": "53", "http": "80", "pop3": "110",
    "https": "443", "rtsp": "554",
}
_PROTOCOL_NUMBERS = {"icmp": "1", "igmp": "2", "tcp": "6", "egp": "8", "igp": "9", "udp": "17",
                     "icmpv6": "58", "eigrp": "88", "ospfigp": "89", "pim": "103", "l2tp": "115"}
_PORT_ATTRS = frozenset({"dFromPort", "dToPort", "sFromPort", "sToPort"})


def same_value(attr: str, desired: str, current: str | None) -> bool:
    """Compare as the APIC means it: ``http`` equals ``80``, ``tcp`` equals ``6``."""
    if current is None:
        return False
    if attr in _PORT_ATTRS:
        return _PORT_NAMES.get(desired, desired) == _PORT_NAMES.get(current, current)
    if attr == "prot":
        return _PROTOCOL_NUMBERS.get(desired, desired) == _PROTOCOL_NUMBERS.get(current, current)
    return desired == current


@dataclass
class Plan:
    """What a push will send: the POST tree (None when nothing changes) and counts for the reply."""

    tree: Mo | None
    created: int = 0
    modified: int = 0
    deleted: int = 0

    @property
    def changes(self) -> int:
        return self.created + self.modified + self.deleted


def _reference(node: Mo) -> tuple[str, str] | None:
    target = _REFERENCES.get(node.cls)
    if target and node.attrs.get(target[1]):
        return target[0], node.attrs[target[1]]
    return None


def _references(tree: Mo) -> set[tuple[str, str]]:
    return {ref for node in tree.walk() if (ref := _reference(node)) is not None}


def _sweepable_apps(current: Mo, app: str) -> frozenset[str]:
    """The app profile being pushed, plus any whose application profile no longer exists: objects
    such a profile left behind (a contract another profile kept alive) are orphans, swept like shared
    ones once nothing refers to them."""
    tags = {owner_app(c) for c in current.children} - {None}
    alive = {owner_app(ap) for ap in current.children_of("fvAp")} - {app}
    return frozenset({app} | (tags - alive))  # type: ignore[operator]


def _live_references(desired: Mo | None, current: Mo, apps: frozenset[str]) -> set[tuple[str, str]]:
    """Names of tenant-level objects something live refers to.

    Live roots are the desired tree and every current relation that is not the pushed app profile's
    or shared (a user's EPG, another app profile's). A shared or this-app object becomes live when
    referred to, and then what it refers to becomes live too (BD -> VRF, contract -> filter): a
    fixpoint.
    """
    live = _references(desired) if desired is not None else set()
    live |= {ref for node in current.walk() if not is_mine(node, apps) and (ref := _reference(node))}
    wanted = {c.rn for c in desired.children} if desired is not None else set()
    # Objects the push keeps contribute the references of their desired version (already counted),
    # not of the current one, which is about to change.
    candidates = [child for child in current.children if is_mine(child, apps) and child.rn not in wanted]
    changed = True
    while changed:
        changed = False
        for child in candidates:
            if (child.cls, child.attrs.get("name", "")) in live:
                new = _references(child) - live
                if new:
                    live |= new
                    changed = True
    return live


class _Differ:
    def __init__(self, apps: frozenset[str]) -> None:
        self.apps = apps
        self.plan = Plan(None)

    def naming(self, mo: Mo) -> dict[str, str]:
        return {p: mo.attrs[p] for p in NAMING_PROPS.get(mo.cls, ()) if p in mo.attrs}

    def creation(self, desired: Mo) -> Mo:
        self.plan.created += 1 if desired.managed else 0
        attrs = dict(desired.attrs) if desired.managed else self.naming(desired)
        return Mo(desired.cls, attrs, [self.creation(c) for c in desired.children])

    def deletion(self, current: Mo) -> Mo | None:
        """Delete an owned object, or only its owned descendants when it holds something protected."""
        if not any(is_protected(d, self.apps) for d in current.walk() if d is not current):
            self.plan.deleted += 1
            return Mo(current.cls, {**self.naming(current), "status": "deleted"})
        kids = [p for c in current.children if is_mine(c, self.apps) and (p := self.deletion(c))]
        return Mo(current.cls, self.naming(current), kids) if kids else None

    def diff(self, desired: Mo, current: Mo | None, keep: frozenset[str] = frozenset()) -> Mo | None:
        if current is None:
            return self.creation(desired)
        changed: dict[str, str] = {}
        if desired.managed:
            naming = NAMING_PROPS.get(desired.cls, ())
            changed = {
                k: v for k, v in desired.attrs.items()
                if k not in naming and not same_value(k, v, current.attrs.get(k))
            }
            if changed:
                self.plan.modified += 1
        by_rn = {c.rn: c for c in current.children}
        wanted = {c.rn for c in desired.children}
        children = [p for d in desired.children if (p := self.diff(d, by_rn.get(d.rn)))]
        for cur in current.children:
            if cur.rn in wanted or cur.rn in keep or not is_mine(cur, self.apps):
                continue
            if (p := self.deletion(cur)) is not None:
                children.append(p)
        if not changed and not children:
            return None
        return Mo(desired.cls, {**self.naming(desired), **changed}, children)


def _kept(current: Mo, desired: Mo | None, apps: frozenset[str]) -> frozenset[str]:
    """RNs of tenant-level owned objects that must stay although this push does not want them."""
    live = _live_references(desired, current, apps)
    return frozenset(
        child.rn for child in current.children
        if is_owned(child) and (not is_mine(child, apps) or (child.cls, child.attrs.get("name", "")) in live)
    )


def plan_push(desired: Mo, current: Mo | None, app: str) -> Plan:
    """The POST tree that makes the tenant match ``desired`` for app profile ``app``."""
    if current is None:
        differ = _Differ(frozenset({app}))
        differ.plan.tree = differ.creation(desired)
        return differ.plan
    apps = _sweepable_apps(current, app)
    differ = _Differ(apps)
    differ.plan.tree = differ.diff(desired, current, _kept(current, desired, apps))
    return differ.plan


def plan_delete(tenant: str, current: Mo | None, app: str) -> Plan:
    """The POST tree that removes app profile ``app`` and the shared objects nothing needs any more.

    The tenant itself goes when the gateway created it and nothing else lives in it.
    """
    if current is None:
        return Plan(None)
    apps = _sweepable_apps(current, app)
    differ = _Differ(apps)
    kept = _kept(current, None, apps)
    others = [c for c in current.children if c.rn in kept or is_protected(c, apps)]
    if is_owned(current) and not others:
        differ.plan.tree = differ.deletion(current)
    else:
        placeholder = Mo("fvTenant", {"name": tenant}, managed=False)
        differ.plan.tree = differ.diff(placeholder, current, kept)
    return differ.plan
