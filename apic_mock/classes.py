"""The class table: every APIC class the mock knows, as data.

Each entry gives the RN format (MIM notation, see :mod:`apic_mock.dn`), the classes allowed as parent,
the properties with defaults and value rules, relation resolution and implicit children. Everything
else in the mock (config validation, DN parsing, rendering, queries) is driven from this table, so
adding a class is one ``_define`` call. Defaults and enumerations follow shared/reference/apic.md §4.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from apic_mock.dn import RnFormat

NAME_RE = r"[a-zA-Z0-9_.:-]{1,64}"
OPT_NAME_RE = r"[a-zA-Z0-9_.:-]{0,64}"
DESCR_RE = r"[a-zA-Z0-9\\!#$%()*,\-./:;@ _{|}~?&+]{0,128}"
ENCAP_RE = r"unknown|vlan-([1-9]\d{0,2}|[1-3]\d{3}|40[0-8]\d|409[0-4])|vxlan-\d{1,8}"
VLAN_RE = r"vlan-([1-9]\d{0,2}|[1-3]\d{3}|40[0-8]\d|409[0-4])"
MAC_RE = r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}"
ANNOTATION_RE = r"[^\[\]\"'<>=]{0,128}"

ANY_PARENT = "*"
ROOT_CLASS = "topRoot"


def _is_cidr(value: str) -> bool:
    """Gateway addresses are host-address/prefix (``10.1.1.1/24``); a bare address is refused."""
    if "/" not in value:
        return False
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return False
    return True


def _is_ip_or_empty(value: str) -> bool:
    if value in ("", "0.0.0.0"):
        return True
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Prop:
    """One property: its default, and the rule a posted value must follow.

    ``values`` is an enumeration (a violation is APIC error 120); ``pattern``/``check`` are format rules
    (error 801). ``numeric`` admits integers in a range next to the enumeration (ports, protocols);
    ``aliases`` rewrite values the way APIC canonicalises them (80 becomes ``http``). ``config=False``
    marks operational properties, which clients cannot set and ``rsp-prop-include=config-only``
    leaves out. ``secret`` values (passwords) are stored but never returned.
    """

    default: str = ""
    values: tuple[str, ...] = ()
    multi: bool = False
    pattern: str | None = None
    check: Callable[[str], bool] | None = None
    numeric: tuple[int, int] | None = None
    aliases: tuple[tuple[str, str], ...] = ()
    config: bool = True
    secret: bool = False
    computed: bool = False

    def canonical(self, value: str) -> str:
        """The stored form of ``value`` after APIC's rewriting (port numbers to names...)."""
        return dict(self.aliases).get(value, value)

    def enum_ok(self, value: str) -> bool:
        """Whether ``value`` is inside the enumeration (always true for free-form properties)."""
        if not self.values:
            return True
        parts = value.split(",") if self.multi else [value]
        for part in parts:
            if part in self.values:
                continue
            if self.numeric and part.isdigit() and self.numeric[0] <= int(part) <= self.numeric[1]:
                continue
            return False
        return True

    def format_ok(self, value: str) -> bool:
        """Whether ``value`` satisfies the pattern and check (always true for enumerations)."""
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            return False
        return self.check is None or self.check(value)


@dataclass(frozen=True)
class Relation:
    """How a relation MO (``fvRs*``, ``vzRs*``, ``infraRs*``) finds its target.

    Name relations (``tnFvCtxName``) look the target up by name in the MO's tenant, then in
    ``common``; an empty name means ``default``. DN relations (``tDn``) point at the DN directly.
    """

    target_class: str
    name_prop: str | None = None
    target_rn: str | None = None


