"""Local endpoint records survive a restart (a new store on the same directory) and ignore junk."""

from __future__ import annotations

from pathlib import Path

from agent.local_endpoints import LocalEndpoint, LocalEndpointStore


def test_records_persist_and_reload(tmp_path: Path) -> None:
    store = LocalEndpointStore(tmp_path)
    a = LocalEndpoint("ns/a:1", "t", "n", netns="/var/run/netns/x", ifname="eth1", ip="10.0.0.1",
                      labels={"app": "web"})
    b = LocalEndpoint("b", "t", "n", netns=None)
    store.put(a)
    store.put(b)
    (tmp_path / "junk.json").write_text("{not json")
    again = LocalEndpointStore(tmp_path)
    assert again.all() == {"ns/a:1": a, "b": b}
    assert again.delete("b") is True
    assert again.delete("b") is False
    assert LocalEndpointStore(tmp_path).all() == {"ns/a:1": a}
