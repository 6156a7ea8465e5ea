"""The leaf's pure parts: APIC tree -> policy, policy -> flows, frame parsing (no OVS, no APIC)."""

from __future__ import annotations

import struct

import pytest

from apic_mock.initial import mo
from apic_mock.leaf.flows import build_flows, match_fields, port_ranges
from apic_mock.leaf.learning import EndpointRecord, EndpointTable, parse_frame
from apic_mock.leaf.model import Match, build_policy, entry_match, parse_tree
from apic_mock.leaf.switch import ovs_port_name
from apic_mock.render import render
from apic_mock.service import ApicService, Settings

T = "uni/tn-t"


def rel(cls: str, tdn: str, **attrs: str) -> dict:
    return mo(cls, {"tDn": tdn, **attrs})


def name_rel(cls: str, **attrs: str) -> dict:
    return mo(cls, attrs)


def tree(*epg_children: dict, vrf_attrs: dict | None = None, any_children: tuple = ()) -> list:
    """A tenant posted to an in-process mock and read back as the leaf reads it (rn, resolved tDn)."""
    def epg(name: str, vlan: int, *children: dict) -> dict:
        return mo("fvAEPg", {"name": name}, name_rel("fvRsBd", tnFvBDName="b"),
                  rel("fvRsPathAtt", "topology/pod-1/paths-101/pathep-[eth1/1]", encap=f"vlan-{vlan}"),
                  rel("fvRsPathAtt", "topology/pod-1/paths-102/pathep-[eth1/1]", encap="vlan-999"),
                  *children)

    tenant = mo("fvTenant", {"name": "t"},
                mo("fvCtx", {"name": "v", **(vrf_attrs or {})}, mo("vzAny", {}, *any_children)),
                mo("fvBD", {"name": "b"}, name_rel("fvRsCtx", tnFvCtxName="v"), mo("fvSubnet", {"ip": "10.0.0.1/24"})),
                mo("vzFilter", {"name": "f"},
                   mo("vzEntry", {"name": "web", "etherT": "ip", "prot": "tcp", "dFromPort": "8000",
                                  "dToPort": "8001"})),
                mo("vzBrCP", {"name": "c"}, mo("vzSubj", {"name": "s"},
                                               name_rel("vzRsSubjFiltAtt", tnVzFilterName="f"))),
                mo("fvAp", {"name": "app"}, epg("A", 10, *epg_children),
                   epg("B", 20, name_rel("fvRsProv", tnVzBrCPName="c"))))
    service = ApicService(Settings(demo_fabric=True))
    service.post("uni", mo("polUni", {}, tenant), {})
    mo_ = service.tree.get(T)
    assert mo_ is not None
    return parse_tree([render(service.tree, mo_, subtree="full")])


def test_policy_from_tree() -> None:
    policy = build_policy(tree(name_rel("fvRsCons", tnVzBrCPName="c")), 101, ["eth1/1", "eth1/2"])
    assert [(b.port, b.vlan, b.epg.rsplit("-", 1)[1]) for b in policy.bindings] == [("eth1/1", 10, "A"),
                                                                                   ("eth1/1", 20, "B")]
    assert str(policy.bds[f"{T}/BD-b"].gateways[0]) == "10.0.0.1/24"
    fwd = Match("ip", 6, (8000, 8001), None)
    assert {(r.src[-1], r.dst[-1], r.match) for r in policy.rules} == {("A", "B", fwd), ("B", "A", fwd.reversed())}
    assert fwd.reversed().sports == (8000, 8001)


def test_contract_needs_provider_and_consumer_and_vzany_expands() -> None:
    assert build_policy(tree(), 101, ["eth1/1"]).rules == []
    any_cons = (name_rel("vzRsAnyToCons", tnVzBrCPName="c"),)
    rules = build_policy(tree(any_children=any_cons), 101, ["eth1/1"]).rules
    assert {(r.src[-1], r.dst[-1]) for r in rules} == {("A", "B"), ("B", "A")}, "vzAny consumes: A does too"


def test_node_binding_covers_every_port_and_other_nodes_are_ignored() -> None:
    node = rel("fvRsNodeAtt", "topology/pod-1/node-101", encap="vlan-30")
    policy = build_policy(tree(node), 101, ["eth1/1", "eth1/2"])
    assert {(b.port, b.vlan) for b in policy.bindings} == {("eth1/1", 10), ("eth1/1", 20), ("eth1/1", 30),
                                                           ("eth1/2", 30)}
    assert all(b.vlan != 999 for b in policy.bindings)