@dataclass
class MoClass:
    """A class of managed objects, compiled from its table entry."""

    name: str
    label: str
    rn: RnFormat
    parents: tuple[str, ...]
    props: dict[str, Prop]
    configurable: bool = True
    relation: Relation | None = None
    implicit: tuple[tuple[str, dict[str, str]], ...] = ()
    naming: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.naming = self.rn.props

    def allows_parent(self, parent_class: str) -> bool:
        """Containment rule: may an object of this class live under ``parent_class``?"""
        if parent_class in self.parents:
            return True
        return ANY_PARENT in self.parents and parent_class != ROOT_CLASS

    def defaults(self) -> dict[str, str]:
        """Every property at its default, the state of a freshly created object."""
        return {name: p.default for name, p in self.props.items() if not p.secret and not p.computed}


CLASSES: dict[str, MoClass] = {}

# Properties every configurable class accepts (reference §4, last paragraph). ``annotation`` must be
# stored and returned: ansible diffs it and would report "changed" forever otherwise.
_COMMON = {
    "annotation": Prop(pattern=ANNOTATION_RE),
    "nameAlias": Prop(pattern=OPT_NAME_RE),
    "descr": Prop(pattern=DESCR_RE),
    "ownerKey": Prop(pattern=DESCR_RE),
    "ownerTag": Prop(pattern=DESCR_RE),
    "userdom": Prop(default=":all:"),
}
_OPER_COMMON = {"extMngdBy": Prop(config=False), "monPolDn": Prop(config=False)}
_REL_OPER = ("tDn", "tCl", "tRn", "tType", "tContextDn", "state", "stateQual", "forceResolve", "rType")

_NO_YES = ("no", "yes")
_LAZY = ("lazy", "immediate")
_PRIO = ("unspecified", "level1", "level2", "level3", "level4", "level5", "level6")
_MATCH_T = ("AtleastOne", "AtmostOne", "All", "None")
_PORT_NAMES = ("unspecified", "ftpData", "smtp", "dns", "http", "pop3", "https", "rtsp", "ssh")
_PORT_ALIASES = (
    ("20", "ftpData"),
    ("ftp", "ftpData"),
    ("22", "ssh"),
    ("25", "smtp"),
    ("53", "dns"),
    ("80", "http"),
    ("110", "pop3"),
    ("443", "https"),
    ("554", "rtsp"),
)
_PROT_NAMES = (
    "unspecified",
    "icmp",
    "igmp",
    "tcp",
    "egp",
    "igp",
    "udp",
    "icmpv6",
    "eigrp",
    "ospfigp",
    "pim",
    "l2tp",
)
_PROT_ALIASES = (
    ("1", "icmp"),
    ("2", "igmp"),
    ("6", "tcp"),
    ("8", "egp"),
    ("9", "igp"),
    ("17", "udp"),
    ("58", "icmpv6"),
    ("88", "eigrp"),
    ("89", "ospfigp"),
    ("103", "pim"),
    ("115", "l2tp"),
)


def enum(default: str, *others: str, multi: bool = False) -> Prop:
    """An enumerated property whose first value is the default."""
    return Prop(default=default, values=(default, *others) if default not in others else others, multi=multi)


def oper(default: str = "") -> Prop:
    """An operational (read-only) property."""
    return Prop(default=default, config=False)


def _port() -> Prop:
    return Prop(default="unspecified", values=_PORT_NAMES, numeric=(0, 65535), aliases=_PORT_ALIASES)


def _define(
    name: str,
    rn: str,
    parents: tuple[str, ...] | str,
    props: dict[str, Prop] | None = None,
    *,
    label: str | None = None,
    common: bool = True,
    configurable: bool = True,
    relation: Relation | None = None,
    implicit: tuple[tuple[str, dict[str, str]], ...] = (),
) -> None:
    """Register a class. Naming properties get the APIC name rule unless the table says otherwise."""
    fmt = RnFormat(rn)
    table: dict[str, Prop] = {}
    if common and configurable:
        table.update(_COMMON)
    table.update(_OPER_COMMON)
    if common and "name" not in fmt.props:
        table["name"] = Prop(pattern=OPT_NAME_RE)
    for prop in fmt.props:
        table[prop] = Prop(pattern=NAME_RE)
    if relation is not None:
        for prop in _REL_OPER:
            table[prop] = Prop(config=False, computed=True)
        table["tType"] = oper("name" if relation.name_prop else "mo")
        table["forceResolve"] = oper("yes")
        table["rType"] = oper("mo")
        table["tContextDn"] = oper("")
        if relation.name_prop:
            table.setdefault(relation.name_prop, Prop(pattern=OPT_NAME_RE))
        else:
            table["tDn"] = Prop(pattern=r".{1,512}")
    table.update(props or {})
    CLASSES[name] = MoClass(
        name=name,
        label=label or name,
        rn=fmt,
        parents=(parents,) if isinstance(parents, str) else parents,
        props=table,
        configurable=configurable,
        relation=relation,
        implicit=implicit,
    )


