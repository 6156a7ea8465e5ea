"""Pipeline compilation without a switch: flow shapes, policy semantics, conjunction scale, state JSON."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agent.ovs.flow import Conjunction, Flow, Match, cookie_feature, cookie_round, make_cookie
from agent.pipeline import build, counts_by_stage, qos
from agent.pipeline.conjunction import MatchRule, compile_rules, flow_priority
from agent.pipeline.tables import ETH_IP, STAGES, Table
from agent.pipeline.view import DatapathView
from agent.state import DesiredState, Endpoint, EndpointGroup, Host, Network, Policy, Qos, Rule
from contiv_api.mac import candidates

NET = Network("t1", "n", "vxlan", "10.1.0.0/24", vni=5000, gateway="10.1.0.254")


def _view(state: DesiredState, host: str = "h1") -> DatapathView:
    local = [e for e in state.endpoints if e.host == host]
    return DatapathView(state, host, {t: i for i, t in enumerate(state.tenants, 1)},
                        {e.id: 16 + i for i, e in enumerate(local)}, has_tunnel=True, has_uplink=True)


def _state(rules: tuple[Rule, ...] = (), **kw: object) -> DesiredState:
    return DesiredState(
        networks=(NET,), hosts=(Host("h1", "192.0.2.1"), Host("h2", "192.0.2.2")),
        groups=(EndpointGroup("t1", "web", 10, "n", ("p",)), EndpointGroup("t1", "db", 11, "n")),
        policies=(Policy("t1", "p", rules),),
        endpoints=(Endpoint("a", "t1", "n", "10.1.0.1", "h1", group="web"),
                   Endpoint("b", "t1", "n", "10.1.0.2", "h2", group="db")), **kw)


def _table(flows: list[Flow], table: Table) -> list[str]:
    return [f.ofctl() for f in flows if f.table == table]


def test_every_table_has_a_miss_flow_and_gotos_only_go_forward() -> None:
    flows = build(_view(_state()))
    for _, tables in STAGES:
        for table in tables:
            assert any(f.table == table and f.priority == 0 for f in flows), table
    assert all(f.goto is None or f.goto > f.table for f in flows)


def test_policy_rule_becomes_one_flow_with_priority_order() -> None:
    flows = build(_view(_state((Rule("1", "in", "deny", protocol="tcp"),
                                Rule("2", "in", "allow", priority=10, protocol="tcp", port=8000)))))
    ingress = _table(flows, Table.INGRESS_POLICY)
    deny = next(f for f in ingress if "nw_proto=6" in f and "tp_dst" not in f)
    allow = next(f for f in ingress if "tp_dst=8000" in f)
    assert "reg3=10" in deny
    assert deny.endswith("actions=drop")
    assert f"goto_table:{int(Table.CT_COMMIT)}" in allow
    assert int(allow.split("priority=")[1].split(",")[0]) > int(deny.split("priority=")[1].split(",")[0])


def test_deny_wins_at_equal_priority() -> None:
    allow = MatchRule("a", Table.INGRESS_POLICY, 5, True)
    deny = MatchRule("d", Table.INGRESS_POLICY, 5, False)
    assert flow_priority(deny) > flow_priority(allow)


def test_policy_of_a_group_without_local_members_is_not_installed() -> None:
    flows = build(_view(_state((Rule("1", "in", "deny", protocol="tcp"),)), host="h2"))
    assert not [f for f in _table(flows, Table.INGRESS_POLICY) if "reg3=10" in f]


def test_rule_with_unknown_group_matches_nothing() -> None:
    flows = build(_view(_state((Rule("1", "in", "allow", from_group="nope"),))))
    assert not [f for f in _table(flows, Table.INGRESS_POLICY) if "reg3=10" in f]


def test_out_rule_to_network_matches_its_subnet() -> None:
    flows = build(_view(_state((Rule("1", "out", "deny", to_network="n", protocol="udp", port=53),))))
    egress = [f for f in _table(flows, Table.EGRESS_POLICY) if "reg2=10" in f]
    assert len(egress) == 1
    for part in ("nw_dst=10.1.0.0/24", "tp_dst=53", "nw_proto=17"):
        assert part in egress[0]


def test_conjunction_keeps_sets_linear() -> None:
    src = tuple(Match.of(eth_type=ETH_IP, ipv4_src=f"10.0.{i // 250}.{i % 250 + 1}") for i in range(100))
    dst = tuple(Match.of(eth_type=ETH_IP, ipv4_dst=f"10.9.{i // 250}.{i % 250 + 1}") for i in range(100))
    svc = tuple(Match.of(eth_type=ETH_IP, ip_proto=6, tcp_dst=8000 + i) for i in range(10))
    flows = compile_rules([MatchRule("r", Table.INGRESS_POLICY, 1, True, src, dst, svc)], Table.CT_COMMIT)
    assert len(flows) == 100 + 100 + 10 + 1
    assert sum(1 for f in flows if f.match.fields == (("conj_id", f.match.fields[0][1]),)) == 1


def test_shared_clause_flows_merge_conjunctions() -> None:
    svc = tuple(Match.of(eth_type=ETH_IP, ip_proto=6, tcp_dst=p) for p in (80, 443, 8080))
    srcs = [tuple(Match.of(eth_type=ETH_IP, ipv4_src=f"10.{r}.0.{i}") for i in range(1, 5)) for r in (1, 2)]
    rules = [MatchRule(f"r{r}", Table.INGRESS_POLICY, 1, True, s, (), svc) for r, s in enumerate(srcs)]
    flows = compile_rules(rules, Table.CT_COMMIT)
    port80 = [f for f in flows if ("tcp_dst", 80) in f.match.fields]
    assert len(port80) == 1
    assert len([a for a in port80[0].actions if isinstance(a, Conjunction)]) == 2


def test_pipeline_is_deterministic() -> None:
    state = _state((Rule("1", "in", "deny", protocol="tcp"),))
    assert sorted(f.ofctl() for f in build(_view(state))) == sorted(f.ofctl() for f in build(_view(state)))


def test_routing_mode_answers_gateway_and_routes() -> None:
    flows = build(_view(_state(fwd_mode="routing")))
    arp = _table(flows, Table.ARP_RESPONDER)
    assert any("arp_tpa=10.1.0.254" in f and "00:00:11:11:11:11" in f for f in arp)
    assert any("dec_ttl" in f for f in _table(flows, Table.L3_FORWARDING))
    bridged = build(_view(_state()))
    assert not any("10.1.0.254" in f.ofctl() for f in bridged), "bridge mode leaves the gateway alone"


def test_head_end_replication_lists_peer_vteps() -> None:
    flows = build(_view(_state()))
    flood = [f for f in _table(flows, Table.OUTPUT) if "reg0=3" in f]
    assert len(flood) == 1
    assert "192.0.2.2->tun_dst" in flood[0]
    assert "output:16" in flood[0]
    assert "dl_type=0x806" in flood[0], "only ARP is flooded"


def test_l2_decides_and_never_floods_ipv4_to_endpoints() -> None:
    """L2 forwarding only writes registers; OUTPUT is the one table that outputs; IPv4 to a MAC no
    endpoint owns is never flooded (VXLAN: dropped; VLAN: to the uplink only, from a local endpoint)."""
    vlan = Network("t1", "v", "vlan", "10.2.0.0/24", vlan=200)
    state = DesiredState(networks=(NET, vlan), hosts=(Host("h1", "192.0.2.1"), Host("h2", "192.0.2.2")),
                         groups=(EndpointGroup("t1", "web", 10, "n"),),
                         endpoints=(Endpoint("a", "t1", "n", "10.1.0.1", "h1", group="web"),
                                    Endpoint("c", "t1", "v", "10.2.0.1", "h1"),
                                    Endpoint("b", "t1", "n", "10.1.0.2", "h2")))
    flows = build(_view(state))
    outputs = [f for f in flows if any(a.text().startswith(("output:", "bundle(")) for a in f.actions)]
    assert {f.table for f in outputs} == {Table.OUTPUT}
    l2 = _table(flows, Table.L2_FORWARDING_CALC)
    assert all("goto_table" in f or f.endswith("actions=drop") for f in l2)
    to_a = next(f for f in l2 if "dl_dst=" + state.endpoints[0].mac in f)
    assert "load:0xa->NXM_NX_REG3[]" in to_a, "the receiver's EPG comes from its port"
    ip_wide = [f for f in l2 if "dl_dst" not in f and "dl_type=0x800" in f]
    assert len(ip_wide) == 1
    assert "reg4=200" in ip_wide[0]
    assert "reg0=3" in ip_wide[0]
    assert "load:0x4->NXM_NX_REG6[]" in ip_wide[0], "VLAN: to the uplink"
    floods = [f for f in _table(flows, Table.OUTPUT) if "reg6=5" in f and "output:" in f]
    assert floods
    assert all("dl_type=0x806" in f for f in floods)


def test_counts_by_stage_cover_all_flows() -> None:
    flows = build(_view(_state()))
    counts = counts_by_stage(flows)
    assert sum(sum(t.values()) for t in counts.values()) == len(flows)


def test_cookie_carries_round_and_feature() -> None:
    cookie = make_cookie(513, 7)  # type: ignore[arg-type]
    assert cookie_round(cookie) == 513
    assert cookie_feature(cookie) == 7


def test_state_json_round_trip_and_validation() -> None:
    state = _state((Rule("1", "in", "allow", protocol="tcp", port=80),), revision=4)
    assert DesiredState.from_dict(state.to_dict()) == state
    assert state.endpoint("a").mac == next(candidates(state.endpoint("a").ip)), "netmaster's rule"
    nets = (Network("t1", "n", "vxlan", "10.1.0.0/24", vni=1), Network("t2", "n", "vxlan", "10.1.0.0/24", vni=2))
    twins = DesiredState(networks=nets, endpoints=(Endpoint("a", "t1", "n", "10.1.0.1", "h"),
                                                   Endpoint("b", "t2", "n", "10.1.0.1", "h")))
    assert twins.endpoint("a").mac != twins.endpoint("b").mac, "same address in two tenants, two MACs"
    assert DesiredState.from_dict(twins.to_dict()) == twins
    with pytest.raises(ValueError, match="unknown network"):
        DesiredState(endpoints=(Endpoint("x", "t", "missing", "10.0.0.1", "h"),))
    with pytest.raises(ValueError, match="port needs protocol"):
        Rule("1", "in", "allow", port=80)
    with pytest.raises(ValueError, match="vlan tag"):
        Network("t", "n", "vlan", "10.0.0.0/24", vlan=5000)


def test_dump_pipeline_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.daemon import main

    path = tmp_path / "state.json"
    _state((Rule("1", "in", "deny", protocol="tcp"),)).save(path)
    assert main(["--host-label", "h1", "--state-file", str(path), "--dump-pipeline", "--vtep-ip", "192.0.2.1",
                 "-v"]) == 0
    out = capsys.readouterr().out
    assert f"ingress_policy    INGRESS_POLICY    {int(Table.INGRESS_POLICY):2d}" in out
    assert "actions=drop" in out
    total = int(out.strip().splitlines()[-1].split()[-1])
    assert total == len(build(_view(_state((Rule("1", "in", "deny", protocol="tcp"),)))))


def test_bonded_uplink_admits_on_the_active_member_and_outputs_to_a_live_one() -> None:
    vlan = Network("t1", "v", "vlan", "10.2.0.0/24", vlan=200)
    state = DesiredState(networks=(vlan,), hosts=(Host("h1", ""), Host("h2", "")),
                         endpoints=(Endpoint("a", "t1", "v", "10.2.0.1", "h1"),
                                    Endpoint("b", "t1", "v", "10.2.0.2", "h2")))
    flows = build(DatapathView(state, "h1", {"t1": 1}, {"a": 16}, False, True, (2, 3)))
    classifier = _table(flows, Table.CLASSIFIER)
    for member in (2, 3):
        assert any(f"in_port={member} " in f + " " and "bundle_load(eth_src,0,active_backup,ofport,"
                   "NXM_NX_REG7[],members:2,3)" in f and f"goto_table:{int(Table.UPLINK)}" in f for f in classifier)
    admit = _table(flows, Table.UPLINK)
    assert len([f for f in admit if "reg7=" in f]) == 2  # one per member for the one VLAN network
    assert all("reg7=2" in f for f in admit if "in_port=2" in f)
    assert any(f.endswith("actions=drop") and "priority=0" in f for f in admit)
    assert any("bundle(eth_src,0,active_backup,ofport,members:2,3)" in f for f in _table(flows, Table.OUTPUT))
    single = build(DatapathView(state, "h1", {"t1": 1}, {"a": 16}, False, True))
    assert not any("bundle" in f.ofctl() for f in single)
    assert any("in_port=2" in f and f"goto_table:{int(Table.SRC_EPG)}" in f for f in _table(single, Table.CLASSIFIER))


def test_framework_numbers_tables_by_stage_and_a_new_table_renumbers_nothing_by_hand() -> None:
    from agent.ovs.flow import Feature
    from agent.pipeline.framework import Pipeline, Stage, TableSpec
    from agent.pipeline.tables import DECLARED, next_table

    assert [int(t) for t in Table] == list(range(len(DECLARED)))
    assert Table.CLASSIFIER == 0
    stages = [Table(t) for t in Table]
    assert [_stage(t) for t in stages] == sorted(_stage(t) for t in stages)
    assert next_table(Table.EGRESS_POLICY) == Table.L3_FORWARDING
    # A later feature declares a table in an existing stage (after that stage's tables, declaration
    # order): it lands there, and the goto chain runs through it.
    later = TableSpec("LATER_FEATURE", Stage.CONNTRACK_STATE, Feature.PIPELINE, "a later feature's job")
    grown = Pipeline((*DECLARED, later))
    assert grown.next(grown.table["CT_STATE"]) == grown.table["LATER_FEATURE"]
    assert grown.next(grown.table["LATER_FEATURE"]) == grown.table[Table(next_table(Table.CT_STATE)).name]
    assert [t.name for t in grown.table if t.name != "LATER_FEATURE"] == [t.name for t in Table]
    with pytest.raises(ValueError, match="declared twice"):
        Pipeline((*DECLARED, DECLARED[0]))
    with pytest.raises(ValueError, match="last table"):
        next_table(Table.OUTPUT)


def _stage(table: int) -> int:
    from agent.pipeline.tables import PIPELINE

    return int(PIPELINE.stage_of(table))


def test_policy_verdict_flows_carry_their_rule_id_in_the_cookie() -> None:
    from agent.ovs.flow import Feature, cookie_rule
    from agent.pipeline import rules_of
    from agent.pipeline.conjunction import rule_ids

    view = _view(_state((Rule("1", "in", "deny", protocol="tcp"),
                         Rule("2", "in", "allow", priority=10, protocol="tcp", port=8000))))
    ids = rule_ids(rules_of(view))
    verdicts = [f for f in build(view) if f.feature == Feature.POLICY and f.rule]
    assert sorted(f.rule for f in verdicts) == sorted(ids.values())
    assert {cookie_rule(make_cookie(9, f.feature, f.rule)) for f in verdicts} == set(ids.values())


def _with_web_qos(profile: Qos) -> DesiredState:
    state = _state()
    return replace(state, groups=tuple(replace(g, qos=profile) if g.name == "web" else g for g in state.groups))


def test_qos_table_meters_and_marks_a_profiled_groups_local_endpoints() -> None:
    gold = Qos("t1:gold", rate_kbps=10_000, dscp=46)
    view = _view(_with_web_qos(gold))
    flows = build(view)
    qos_flows = _table(flows, Table.QOS)
    assert len(qos_flows) == 2, qos_flows  # a's flow (b is remote) and the miss
    assert f"dl_type=0x800,in_port=16 actions=meter:16,set_field:46->ip_dscp,goto_table:{int(Table.QOS) + 1}" \
        in qos_flows[0]
    assert dict(qos.meters(view)) == {16: (10_000, 2000)}
    assert Table.QOS > Table.EGRESS_POLICY  # denied packets never use the endpoint's rate
    marks_only = build(_view(_with_web_qos(Qos("x", dscp=8))))
    assert "actions=set_field:8->ip_dscp,goto_table" in _table(marks_only, Table.QOS)[0]


def test_arp_flood_mode_answers_no_endpoint_in_the_switch() -> None:
    proxy = _table(build(_view(_state())), Table.ARP_RESPONDER)
    flood = _table(build(_view(_state(arp_mode="flood"))), Table.ARP_RESPONDER)
    assert sum("arp_tpa=10.1.0." in f for f in proxy) == 2
    assert flood == [f for f in proxy if "arp_tpa=" not in f], flood
    routed = _table(build(_view(_state(arp_mode="flood", fwd_mode="routing"))), Table.ARP_RESPONDER)
    assert [f for f in routed if "arp_tpa=" in f] == [next(f for f in routed if "arp_tpa=10.1.0.254" in f)]
    with pytest.raises(ValueError, match="arp_mode"):
        DesiredState(arp_mode="relay")  # type: ignore[arg-type]
