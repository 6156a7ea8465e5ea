"""Contiv's ACI scenarios, proven with packets through a simulated leaf.

Containers on two hosts; agents tag each endpoint with its EPG's VLAN; the leaf classifies by VLAN,
enforces the contracts aci-gw wrote into apic_mock, answers for the bridge domain's gateway, and writes
what it learnt back as fvCEp. The tests run in order on one tenant: each builds on the state the
previous ones left (rules added one by one, then removed, then the app profile).

Every negative check follows ``AciApi.wait_synced`` (the APIC holds the change) and
``SimLeaf.wait_synced`` (the leaf programmed an APIC read taken after it), so "blocked" means the
fabric blocks it, not that it has not caught up yet.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from click.testing import CliRunner

from netmaster.cli.netctl import cli as netctl_cli
from testbed.aci_stack import AciApi
from testbed.cluster.aci import AciCluster
from testbed.netcheck import http_ok, http_server, ping, ping_eventually
from testbed.sync_cluster import add_endpoint, delete_endpoint
from testbed.waiting import eventually

TENANT = "e2e"
SUBNET = "10.41.0"
GATEWAY = f"{SUBNET}.254"
# container -> (host index, EPG; "" = none given, so netmaster puts it in default-group)
CONTAINERS = {"a1": (0, "a"), "a2": (1, "a"), "b1": (1, "b"), "b2": (0, "b"), "d1": (0, ""), "d2": (1, "")}


@dataclass
class Scenario:
    cluster: AciCluster
    api: AciApi
    vlans: dict[str, int]
    profile: str
    ns: dict[str, str] = field(default_factory=dict)
    eps: dict[str, dict] = field(default_factory=dict)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ip(self, name: str) -> str:
        return self.eps[name]["ip"]

    def converged(self) -> None:
        """The APIC holds netmaster's intent and the leaf has programmed it."""
        self.api.wait_synced(self.profile)
        assert self.cluster.leaf is not None
        self.cluster.leaf.wait_synced()