def _name_rel(target: str, prop: str, rn: str) -> Relation:
    return Relation(target_class=target, name_prop=prop, target_rn=rn)


def _dn_rel(target: str = "") -> Relation:
    return Relation(target_class=target)


# --- roots and containers -------------------------------------------------------------------------
_define(ROOT_CLASS, "", (), common=False, configurable=False)
_define("polUni", "uni", ROOT_CLASS, label="Policy Universe")
_define("infraInfra", "infra", "polUni", label="Infra")
_define("fabricInst", "fabric", "polUni", label="Fabric")
_define("aaaUserEp", "userext", "polUni", label="User Management")

# --- tenant --------------------------------------------------------------------------------------
_define(
    "fvTenant",
    "tn-{name}",
    "polUni",
    label="Tenant",
    implicit=(("fvEpTags", {}), ("fvRsTenantMonPol", {}), ("vnsSvcCont", {})),
)
_define("fvEpTags", "eptags", "fvTenant", label="Endpoint Tags", configurable=False)
_define(
    "fvRsTenantMonPol",
    "rsTenantMonPol",
    "fvTenant",
    relation=_name_rel("monEPGPol", "tnMonEPGPolName", "monepg-{name}"),
    configurable=False,
)
_define("vnsSvcCont", "svcCont", "fvTenant", label="Service Container", configurable=False)
_define("qosCustomPol", "qoscustom-{name}", "fvTenant", label="Custom QoS Policy")
_define("monEPGPol", "monepg-{name}", "fvTenant", label="Monitoring Policy")
_define(
    "fvCtx",
    "ctx-{name}",
    "fvTenant",
    label="Private Network",
    props={
        "pcEnfPref": enum("enforced", "unenforced"),
        "pcEnfDir": enum("ingress", "egress"),
        "knwMcastAct": enum("permit", "deny"),
        "bdEnforcedEnable": enum(*_NO_YES),
        "ipDataPlaneLearning": enum("enabled", "disabled"),
        "pcTag": oper("any"),
        "scope": oper(""),
        "seg": oper(""),
    },
    implicit=(("vzAny", {}),),
)
_define(
    "vzAny",
    "any",
    "fvCtx",
    label="Any EPG",
    props={"matchT": enum(*_MATCH_T), "prefGrMemb": enum("disabled", "enabled")},
)
_define(
    "vzRsAnyToProv",
    "rsanyToProv-{tnVzBrCPName}",
    "vzAny",
    relation=_name_rel("vzBrCP", "tnVzBrCPName", "brc-{name}"),
    props={"matchT": enum(*_MATCH_T), "prio": enum(*_PRIO)},
)
_define(
    "vzRsAnyToCons",
    "rsanyToCons-{tnVzBrCPName}",
    "vzAny",
    relation=_name_rel("vzBrCP", "tnVzBrCPName", "brc-{name}"),
    props={"prio": enum(*_PRIO)},
)
_define(
    "fvBD",
    "BD-{name}",
    "fvTenant",
    label="Bridge Domain",
    props={
        "arpFlood": enum(*_NO_YES),
        "unicastRoute": enum("yes", "no"),
        "unkMacUcastAct": enum("proxy", "flood"),
        "unkMcastAct": enum("flood", "opt-flood"),
        "v6unkMcastAct": enum("flood", "opt-flood"),
        "multiDstPktAct": enum("bd-flood", "encap-flood", "drop"),
        "limitIpLearnToSubnets": enum("yes", "no"),
        "ipLearning": enum("yes", "no"),
        "mac": Prop(default="00:22:BD:F8:19:FF", pattern=MAC_RE),
        "type": enum("regular", "fc"),
        "vmac": Prop(default="not-applicable"),
        "epMoveDetectMode": enum("", "garp"),
        "mcastAllow": enum(*_NO_YES),
        "epClear": enum(*_NO_YES),
        "intersiteBumTrafficAllow": enum(*_NO_YES),
        "intersiteL2Stretch": enum(*_NO_YES),
        "llAddr": Prop(default="::"),
        "optimizeWanBandwidth": enum(*_NO_YES),
        "hostBasedRouting": enum(*_NO_YES),
        "bcastP": oper("225.0.0.1"),
        "pcTag": oper("any"),
        "seg": oper(""),
    },
    implicit=(("fvRsCtx", {}),),
)
_define(
    "fvRsCtx",
    "rsctx",
    "fvBD",
    label="Private Network",
    relation=_name_rel("fvCtx", "tnFvCtxName", "ctx-{name}"),
)
_define(
    "fvRsBDToOut",
    "rsBDToOut-{tnL3extOutName}",
    "fvBD",
    relation=_name_rel("l3extOut", "tnL3extOutName", "out-{name}"),
)
_define(
    "fvSubnet",
    "subnet-[{ip}]",
    ("fvBD", "fvAEPg"),
    label="Subnet",
    props={
        "ip": Prop(check=_is_cidr),
        "scope": enum("private", "public", "shared", multi=True),
        "ctrl": Prop(
            default="nd", values=("", "nd", "querier", "no-default-gateway", "unspecified"), multi=True
        ),
        "preferred": enum(*_NO_YES),
        "virtual": enum(*_NO_YES),
        "ipDPLearning": enum("enabled", "disabled"),
    },
)
_define("fvAp", "ap-{name}", "fvTenant", label="Application Profile", props={"prio": enum(*_PRIO)})
_define(
    "fvAEPg",
    "epg-{name}",
    "fvAp",
    label="Application EPG",
    props={
        "pcEnfPref": enum("unenforced", "enforced"),
        "prefGrMemb": enum("exclude", "include"),
        "floodOnEncap": enum("disabled", "enabled"),
        "prio": enum(*_PRIO),
        "matchT": enum(*_MATCH_T),
        "isAttrBasedEPg": enum(*_NO_YES),
        "fwdCtrl": enum("", "proxy-arp"),
        "shutdown": enum(*_NO_YES),
        "exceptionTag": Prop(),
        "pcTag": oper("any"),
        "scope": oper(""),
        "configSt": oper("applied"),
    },
    implicit=(("fvRsCustQosPol", {}),),
)
_define(
    "fvRsBd", "rsbd", "fvAEPg", label="Bridge Domain", relation=_name_rel("fvBD", "tnFvBDName", "BD-{name}")
)
_define(
    "fvRsCustQosPol",
    "rscustQosPol",
    "fvAEPg",
    relation=_name_rel("qosCustomPol", "tnQosCustomPolName", "qoscustom-{name}"),
)
_define(
    "fvRsDomAtt",
    "rsdomAtt-[{tDn}]",
    "fvAEPg",
    label="Domain",
    relation=_dn_rel(),
    props={
        "tDn": Prop(pattern=r"uni/.{1,500}"),
        "instrImedcy": enum(*_LAZY),
        "resImedcy": enum("lazy", "immediate", "pre-provision"),
        "encap": Prop(default="unknown", pattern=ENCAP_RE),
        "primaryEncap": Prop(default="unknown", pattern=ENCAP_RE),
        "classPref": enum("encap", "useg"),
        "encapMode": enum("auto", "vlan", "vxlan"),
        "switchingMode": enum("native", "AVE"),
        "untagged": enum(*_NO_YES),
        "epgCos": enum("Cos0", "Cos1", "Cos2", "Cos3", "Cos4", "Cos5", "Cos6", "Cos7"),
        "epgCosPref": enum("disabled", "enabled"),
        "netflowPref": enum("disabled", "enabled"),
        "bindingType": enum("none", "staticBinding", "dynamicBinding", "ephemeral"),
        "numPorts": Prop(default="0", pattern=r"\d{1,5}"),
        "portAllocation": enum("none", "elastic", "fixed"),
        "delimiter": Prop(),
        "customEpgName": Prop(),
        "lagPolicyName": Prop(),
    },
)
_define(
    "vmmSecP",
    "sec",
    "fvRsDomAtt",
    label="Security Policy",
    props={
        "allowPromiscuous": enum("reject", "accept"),
        "forgedTransmits": enum("reject", "accept"),
        "macChanges": enum("reject", "accept"),
    },
)
_define(
    "fvRsPathAtt",
    "rspathAtt-[{tDn}]",
    "fvAEPg",
    label="Static Path",
    relation=_dn_rel("fabricPathEp"),
    props={
        "tDn": Prop(pattern=r"topology/pod-\d+/(paths|protpaths|extpaths)-.{1,400}"),
        "encap": Prop(default="unknown", pattern=ENCAP_RE),
        "primaryEncap": Prop(default="unknown", pattern=ENCAP_RE),
        "instrImedcy": enum(*_LAZY),
        "mode": enum("regular", "native", "untagged"),
    },
)
_define(
    "fvRsNodeAtt",
    "rsnodeAtt-[{tDn}]",
    "fvAEPg",
    label="Static Leaf",
    relation=_dn_rel("fabricNode"),
    props={
        "tDn": Prop(pattern=r"topology/pod-\d+/node-\d+"),
        "encap": Prop(default="unknown", pattern=ENCAP_RE),
        "instrImedcy": enum(*_LAZY),
        "mode": enum("regular", "native", "untagged"),
    },
)
_CONTRACT = _name_rel("vzBrCP", "tnVzBrCPName", "brc-{name}")
_define(
    "fvRsProv",
    "rsprov-{tnVzBrCPName}",
    ("fvAEPg", "l3extInstP"),
    label="Provided Contract",
    relation=_CONTRACT,
    props={"matchT": enum(*_MATCH_T), "prio": enum(*_PRIO)},
)
_define(
    "fvRsCons",
    "rscons-{tnVzBrCPName}",
    ("fvAEPg", "l3extInstP"),
    label="Consumed Contract",
    relation=_CONTRACT,
    props={"prio": enum(*_PRIO)},
)
_define(
    "fvRsConsIf",
    "rsconsIf-{tnVzCPIfName}",
    ("fvAEPg", "l3extInstP"),
    label="Consumed Contract Interface",
    relation=_name_rel("vzCPIf", "tnVzCPIfName", "cif-{name}"),
    props={"prio": enum(*_PRIO)},
)
_define(
    "fvCEp",
    "cep-{mac}",
    "fvAEPg",
    label="Client Endpoint",
    configurable=False,
    props={
        "mac": Prop(pattern=MAC_RE),
        "ip": Prop(default="0.0.0.0", check=_is_ip_or_empty),
        "encap": Prop(default="unknown", pattern=ENCAP_RE),
        "lcC": oper("learned"),
        "fabricPathDn": oper(""),
        "mcastAddr": oper("not-applicable"),
        "id": oper("0"),
        "name": oper(""),
        "contName": oper(""),
        "hostingServer": oper(""),
    },
)
_define(
    "fvIp",
    "ip-[{addr}]",
    "fvCEp",
    label="IP Address",
    configurable=False,
    props={"addr": Prop(check=_is_ip_or_empty)},
)

