"""Which remote endpoints an agent retains when netmaster deletes them, and that they survive a
restart: the informer's handlers driven directly, without processes (the partition itself is tested
with real ones in test_partition.py)."""

from __future__ import annotations

from pathlib import Path

from agent.local_endpoints import LocalEndpoint, LocalEndpointStore
from agent.netmaster_source import AgentIdentity, NetmasterStateSource
from contiv_api.watch_format import ObjectState


def _source(tmp_path: Path) -> NetmasterStateSource:
    local = LocalEndpointStore(tmp_path / "eps")
    local.put(LocalEndpoint("mine", "t", "n", ip="10.1.0.2"))  # this host runs an endpoint of tenant t
    return NetmasterStateSource("http://127.0.0.1:1", AgentIdentity("h1"), local,
                                cache_file=tmp_path / "last-state.json")


def _ep(ep_id: str, host: str, tenant: str = "t") -> ObjectState:
    return ObjectState("endpoint", ep_id, {"endpointID": ep_id, "host": host, "ipAddress": "10.1.0.9",
                                           "tenantName": tenant, "networkName": "n", "vtepIP": "192.168.1.3"}, None)


def _agent(host: str) -> ObjectState:
    return ObjectState("agent", host, {"hostLabel": host, "vtepIP": "192.168.1.3"}, None)


def test_only_endpoints_of_absent_hosts_are_retained_and_they_survive_a_restart(tmp_path: Path) -> None:
    source = _source(tmp_path)
    for state in (_agent("h2"), _ep("alive", "h2"), _ep("gone", "h3"), _ep("mine", "h1"), _ep("far", "h3", "u")):
        source._mirror(state)
    source._forget(_ep("alive", "h2"))  # its host's agent is there: a container that went
    source._forget(_ep("mine", "h1"))  # this host's own endpoints follow its local records instead
    source._forget(_ep("gone", "h3"))  # h3's agent record is absent: endpoint GC, maybe a partition
    # No endpoint of tenant u runs here: nothing to forward to (a re-list after the span narrowed).
    source._forget(_ep("far", "h3", "u"))
    assert source.partition_info()["retained_remote"] == ["gone"]
    again = _source(tmp_path)  # a restarted agent
    assert again.partition_info()["retained_remote"] == ["gone"]
    again._mirror(_ep("gone", "h3"))  # re-claimed by its host: the live record takes over
    assert again.partition_info()["retained_remote"] == []
    assert _source(tmp_path).partition_info()["retained_remote"] == []