@pytest.fixture(scope="module")
def sc(fabric_cluster: AciCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    assert fabric_cluster.control is not None
    api = fabric_cluster.control.api
    api.tenant(TENANT)
    api.network(TENANT, "net", f"{SUBNET}.0/24", GATEWAY)
    api.policy(TENANT, "pb")
    vlans = {"a": api.group(TENANT, "a"), "b": api.group(TENANT, "b", policies=("pb",)),
             "default-group": api.group(TENANT, "default-group")}
    s = Scenario(fabric_cluster, api, vlans, api.profile(TENANT, "app", "a", "b", "default-group"))
    s.converged()
    for name, (host, group) in CONTAINERS.items():
        s.ns[name] = fabric_cluster.container(f"{TENANT}{name}")
        req = {"endpoint_id": f"{TENANT}-{name}", "tenant": TENANT, "network": "net", "netns": s.ns[name]}
        status, body = add_endpoint(fabric_cluster.hosts[host], **req, **({"group": group} if group else {}))
        assert status == 200, body
        s.eps[name] = body
    work = tmp_path_factory.mktemp("www")
    s.servers = [http_server(s.ns["b1"], port, work) for port in (8000, 8001, 9000)]
    yield s
    for proc in s.servers:
        proc.kill()
        proc.wait()


def test_same_epg_reaches_across_hosts(sc: Scenario) -> None:
    assert ping_eventually(sc.ns["a1"], sc.ip("a2"), timeout=10)
    assert ping_eventually(sc.ns["b2"], sc.ip("b1"), timeout=10)


def test_group_less_containers_join_default_group(sc: Scenario) -> None:
    for name in ("d1", "d2"):
        assert sc.api.get(f"/api/v1/endpoints/{TENANT}-{name}/")["groupName"] == "default-group"
        assert sc.eps[name]["vlan"] == sc.vlans["default-group"]
    assert ping_eventually(sc.ns["d1"], sc.ip("d2"), timeout=10)


def test_containers_ping_the_bridge_domain_gateway(sc: Scenario) -> None:
    for name in CONTAINERS:
        assert ping_eventually(sc.ns[name], GATEWAY, timeout=10), name


def test_get_endpoint_reports_ip_and_epg_vlan(sc: Scenario) -> None:
    control = sc.cluster.control
    assert control is not None
    for name, (_, group) in CONTAINERS.items():
        epg = group or "default-group"
        ep = sc.eps[name]

        def learnt(ep: dict = ep, epg: str = epg) -> dict | None:
            reply = control.gw_endpoint(TENANT, "app", epg, ep["mac"])
            return reply if reply["result"] == "success" else None

        found = eventually(learnt, timeout=15, what=f"{name} learnt by the fabric")
        assert (found["ip"], found["vlan"]) == (ep["ip"], str(sc.vlans[epg])), name


def test_other_epg_blocked_without_a_contract(sc: Scenario) -> None:
    sc.converged()
    assert ping_eventually(sc.ns["a1"], sc.ip("a2"))  # the path works; only the contract is missing
    assert not ping(sc.ns["a1"], sc.ip("b1"), count=2)  # other host
    assert not ping(sc.ns["a1"], sc.ip("b2"), count=2)  # same host: not switched locally either
    assert not http_ok(sc.ns["a1"], sc.ip("b1"), 8000, timeout=1)
    assert not ping(sc.ns["d1"], sc.ip("a1"), count=2)


def test_in_rules_from_a_open_exactly_what_they_allow(sc: Scenario) -> None:
    a1, b1 = sc.ns["a1"], sc.ip("b1")
    sc.api.rule(TENANT, "pb", "1", protocol="icmp", fromEndpointGroup="a")
    sc.converged()
    assert ping_eventually(a1, b1, timeout=10)
    assert ping_eventually(a1, sc.ip("b2"), timeout=10)  # same host, hairpinned by the leaf
    assert not http_ok(a1, b1, 8000, timeout=1)
    assert not http_ok(a1, b1, 8001, timeout=1)
    assert not ping(sc.ns["d1"], b1, count=2)  # the rule is from EPG a only

    sc.api.rule(TENANT, "pb", "2", protocol="tcp", port=8000, fromEndpointGroup="a")
    sc.converged()
    eventually(lambda: http_ok(a1, b1, 8000), timeout=10, what="tcp 8000 open")
    assert not http_ok(a1, b1, 8001, timeout=1)

    sc.api.rule(TENANT, "pb", "3", protocol="tcp", port=8001, fromEndpointGroup="a")
    sc.converged()
    eventually(lambda: http_ok(a1, b1, 8001), timeout=10, what="tcp 8001 open")
    assert http_ok(a1, b1, 8000)
    assert not http_ok(a1, b1, 9000, timeout=1)
    assert not http_ok(sc.ns["d1"], b1, 8000, timeout=1)


def test_deleting_a_rule_closes_it(sc: Scenario) -> None:
    a1, b1 = sc.ns["a1"], sc.ip("b1")
    sc.api.delete("rules", f"{TENANT}:pb:2")
    sc.converged()
    eventually(lambda: not http_ok(a1, b1, 8000, timeout=1), timeout=10, what="tcp 8000 closed")
    assert http_ok(a1, b1, 8001)
    assert ping(a1, b1)


def test_agent_restart_keeps_traffic_and_later_rules_apply(sc: Scenario) -> None:
    cluster = sc.cluster
    a1, b1 = sc.ns["a1"], sc.ip("b1")
    for host in cluster.hosts:
        cluster.kill_agent(host)
    assert ping(a1, b1)
    assert ping(a1, sc.ip("a2"))
    assert http_ok(a1, b1, 8001)
    for host in cluster.hosts:
        cluster.start_agent(host)
    assert ping(a1, b1)
    assert http_ok(a1, b1, 8001)
    sc.api.rule(TENANT, "pb", "4", protocol="tcp", port=9000, fromEndpointGroup="a")
    sc.converged()
    eventually(lambda: http_ok(a1, b1, 9000), timeout=10, what="tcp 9000 open after the restart")


def test_gateway_and_netmaster_restarts_keep_traffic_and_later_rules_apply(sc: Scenario) -> None:
    control = sc.cluster.control
    assert control is not None
    assert control.gw is not None
    a1, b1 = sc.ns["a1"], sc.ip("b1")
    control.gw.restart()
    sc.cluster.stop_netmaster()
    assert ping(a1, b1)  # netmaster down, aci-gw fresh: the fabric and the hosts carry on
    assert http_ok(a1, b1, 9000)
    sc.cluster.start_netmaster()
    assert ping(a1, sc.ip("a2"))
    sc.api.rule(TENANT, "pb", "5", protocol="tcp", port=8000, fromEndpointGroup="a")
    sc.converged()
    eventually(lambda: http_ok(a1, b1, 8000), timeout=10, what="tcp 8000 open after the restarts")
    sc.api.delete("rules", f"{TENANT}:pb:5")
    sc.converged()
    eventually(lambda: not http_ok(a1, b1, 8000, timeout=1), timeout=10, what="tcp 8000 closed again")


def _entry_for_port(sc: Scenario, port: str) -> str:
    control = sc.cluster.control
    assert control is not None
    tree = control.apic_tree(f"uni/tn-{TENANT}")
    return next(dn for dn, (cls, attrs) in tree.items() if cls == "vzEntry" and attrs.get("dToPort") == port)


def _drift_metric(sc: Scenario) -> float:
    control = sc.cluster.control
    assert control is not None
    assert control.gw is not None
    text = httpx.get(f"{control.gw.url}/metrics", timeout=5).text
    line = next((x for x in text.splitlines() if x.startswith('aci_gw_drift_repairs_total{result="repaired"}')), "")
    return float(line.split()[-1]) if line else 0.0


def test_drift_made_in_the_apic_is_repaired_and_traffic_recovers(sc: Scenario) -> None:
    """An APIC administrator deletes Contiv's filter entry, then its EPG: aci-gw's drift watch puts
    them back, the leaf enforces them again, the agents announce their endpoints again (the EPG lost
    what the fabric had learnt); a user's EPG beside them is left as it is."""
    control = sc.cluster.control
    assert control is not None
    assert control.apic is not None
    assert sc.cluster.leaf is not None
    a1, b1 = sc.ns["a1"], sc.ip("b1")
    sc.converged()
    eventually(lambda: http_ok(a1, b1, 9000), timeout=10, what="tcp 9000 open")
    with control.apic.client() as apic:
        user_epg = {"fvAEPg": {"attributes": {"name": "ops-probe"}}}
        assert apic.post(f"/api/mo/uni/tn-{TENANT}/ap-app.json", json=user_epg).status_code == 200
        repaired_before = _drift_metric(sc)
        entry = _entry_for_port(sc, "9000")
        assert apic.delete(f"/api/mo/{entry}.json").status_code == 200
        eventually(lambda: control.apic_tree(entry), timeout=5, what="the filter entry back")
        eventually(lambda: http_ok(a1, b1, 9000), timeout=10, what="tcp 9000 open again")
        epg_b = f"uni/tn-{TENANT}/ap-app/epg-b"
        assert apic.delete(f"/api/mo/{epg_b}.json").status_code == 200
        eventually(lambda: control.apic_tree(epg_b), timeout=5, what="EPG b back")
        assert ping_eventually(a1, b1, timeout=20)
        eventually(lambda: http_ok(a1, b1, 9000), timeout=10, what="tcp 9000 open to the re-created EPG")
        assert control.apic_tree(f"uni/tn-{TENANT}/ap-app/epg-ops-probe")
        assert _drift_metric(sc) >= repaired_before + 2
        assert apic.delete(f"/api/mo/uni/tn-{TENANT}/ap-app/epg-ops-probe.json").status_code == 200

    def inspected() -> dict | None:
        result = CliRunner().invoke(netctl_cli, ["--netmaster", control.netmaster_url, "app-profile", "inspect",
                                                 "-t", TENANT, "app"])
        assert result.exit_code == 0, result.output
        sync = json.loads(result.stdout)["Oper"]["aciSync"]
        return sync if sync.get("repairs", 0) >= 2 and sync.get("driftRepairedAt") else None

    sync = eventually(inspected, timeout=15, what="the repairs in netctl app-profile inspect")
    assert any("epg-b" in d for d in sync["lastDrift"])
    assert control.gw.log_path is not None
    logged = control.gw.log_path.read_text()
    assert f"deleted fvAEPg {epg_b}" in logged
    assert "repaired in one POST" in logged


def test_apic_outage_during_a_push_converges_once_the_apic_is_back(sc: Scenario) -> None:
    control = sc.cluster.control
    assert control is not None
    assert control.apic is not None
    assert sc.cluster.leaf is not None
    a1, b1 = sc.ns["a1"], sc.ip("b1")
    # aci-gw writes a tenant's objects in one POST to the tenant's DN: fail exactly those
    control.apic.admin.inject_fault("error", status=503, method="POST", path=rf"^/api/mo/uni/tn-{TENANT}\.json$")
    try:
        sc.api.rule(TENANT, "pb", "6", protocol="tcp", port=8000, fromEndpointGroup="a")
        failed = eventually(lambda: (st := sc.api.sync_state(sc.profile)).get("state") == "failed" and st,
                            timeout=20, what="the push failing")
        assert "503" in failed["reason"] or "unavailable" in failed["reason"].lower(), failed
        sc.cluster.leaf.wait_synced()
        assert not http_ok(a1, b1, 8000, timeout=1)
        assert http_ok(a1, b1, 8001)  # what the fabric already had keeps working
    finally:
        control.apic.admin.clear_faults()
    sc.converged()
    eventually(lambda: http_ok(a1, b1, 8000), timeout=10, what="tcp 8000 open once the APIC is back")
    sc.api.delete("rules", f"{TENANT}:pb:6")
    sc.converged()


def test_deleting_the_app_profile_removes_it_and_a_second_one_reapplies(sc: Scenario) -> None:
    control = sc.cluster.control
    assert control is not None
    assert sc.cluster.leaf is not None
    a1 = sc.ns["a1"]
    assert control.apic_tree(f"uni/tn-{TENANT}/ap-app")
    sc.api.delete("appProfiles", sc.profile)
    eventually(lambda: not control.apic_tree(f"uni/tn-{TENANT}/ap-app"), timeout=20, what="ap-app gone")
    sc.cluster.leaf.wait_synced()
    assert not ping(a1, sc.ip("a2"), count=2)
    assert not ping(a1, sc.ip("b1"), count=2)
    assert not ping(a1, GATEWAY, count=2)

    sc.profile = sc.api.profile(TENANT, "app2", "a", "b", "default-group")
    sc.converged()
    assert control.apic_tree(f"uni/tn-{TENANT}/ap-app2/epg-a")
    assert ping_eventually(a1, sc.ip("a2"), timeout=15)
    assert ping_eventually(a1, sc.ip("b1"), timeout=15)
    eventually(lambda: http_ok(a1, sc.ip("b1"), 8001), timeout=10, what="tcp 8001 open again")
    assert not http_ok(a1, sc.ip("b1"), 8000, timeout=1)


def test_endpoint_delete_cleans_up(sc: Scenario) -> None:
    for name, (host, _) in CONTAINERS.items():
        assert delete_endpoint(sc.cluster.hosts[host], f"{TENANT}-{name}") == (200, {"deleted": True})