# --- contracts and filters ------------------------------------------------------------------------
_define(
    "vzBrCP",
    "brc-{name}",
    "fvTenant",
    label="Contract",
    props={
        "scope": enum("context", "application-profile", "tenant", "global"),
        "prio": enum(*_PRIO),
        "targetDscp": Prop(default="unspecified"),
        "intent": enum("install", "estimate_add", "estimate_delete"),
    },
)
_define(
    "vzSubj",
    "subj-{name}",
    "vzBrCP",
    label="Subject",
    props={
        "revFltPorts": enum("yes", "no"),
        "consMatchT": enum(*_MATCH_T),
        "provMatchT": enum(*_MATCH_T),
        "prio": enum(*_PRIO),
        "targetDscp": Prop(default="unspecified"),
    },
)
_FILTER_ATT = {
    "action": enum("permit", "deny"),
    "directives": Prop(default="", values=("", "log", "no_stats"), multi=True),
    "priorityOverride": enum("default", "level1", "level2", "level3"),
}
_FILTER = _name_rel("vzFilter", "tnVzFilterName", "flt-{name}")
_define(
    "vzRsSubjFiltAtt",
    "rssubjFiltAtt-{tnVzFilterName}",
    "vzSubj",
    label="Filter",
    relation=_FILTER,
    props=_FILTER_ATT,
)
_define("vzInTerm", "intmnl", "vzSubj", label="Input Terminal", props={"prio": enum(*_PRIO)})
_define("vzOutTerm", "outtmnl", "vzSubj", label="Output Terminal", props={"prio": enum(*_PRIO)})
_define(
    "vzRsFiltAtt",
    "rsfiltAtt-{tnVzFilterName}",
    ("vzInTerm", "vzOutTerm"),
    label="Filter",
    relation=_FILTER,
    props=_FILTER_ATT,
)
_define("vzCPIf", "cif-{name}", "fvTenant", label="Contract Interface")
_define("vzFilter", "flt-{name}", "fvTenant", label="Filter")
_define(
    "vzEntry",
    "e-{name}",
    "vzFilter",
    label="Filter Entry",
    props={
        "etherT": enum(
            "unspecified", "ipv4", "trill", "arp", "ipv6", "mpls_ucast", "mac_security", "fcoe", "ip"
        ),
        "prot": Prop(default="unspecified", values=_PROT_NAMES, numeric=(0, 255), aliases=_PROT_ALIASES),
        "dFromPort": _port(),
        "dToPort": _port(),
        "sFromPort": _port(),
        "sToPort": _port(),
        "stateful": enum(*_NO_YES),
        "applyToFrag": enum(*_NO_YES),
        "tcpRules": Prop(
            default="", values=("", "unspecified", "est", "syn", "ack", "fin", "rst"), multi=True
        ),
        "icmpv4T": enum("unspecified", "echo-rep", "dst-unreach", "src-quench", "echo", "time-exceeded"),
        "icmpv6T": enum(
            "unspecified",
            "dst-unreach",
            "time-exceeded",
            "echo-req",
            "echo-rep",
            "nbr-solicit",
            "nbr-advert",
            "redirect",
        ),
        "arpOpc": enum("unspecified", "req", "reply"),
        "matchDscp": Prop(default="unspecified"),
    },
)

