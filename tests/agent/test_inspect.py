"""The agent's inspect API and metrics against a running cluster."""

from __future__ import annotations

from agent.state import DesiredState, Endpoint, EndpointGroup, Network
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath


def test_inspect_driver_endpoint_and_metrics(env: ClusterEnv) -> None:
    a, b = env.container("a"), env.container("b")
    net = Network("t1", "n", "vxlan", "10.7.0.0/24", vni=9100)
    env.apply(DesiredState(networks=(net,), groups=(EndpointGroup("t1", "g", 42, "n"),), endpoints=(
        Endpoint("ep-a", "t1", "n", "10.7.0.1", "h1", group="g", netns=a),
        Endpoint("ep-b", "t1", "n", "10.7.0.2", "h2", netns=b))))
    h1 = env.cluster.hosts[0]

    status, info = h1.get("/inspect/driver?flows=1")
    assert status == 200
    assert [e["id"] for e in info["endpoints"]] == ["ep-a"]
    assert [e["id"] for e in info["remote_endpoints"]] == ["ep-b"]
    assert info["vteps"] == [env.cluster.hosts[1].vtep_ip]
    on_switch = len(h1.flows())
    assert info["flows_total"] == on_switch, "the agent's view of its flows matches the switch"
    assert sum(sum(t.values()) for t in info["flows_by_stage"].values()) == on_switch
    assert any("in_port=" in f for f in info["flows"]["classifier"])

    status, ep = h1.get("/inspect/endpoint/ep-a")
    assert status == 200
    assert ep["local"] is True
    assert ep["epg_id"] == 42
    assert ep["ofport"] >= 16
    assert any("nw_src=10.7.0.1" in f for f in ep["flows"])
    assert h1.get("/inspect/endpoint/nope")[0] == 404

    status, metrics = h1.get("/metrics")
    assert status == 200
    assert f"contiv_agent_ovs_total_flow_count {float(on_switch)}" in metrics
    assert 'contiv_agent_endpoint_count{location="local"} 1.0' in metrics
    assert "contiv_agent_reconcile_duration_seconds_count" in metrics
    assert "contiv_agent_ovs_flow_ops_latency_seconds_bucket" in metrics