def test_entry_match_translation() -> None:
    def entry(**attrs: str) -> Match | None:
        return entry_match(parse_tree([mo("vzEntry", {"dn": "uni/tn-t/flt-f/e-x", **attrs})])[0])

    assert entry(etherT="unspecified") == Match()
    assert entry(etherT="ip", prot="icmp", icmpv4T="echo") == Match("ip", 1, icmp_type=8)
    assert entry(etherT="ip", prot="icmp", icmpv4T="echo").reversed().icmp_type == 0  # type: ignore[union-attr]
    assert entry(etherT="ip", prot="udp", dFromPort="dns", dToPort="dns") == Match("ip", 17, (53, 53))
    assert entry(etherT="mpls_ucast") is None


@pytest.mark.parametrize(("lo", "hi", "expect"), [
    (80, 80, ["80"]),
    (8000, 8001, ["0x1f40/0xfffe"]),
    (1, 3, ["1", "0x0002/0xfffe"]),
    (0, 65535, ["0x0000/0x0000"]),
])
def test_port_ranges(lo: int, hi: int, expect: list[str]) -> None:
    assert port_ranges(lo, hi) == expect


def test_port_ranges_cover_exactly() -> None:
    for lo, hi in ((3, 77), (1000, 1023), (5, 5), (65000, 65535)):
        covered = set()
        for block in port_ranges(lo, hi):
            value, _, mask = block.partition("/")
            v, m = int(value, 0), int(mask, 0) if mask else 0xFFFF
            covered |= {p for p in range(65536) if p & m == v}
        assert covered == set(range(lo, hi + 1))


def test_flows_are_deterministic_and_scoped_to_attached_ports() -> None:
    policy = build_policy(tree(name_rel("fvRsCons", tnVzBrCPName="c")), 101, ["eth1/1"])
    flows, ids = build_flows(policy, {"eth1/1": 1}, 4000)
    again, _ = build_flows(policy, {"eth1/1": 1}, 4000)
    assert flows == again
    assert any("in_port=1,dl_vlan=10" in f for f in flows)
    assert any("tp_dst=0x1f40/0xfffe" in f for f in flows)
    assert len(ids.binding) == 2
    none, _ = build_flows(policy, {}, 4000)
    assert not any("dl_vlan" in f for f in none), "no classification for ports that are not attached"
    assert match_fields(Match()) == [""]


def test_parse_frame_reads_binding_mac_and_ip() -> None:
    src = bytes.fromhex("020000000001")
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + bytes([10, 0, 0, 5]) + bytes(6) + bytes([10, 0, 0, 1])
    frame = bytes.fromhex("0e0000000007") + src + b"\x08\x06" + arp
    s = parse_frame(frame)
    assert s is not None
    assert (s.binding, s.mac, s.ip, s.from_arp) == (7, "02:00:00:00:00:01", "10.0.0.5", True)
    assert parse_frame(bytes.fromhex("0e0000000007") + bytes.fromhex("010000000001") + b"\x08\x06" + arp) is None


def test_endpoint_table_ages_and_keeps_ip() -> None:
    table = EndpointTable(age=10)
    assert table.learn("bd", EndpointRecord("m", "eth1/1", 10, "epg", "10.0.0.5", 0.0))
    assert not table.learn("bd", EndpointRecord("m", "eth1/1", 10, "epg", None, 5.0)), "a sighting without IP"
    assert table.snapshot()[0][1].ip == "10.0.0.5"
    assert table.expire(now=14.0) == []
    assert [r.mac for r in table.expire(now=16.0)] == ["m"]


def test_fabric_port_names() -> None:
    assert ovs_port_name("eth1/12") == "eth1-12"
    with pytest.raises(ValueError, match="eth<module>/<port>"):
        ovs_port_name("eth1-12")


def test_an_ip_moves_between_endpoints_of_a_vrf() -> None:
    table = EndpointTable(age=10)
    table.learn("bd1", EndpointRecord("m1", "eth1/1", 10, "epg", "10.0.0.5", 0.0))
    table.learn("bd2", EndpointRecord("m2", "eth1/2", 20, "epg2", "10.0.0.5", 0.0))
    table.learn("bd3", EndpointRecord("m3", "eth1/2", 30, "epg3", "10.0.0.5", 0.0))
    moved = table.release_ip("10.0.0.5", ("bd2", "m2"), lambda bd: bd != "bd3")  # bd3 is another VRF
    assert [r.mac for r in moved] == ["m1"]
    assert {r.mac: r.ip for _, r in table.snapshot()} == {"m1": None, "m2": "10.0.0.5", "m3": "10.0.0.5"}