# --- L3Out (contract providers outside the fabric) ---------------------------------------------------
_define(
    "l3extOut", "out-{name}", "fvTenant", label="L3 Outside", props={"enforceRtctrl": Prop(default="export")}
)
_define("l3extRsEctx", "rsectx", "l3extOut", relation=_name_rel("fvCtx", "tnFvCtxName", "ctx-{name}"))
_define(
    "l3extInstP",
    "instP-{name}",
    "l3extOut",
    label="External Network Instance Profile",
    props={"prio": enum(*_PRIO), "matchT": enum(*_MATCH_T), "prefGrMemb": enum("exclude", "include")},
)

# --- access policies, domains and VLAN pools --------------------------------------------------------
_define("physDomP", "phys-{name}", "polUni", label="Physical Domain")
_define(
    "vmmProvP",
    "vmmp-{vendor}",
    "polUni",
    label="VMM Provider",
    props={
        "vendor": Prop(
            values=(
                "VMware",
                "Microsoft",
                "OpenStack",
                "Kubernetes",
                "OpenShift",
                "Redhat",
                "CloudFoundry",
                "Nutanix",
            )
        )
    },
)
_define(
    "vmmDomP",
    "dom-{name}",
    "vmmProvP",
    label="VMM Domain",
    props={"encapMode": enum("unknown", "vlan", "vxlan"), "mode": Prop(default="default")},
)
_define(
    "infraRsVlanNs",
    "rsvlanNs",
    ("physDomP", "vmmDomP"),
    label="VLAN Pool",
    relation=_dn_rel("fvnsVlanInstP"),
    props={"tDn": Prop(pattern=r"uni/infra/vlanns-.{1,200}")},
)
_define(
    "fvnsVlanInstP",
    "vlanns-[{name}]-{allocMode}",
    "infraInfra",
    label="VLAN Pool",
    props={"allocMode": Prop(values=("static", "dynamic"))},
)
_define(
    "fvnsEncapBlk",
    "from-[{from}]-to-[{to}]",
    "fvnsVlanInstP",
    label="Encap Block",
    props={
        "from": Prop(pattern=VLAN_RE),
        "to": Prop(pattern=VLAN_RE),
        "allocMode": enum("inherit", "static", "dynamic"),
        "role": enum("external", "internal"),
    },
)
_define("infraAttEntityP", "attentp-{name}", "infraInfra", label="Attachable Entity Profile")
_define(
    "infraRsDomP",
    "rsdomP-[{tDn}]",
    "infraAttEntityP",
    label="Domain",
    relation=_dn_rel(),
    props={"tDn": Prop(pattern=r"uni/.{1,500}")},
)
_define("infraProvAcc", "provacc", "infraAttEntityP", label="Provider Access")
_define("infraGeneric", "gen-{name}", "infraAttEntityP", label="Generic Attachable Entity")
_define(
    "infraRsFuncToEpg",
    "rsfuncToEpg-[{tDn}]",
    ("infraGeneric", "infraProvAcc"),
    label="EPG",
    relation=_dn_rel("fvAEPg"),
    props={
        "tDn": Prop(pattern=r"uni/.{1,500}"),
        "encap": Prop(default="unknown", pattern=ENCAP_RE),
        "primaryEncap": Prop(default="unknown", pattern=ENCAP_RE),
        "instrImedcy": enum(*_LAZY),
        "mode": enum("regular", "native", "untagged"),
    },
)

