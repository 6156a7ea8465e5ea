"""Unit tests of the pure parts: DN splitting, RN formats, the class table and the filter grammar."""

from __future__ import annotations

import pytest

from apic_mock import naming
from apic_mock.classes import CLASSES, lookup
from apic_mock.dn import DnSyntaxError, RnFormat, is_within, parent_dn, split_dn
from apic_mock.errors import ApicError
from apic_mock.filters import compile_filter
from apic_mock.tree import Tree

REQUIRED_CLASSES = [
    "fvTenant",
    "fvCtx",
    "fvBD",
    "fvRsCtx",
    "fvSubnet",
    "fvAp",
    "fvAEPg",
    "fvRsBd",
    "fvRsDomAtt",
    "fvRsPathAtt",
    "fvRsNodeAtt",
    "fvRsProv",
    "fvRsCons",
    "vzBrCP",
    "vzSubj",
    "vzRsSubjFiltAtt",
    "vzFilter",
    "vzEntry",
    "vzAny",
    "physDomP",
    "infraInfra",
    "infraRsVlanNs",
    "fvnsVlanInstP",
    "fvnsEncapBlk",
    "fabricNode",
    "topSystem",
    "fvCEp",
    "tagAnnotation",
    "aaaUserCert",
]


def test_split_dn_tracks_nested_brackets() -> None:
    dn = "uni/tn-a/ap-b/epg-c/rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/1]]"
    assert split_dn(dn) == [
        "uni",
        "tn-a",
        "ap-b",
        "epg-c",
        "rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/1]]",
    ]
    assert parent_dn(dn) == "uni/tn-a/ap-b/epg-c"
    assert split_dn("") == []


@pytest.mark.parametrize("bad", ["uni/tn-[a", "uni/tn-a]", "uni//tn-a", "/uni", "uni/"])
def test_split_dn_rejects_garbage(bad: str) -> None:
    with pytest.raises(DnSyntaxError):
        split_dn(bad)


def test_is_within_is_prefix_on_rn_boundaries() -> None:
    assert is_within("uni/tn-a/BD-b", "uni/tn-a")
    assert not is_within("uni/tn-ab", "uni/tn-a")
    assert is_within("anything", "")


def test_rn_format_round_trip() -> None:
    fmt = RnFormat("from-[{from}]-to-[{to}]")
    assert fmt.parse("from-[vlan-1]-to-[vlan-10]") == {"from": "vlan-1", "to": "vlan-10"}
    assert fmt.build({"from": "vlan-1", "to": "vlan-10"}) == "from-[vlan-1]-to-[vlan-10]"
    assert RnFormat("tn-{name}").parse("tn-[Dag]") == {"name": "Dag"}
    assert RnFormat("tn-{name}").parse("ap-x") is None
    assert RnFormat("vlanns-[{name}]-{allocMode}").parse("vlanns-[p]-static") == {
        "name": "p",
        "allocMode": "static",
    }


def test_class_table_covers_the_gateway_classes() -> None:
    for name in REQUIRED_CLASSES:
        assert name in CLASSES, name
    assert lookup("fv.Tenant") is CLASSES["fvTenant"]
    assert CLASSES["fvAEPg"].allows_parent("fvAp")
    assert not CLASSES["fvAEPg"].allows_parent("fvTenant")
    assert CLASSES["tagAnnotation"].allows_parent("fvBD")
    for meta in CLASSES.values():
        for prop in meta.naming:
            assert prop in meta.props, (meta.name, prop)
        if meta.configurable and meta.name not in ("topRoot",):
            assert "annotation" in meta.props or meta.name.startswith("tag"), meta.name


def test_parse_dn_classifies_every_rn() -> None:
    parts = naming.parse_dn("uni/tn-a/BD-b/subnet-[10.0.0.1/24]")
    assert [p.cls.name for p in parts] == ["polUni", "fvTenant", "fvBD", "fvSubnet"]
    assert parts[-1].naming == {"ip": "10.0.0.1/24"}
    assert naming.canonical_dn("uni/tn-[a]") == "uni/tn-a"
    with pytest.raises(ApicError) as info:
        naming.parse_dn("uni/fabricNode")
    assert info.value.code == "104"


def _predicate(text: str):  # type: ignore[no-untyped-def]
    tree = Tree()
    from apic_mock.render import prop_getter

    return compile_filter(text, prop_getter(tree))


def _mo(cls: str, **attrs: str):  # type: ignore[no-untyped-def]
    from apic_mock.tree import Mo

    return Mo(cls, f"uni/x-{attrs.get('name', '')}", "x", dict(attrs))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('eq(fvTenant.name,"a")', True),
        ('eq(fvTenant.name, "b")', False),
        ('ne(fvTenant.name,"b")', True),
        ('gt(fvTenant.prio,"9")', True),  # numeric: 10 > 9
        ('lt(fvTenant.prio,"9")', False),
        ("ge(fvTenant.prio,10)", True),
        ("le(fvTenant.prio,10)", True),
        ('bw(fvTenant.prio,"5","15")', True),
        ('bw(fvTenant.prio,"11","15")', False),
        ('wcard(fvTenant.dn,"x-a")', True),
        ('wcard(fvTenant.descr,"^hel")', True),
        ('and(eq(fvTenant.name,"a"),eq(fvTenant.prio,"10"))', True),
        ('and(eq(fvTenant.name,"a"),eq(fvTenant.prio,"11"))', False),
        ('or(eq(fvTenant.name,"z"),eq(fvTenant.prio,"10"))', True),
        ('not(eq(fvTenant.name,"a"))', False),
        ('not(or(eq(fvTenant.name,"z"),and(eq(fvTenant.name,"a"),ne(fvTenant.prio,"10"))))', True),
        ('eq(fvBD.name,"a")', False),  # another class's property never matches
        ('anybit(fvTenant.flags,"x,y")', True),
        ('allbits(fvTenant.flags,"x,z")', False),
    ],
)
def test_filter_operators(text: str, expected: bool) -> None:
    mo = _mo("fvTenant", name="a", prio="10", descr="hello", flags="x,q")
    assert _predicate(text)(mo) is expected


@pytest.mark.parametrize(
    "text",
    [
        'eq(fvTenant.name,"a"',
        'foo(fvTenant.name,"a")',
        'eq(fvTenant.name,"a")x',
        "eq(fvTenant.name)",
        'eq("a","b")',
        "and()",
        'not(eq(a.b,"1"),eq(a.b,"2"))',
        '"',
        'eq(fvTenant.name,"unterminated)',
        "",
    ],
)
def test_filter_syntax_errors_are_apic_errors(text: str) -> None:
    with pytest.raises(ApicError) as info:
        _predicate(text)
    assert info.value.http_status == 400
