"""Who owns an APIC object: the ``annotation`` tag the gateway writes on everything it creates.

Ownership is what makes the gateway stateless (a restart re-reads it from the APIC) and safe (it only
ever deletes what carries its tag). Two flavours:

* ``orchestrator:contiv-aci-gw`` — shared tenant infrastructure (tenant, VRF, bridge domains), kept
  as long as something live refers to it;
* ``orchestrator:contiv-aci-gw:app-<name>`` — objects of one application profile (the AP subtree and
  the filters and contracts it defines), removed when that profile stops needing them.
"""

from __future__ import annotations

from aci_gw.mo import Mo

SHARED_TAG = "orchestrator:contiv-aci-gw"
_APP_PREFIX = SHARED_TAG + ":app-"

#: Classes a user may create by hand in a tenant. An untagged object of one of these, found below
#: something the gateway wants to delete, is protected: the gateway deletes around it instead.
#: Objects APIC creates by itself (fvRsTenantMonPol, fvEpTags, vzAny, fvRsCustQosPol, ...) are not in
#: the list, so they never keep an owned object alive.
PROTECTED_CLASSES = frozenset({
    "fvCtx", "fvBD", "fvRsCtx", "fvSubnet", "fvAp", "fvAEPg", "fvRsBd", "fvRsDomAtt", "fvRsNodeAtt",
    "fvRsPathAtt", "fvRsProv", "fvRsCons", "fvRsConsIf", "fvRsBDToOut", "vzBrCP", "vzSubj",
    "vzRsSubjFiltAtt", "vzInTerm", "vzOutTerm", "vzRsFiltAtt", "vzFilter", "vzEntry", "vzCPIf",
    "l3extOut", "fvRsProtBy", "fvRsIntraEpg", "vmmSecP",
})


def app_tag(app: str) -> str:
    return _APP_PREFIX + app


def is_owned(mo: Mo) -> bool:
    tag = mo.attrs.get("annotation", "")
    return tag == SHARED_TAG or tag.startswith(_APP_PREFIX)


def owner_app(mo: Mo) -> str | None:
    """The app profile a tagged object belongs to; None for shared or foreign objects."""
    tag = mo.attrs.get("annotation", "")
    return tag[len(_APP_PREFIX):] if tag.startswith(_APP_PREFIX) else None


def is_mine(mo: Mo, apps: frozenset[str]) -> bool:
    """Owned and either shared or belonging to one of ``apps``: what a push or delete may remove."""
    tag = mo.attrs.get("annotation", "")
    return tag == SHARED_TAG or (tag.startswith(_APP_PREFIX) and tag[len(_APP_PREFIX):] in apps)


def is_protected(mo: Mo, apps: frozenset[str]) -> bool:
    """A user's object (or another app profile's) that a push or delete must not remove."""
    return mo.cls in PROTECTED_CLASSES and not is_mine(mo, apps)