# --- users and certificates (signature-based authentication) ---------------------------------------
_define(
    "aaaUser",
    "user-{name}",
    "aaaUserEp",
    label="Local User",
    props={
        "pwd": Prop(secret=True),
        "email": Prop(),
        "firstName": Prop(),
        "lastName": Prop(),
        "phone": Prop(),
        "accountStatus": enum("active", "inactive"),
        "expires": enum(*_NO_YES),
        "expiration": Prop(default="never"),
    },
)
_define(
    "aaaUserCert",
    "usercert-{name}",
    "aaaUser",
    label="X509 Certificate",
    props={"data": Prop(), "certState": oper("valid")},
)
_define("aaaUserDomain", "userdomain-{name}", "aaaUser", label="User Domain")
_define(
    "aaaUserRole",
    "role-{name}",
    "aaaUserDomain",
    label="User Role",
    props={"privType": enum("readPriv", "writePriv")},
)

# --- fabric inventory (read-only for clients; seeded or added by the fabric) ------------------------
_FABRIC = {"common": False, "configurable": False}
_define("fabricTopology", "topology", ROOT_CLASS, label="Fabric Topology", **_FABRIC)
_define(
    "fabricPod",
    "pod-{id}",
    "fabricTopology",
    label="Pod",
    props={"id": Prop(pattern=r"\d{1,3}"), "podType": oper("physical")},
    **_FABRIC,
)
_define(
    "fabricNode",
    "node-{id}",
    "fabricPod",
    label="Fabric Node",
    props={
        "id": Prop(pattern=r"\d{1,5}"),
        "name": oper(),
        "role": oper("leaf"),
        "model": oper(),
        "serial": oper(),
        "fabricSt": oper("active"),
        "address": oper("0.0.0.0"),
        "vendor": oper("Cisco Systems, Inc"),
        "version": oper(),
        "nodeType": oper("unspecified"),
        "adSt": oper("on"),
    },
    **_FABRIC,
)
_define(
    "topSystem",
    "sys",
    "fabricNode",
    label="System",
    props={
        "id": oper(),
        "name": oper(),
        "role": oper("leaf"),
        "podId": oper("1"),
        "address": oper("0.0.0.0"),
        "oobMgmtAddr": oper("0.0.0.0"),
        "inbMgmtAddr": oper("0.0.0.0"),
        "serial": oper(),
        "version": oper(),
        "state": oper("in-service"),
        "fabricMAC": oper("00:00:00:00:00:00"),
        "systemUpTime": oper(),
    },
    **_FABRIC,
)
_define("firmwareCtrlrFwStatusCont", "ctrlrfwstatuscont", "topSystem", **_FABRIC)
_define(
    "firmwareCtrlrRunning",
    "ctrlrrunning",
    "firmwareCtrlrFwStatusCont",
    props={"version": oper(), "type": oper("controller")},
    **_FABRIC,
)
_define(
    "fabricPathEpCont", "paths-{nodeId}", "fabricPod", props={"nodeId": Prop(pattern=r"\d{1,5}")}, **_FABRIC
)
_define(
    "fabricProtPathEpCont",
    "protpaths-{nodeAId}-{nodeBId}",
    "fabricPod",
    props={"nodeAId": Prop(pattern=r"\d{1,5}"), "nodeBId": Prop(pattern=r"\d{1,5}")},
    **_FABRIC,
)
_define(
    "fabricPathEp",
    "pathep-[{name}]",
    ("fabricPathEpCont", "fabricProtPathEpCont"),
    props={
        "name": Prop(pattern=r"[a-zA-Z0-9_./:-]{1,64}"),
        "lagT": oper("not-aggregated"),
        "pathT": oper("leaf"),
    },
    **_FABRIC,
)

