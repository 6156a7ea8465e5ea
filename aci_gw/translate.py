"""Translation of a Contiv app profile into the desired APIC tree of its tenant.

The rules are Contiv's (reference contiv.md §6.4, apic.md §8.1), the object names too, so a fabric
configured by Contiv's gateway reads the same. What differs: every created object carries the
ownership annotation, existing objects the gateway does not own are referenced but never modified, and
every decision is taken from facts read beforehand (:class:`ApicFacts`), so translation is a pure
function that can be tested without an APIC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from aci_gw.config import FabricSettings
from aci_gw.mo import Mo, split_dn
from aci_gw.ownership import SHARED_TAG, app_tag, is_owned, owner_app
from contiv_api.aci_gw_payload import AppProfileRequest, ContractDef, ContractLink, EpgSpec, FilterSpec

MAX_NAME = 64
UNENFORCED_CONTRACT = "uni/tn-common/brc-default"


class TranslationError(Exception):
    """The request cannot be mapped onto this fabric; ``result`` is the Contiv result code."""

    def __init__(self, result: str, message: str) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class ApicFacts:
    """What the APIC holds that translation depends on, gathered by the gateway in as few reads as
    possible: the tenant subtree, plus tenant common and other DNs only when the request needs them."""

    tenant: Mo | None
    common_bds: frozenset[str] = frozenset()
    existing_dns: frozenset[str] = field(default_factory=frozenset)


def apic_name(name: str) -> str:
    """A valid APIC name for ``name``: unchanged up to 64 characters, else shortened with a hash so
    that two long names never collide and the same input always maps to the same name."""
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME - 9]}-{digest}"


def filter_name(contract: str) -> str:
    return apic_name(f"filt-{contract}")


def subject_name(contract: str) -> str:
    return apic_name(f"subj-{contract}")


def entry_name(spec: FilterSpec) -> str:
    """``entry-ip[-<proto>][-<port>]`` as Contiv named them."""
    parts = ["entry", "ip"]
    if spec.protocol:
        parts.append(spec.protocol)
    if spec.port:
        parts.append(str(spec.port))
    return "-".join(parts)


def parse_contract_dn(dn: str) -> tuple[str, str, str]:
    """``uni/tn-T/brc-C`` or ``uni/tn-T/cif-C`` into (tenant, kind, name); ValueError otherwise."""
    rns = split_dn(dn)
    if len(rns) != 3 or rns[0] != "uni" or not rns[1].startswith("tn-"):
        raise ValueError(dn)
    kind, _, name = rns[2].partition("-")
    if kind not in ("brc", "cif") or not name:
        raise ValueError(dn)
    return rns[1][3:], kind, name


def external_dns_outside(req: AppProfileRequest) -> list[str]:
    """External contract DNs the tenant subtree read cannot confirm (they live in another tenant)."""
    out: list[str] = []
    for epg in req.epgs:
        for link in epg.links:
            if link.contract_kind != "EXTERNAL":
                continue
            try:
                tenant, _, _ = parse_contract_dn(link.dn)
            except ValueError:
                continue  # reported by translate() with a precise message
            if tenant != req.tenant and link.dn not in out:
                out.append(link.dn)
    return out


def needs_common_bds(req: AppProfileRequest, fabric: FabricSettings, tenant: Mo | None) -> bool:
    """True when a bridge domain may have to be found in tenant common (includeCommonTenant)."""
    if fabric.bridge_domain or not fabric.include_common_tenant:
        return False
    have = {bd.attrs.get("name") for bd in (tenant.children_of("fvBD") if tenant else [])}
    return any(epg.network not in have for epg in req.epgs)


class _Builder:
    """Builds the desired tenant tree for one request; one instance per translation."""

    def __init__(self, req: AppProfileRequest, fabric: FabricSettings, facts: ApicFacts) -> None:
        self.req = req
        self.fabric = fabric
        self.facts = facts
        self.current = facts.tenant
        self.app_tag = app_tag(req.app)
        self._vrf: str | None = None
        self._current_by_name = {
            (c.cls, c.attrs.get("name", "")): c for c in (self.current.children if self.current else [])
        }

    # -- helpers -------------------------------------------------------------------------------
    def _existing(self, cls: str, name: str) -> Mo | None:
        return self._current_by_name.get((cls, name))

    def _owned(self, cls: str, tag: str, children: list[Mo] | None = None, **attrs: str) -> Mo:
        return Mo(cls, {**attrs, "annotation": tag}, list(children or []))

    def _claim(self, cls: str, name: str, what: str) -> None:
        """Refuse to take over a same-named object that a user (not the gateway) created."""
        existing = self._existing(cls, name)
        if existing is not None and not is_owned(existing):
            raise TranslationError(
                "failed",
                f"{what} {existing.rn} already exists in tenant {self.req.tenant} and is not managed by "
                f"aci-gw (annotation {existing.attrs.get('annotation', '')!r}); delete it, or tag it "
                f"{self.app_tag!r} to hand it over",
            )

    # -- tenant level --------------------------------------------------------------------------
    def tenant(self) -> Mo:
        if self.current is not None and not is_owned(self.current):
            return Mo("fvTenant", {"name": self.req.tenant}, managed=False)
        return self._owned("fvTenant", SHARED_TAG, name=self.req.tenant)

    def vrf(self, tenant: Mo) -> str:
        """The VRF owned bridge domains bind to, created when the tenant has none."""
        if self._vrf is not None:
            return self._vrf
        vrfs = self.current.children_of("fvCtx") if self.current else []
        names = sorted(v.attrs.get("name", "") for v in vrfs)
        if self.fabric.vrf:
            name = self.fabric.vrf
        elif not vrfs:
            name = apic_name(f"{self.req.tenant}-Vrf")
        elif len(vrfs) == 1:
            name = names[0]
        else:
            mine = [v.attrs["name"] for v in vrfs if is_owned(v)]
            if len(mine) != 1:
                raise TranslationError(
                    "error-gw-config",
                    f"tenant {self.req.tenant} has several VRFs ({', '.join(names)}): choose one with "
                    "APIC_VRF or gw-config vrf",
                )
            name = mine[0]
        existing = self._existing("fvCtx", name)
        if existing is None or is_owned(existing):
            tenant.add(self._owned("fvCtx", SHARED_TAG, name=name))
        self._vrf = name
        return name

    def bridge_domain(self, tenant: Mo, epg: EpgSpec) -> str:
        """The BD name an EPG binds to; adds an owned BD to the tree when the gateway manages it."""
        configured = self.fabric.bridge_domain_ref
        if configured is not None:
            bd_tenant, bd_name = configured
            if bd_tenant not in (None, self.req.tenant, "common"):
                raise TranslationError(
                    "error-gw-config",
                    f"APIC_EPG_BRIDGE_DOMAIN {self.fabric.bridge_domain} is in tenant {bd_tenant}: an EPG "
                    f"of tenant {self.req.tenant} can only bind to a BD of its own tenant or common",
                )
            return bd_name
        name = epg.network
        existing = self._existing("fvBD", name)
        if existing is not None and not is_owned(existing):
            return name  # the user's BD: reused as is
        if existing is None and self.fabric.include_common_tenant and name in self.facts.common_bds:
            return name  # resolves to tenant common by APIC's name resolution
        children = [self._owned("fvRsCtx", SHARED_TAG, tnFvCtxName=self.vrf(tenant))]
        if epg.gw_cidr:
            children.append(self._owned("fvSubnet", SHARED_TAG, ip=epg.gw_cidr))
        tenant.add(self._owned("fvBD", SHARED_TAG, children, name=name))
        return name

    def contract(self, tenant: Mo, cdef: ContractDef) -> None:
        name = apic_name(cdef.name)
        fname = filter_name(cdef.name)
        self._claim("vzBrCP", name, "contract")
        self._claim("vzFilter", fname, "filter")
        entries = []
        for spec in cdef.filters:
            attrs = {"name": entry_name(spec), "etherT": "ip"}
            if spec.protocol:
                attrs["prot"] = spec.protocol
            if spec.port:
                attrs["dFromPort"] = attrs["dToPort"] = str(spec.port)
            entries.append(self._owned("vzEntry", self.app_tag, **attrs))
        tenant.add(self._owned("vzFilter", self.app_tag, entries, name=fname))
        subject = self._owned(
            "vzSubj",
            self.app_tag,
            [self._owned("vzRsSubjFiltAtt", self.app_tag, tnVzFilterName=fname)],
            name=subject_name(cdef.name),
        )
        tenant.add(self._owned("vzBrCP", self.app_tag, [subject], name=name))

    def link(self, tenant: Mo, epg_mo: Mo, epg: EpgSpec, link: ContractLink, defined: set[str]) -> None:
        if link.contract_kind == "INTERNAL":
            name = apic_name(link.name)
            existing = self._existing("vzBrCP", name)
            if link.name not in defined and (existing is None or owner_app(existing) == self.req.app):
                # Contiv creates a contract that is linked but not defined: an empty one. One that
                # exists (the user's, another profile's) is linked as it is.
                tenant.add(self._owned("vzBrCP", self.app_tag, name=name))
            self._relation(epg_mo, link.link_kind, name)
            return
        try:
            ctenant, kind, name = parse_contract_dn(link.dn)
        except ValueError:
            raise TranslationError(
                "invalid-args",
                f"epg {epg.name}: external contract DN {link.dn!r} is not uni/tn-<tenant>/brc-<name> "
                "or uni/tn-<tenant>/cif-<name>",
            ) from None
        if ctenant == self.req.tenant:
            found = self._existing("vzBrCP" if kind == "brc" else "vzCPIf", name) is not None
        else:
            found = link.dn in self.facts.existing_dns
        if not found:
            raise TranslationError("invalid-args", f"External contract {link.dn} not found in APIC.")
        if kind == "cif":
            if link.link_kind != "CONSUME" or ctenant != self.req.tenant:
                raise TranslationError(
                    "invalid-args",
                    f"epg {epg.name}: contract interface {link.dn} can only be consumed, from its own tenant",
                )
            epg_mo.add(self._owned("fvRsConsIf", self.app_tag, tnVzCPIfName=name))
            return
        if ctenant not in (self.req.tenant, "common"):
            raise TranslationError(
                "invalid-args",
                f"epg {epg.name}: external contract {link.dn} is in tenant {ctenant}; an EPG can link "
                f"contracts of its own tenant or common, or consume one exported to "
                f"{self.req.tenant} as uni/tn-{self.req.tenant}/cif-<name>",
            )
        self._relation(epg_mo, link.link_kind, name)

    def _relation(self, epg_mo: Mo, link_kind: str, contract: str) -> None:
        cls = "fvRsProv" if link_kind == "PROVIDE" else "fvRsCons"
        epg_mo.add(self._owned(cls, self.app_tag, tnVzBrCPName=contract))

    def epg(self, tenant: Mo, epg: EpgSpec) -> Mo:
        encap = f"vlan-{epg.vlan}"
        tag = self.app_tag
        mo = self._owned("fvAEPg", tag, name=epg.name)
        mo.add(self._owned("fvRsBd", tag, tnFvBDName=self.bridge_domain(tenant, epg)))
        if self.fabric.physical_domain:
            mo.add(self._owned("fvRsDomAtt", tag, tDn=f"uni/phys-{self.fabric.physical_domain}"))
            for node in self.fabric.node_bindings:
                mo.add(self._owned("fvRsNodeAtt", tag, tDn=node, encap=encap))
            for path in self.fabric.path_bindings:
                mo.add(self._owned("fvRsPathAtt", tag, tDn=path, encap=encap, instrImedcy="immediate"))
        vmm_dn = self.fabric.vmm_domain_dn
        if vmm_dn:
            secp = self._owned(
                "vmmSecP", tag, forgedTransmits="accept", allowPromiscuous="accept", macChanges="accept"
            )
            mo.add(self._owned(
                "fvRsDomAtt", tag, [secp], tDn=vmm_dn, encap=encap, instrImedcy="immediate",
                resImedcy="immediate",
            ))
        return mo

    # -- whole request -------------------------------------------------------------------------
    def build(self) -> Mo:
        tenant = self.tenant()
        self._claim("fvAp", self.req.app, "application profile")
        app = tenant.add(self._owned("fvAp", self.app_tag, name=self.req.app))
        epg_mos = {epg.name: app.add(self.epg(tenant, epg)) for epg in self.req.epgs}
        if not self.fabric.enforce_policies:
            _, _, default = parse_contract_dn(UNENFORCED_CONTRACT)
            for mo in epg_mos.values():
                self._relation(mo, "CONSUME", default)
            return tenant
        defined = {c.name for c in self.req.contracts}
        for cdef in self.req.contracts:
            self.contract(tenant, cdef)
        for epg in self.req.epgs:
            for link in epg.links:
                self.link(tenant, epg_mos[epg.name], epg, link, defined)
        return tenant


def translate(req: AppProfileRequest, fabric: FabricSettings, facts: ApicFacts) -> Mo:
    """The desired ``fvTenant`` tree for ``req``: the objects of this app profile plus the shared
    tenant objects it needs. Raises TranslationError when the request cannot be honoured."""
    return _Builder(req, fabric, facts).build()