# --- tags and faults, allowed under any object --------------------------------------------------------
_define(
    "tagAnnotation",
    "annotationKey-[{key}]",
    ANY_PARENT,
    label="Annotation",
    common=False,
    props={"key": Prop(pattern=r"[a-zA-Z0-9_.:\-/ ]{1,128}"), "value": Prop(pattern=r".{0,128}")},
)
_define("tagInst", "tag-{name}", ANY_PARENT, label="Tag", common=False)
# Audit records live in apic_mock.audit, not in the tree; the class is here for queries and rendering.
_define(
    "aaaModLR",
    "mod-{id}",
    ANY_PARENT,
    label="Audit record",
    configurable=False,
    common=False,
    props={name: oper() for name in ("affected", "cause", "changeSet", "code", "created", "descr", "ind",
                                     "sessionId", "severity", "trig", "txId", "user")},
)
_define(
    "faultInst",
    "fault-{code}",
    ANY_PARENT,
    label="Fault",
    configurable=False,
    common=False,
    props={"code": oper(), "severity": oper("info"), "descr": oper(), "lc": oper("raised")},
)


def lookup(name: str) -> MoClass | None:
    """The class called ``name`` (Cobra's dotted spelling ``fv.Tenant`` is accepted too)."""
    return CLASSES.get(name) or CLASSES.get(name.replace(".", ""))


def child_classes(parent_class: str) -> list[MoClass]:
    """Classes that may appear directly under ``parent_class``, longest RN prefix first.

    Longest prefix first makes RN parsing pick ``rsanyToProv-`` over a shorter match.
    """
    found = [c for c in CLASSES.values() if c.name != ROOT_CLASS and c.allows_parent(parent_class)]
    return sorted(found, key=lambda c: len(c.rn.prefix), reverse=True)
