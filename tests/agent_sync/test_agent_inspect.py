"""netctl reaching an agent's inspect API, directly and through netmaster, and the agent's --ctrl-ip.

A token-protected netmaster and two agents that serve their read-only inspect API on TCP
(``--inspect-listen`` on their control address) and publish it in their agent record. h2's control
address is a secondary one, so binding the netmaster connections to ``--ctrl-ip`` is visible: the
kernel would otherwise pick the primary address.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from netmaster.cli.netctl import cli
from testbed.cluster import REPO, SimHost, in_ns
from testbed.cluster.prereq import running
from testbed.sync_cluster import SyncCluster, add_endpoint, wait_revision
from testbed.waiting import eventually

TOKEN = "inspect-test-token"
INSPECT_PORT = 9101  # inside each host's namespace: no clash with anything outside


class InspectCluster(SyncCluster):
    def host_ctrl_ip(self, host: SimHost) -> str:
        i = self.hosts.index(host) + 1
        return f"{self.ctrl_net}.{100 + i}" if host.name == "h2" else f"{self.ctrl_net}.{i}"

    def up(self, start_agents: bool = True) -> InspectCluster:
        super().up(start_agents=False)
        h2 = self.hosts[1]
        in_ns(h2.netns, "ip", "addr", "add", f"{self.host_ctrl_ip(h2)}/24", "dev", "ctrl0")  # secondary
        for host in self.hosts:
            self.start_agent(host)
        return self

    def state_source_args(self, host: SimHost) -> list[str]:
        args = super().state_source_args(host)
        args[args.index("--ctrl-ip") + 1] = self.host_ctrl_ip(host)
        return [*args, "--netmaster-token", TOKEN, "--inspect-listen", f"0.0.0.0:{INSPECT_PORT}"]


@pytest.fixture(scope="module")
def ic() -> Iterator[InspectCluster]:
    yield from running(InspectCluster(n_hosts=2, netmaster_args=("--token", TOKEN)))


def netctl(ic: InspectCluster, *args: str, expect: int = 0, token: str | None = TOKEN) -> Any:
    """Run netctl in-process; JSON output is decoded."""
    base = ["--netmaster", ic.netmaster_url, *(["--token", token] if token else [])]
    result = CliRunner().invoke(cli, [*base, *args])
    assert result.exit_code == expect, result.output
    try:
        return json.loads(result.stdout)
    except ValueError:
        return result.output


def _api(ic: InspectCluster) -> httpx.Client:
    return httpx.Client(base_url=ic.netmaster_url, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})


def test_agents_publish_inspect_url_and_ctrl_ip(ic: InspectCluster) -> None:
    agents = {a["hostLabel"]: a for a in netctl(ic, "agent", "ls", "--json")}
    for host in ic.hosts:
        ctrl = ic.host_ctrl_ip(host)
        assert agents[host.name]["ctrlIP"] == ctrl
        assert agents[host.name]["inspectURL"] == f"http://{ctrl}:{INSPECT_PORT}"
    table = netctl(ic, "agent", "ls")
    assert f"http://{ic.host_ctrl_ip(ic.hosts[1])}:{INSPECT_PORT}" in table


def test_netmaster_connections_leave_from_the_ctrl_ip(ic: InspectCluster) -> None:
    h2 = ic.hosts[1]
    out = in_ns(h2.netns, "ss", "-tnH", "state", "established", "dst", f"{ic.ctrl_ip}:{ic.nm_port}").stdout
    sources = {line.split()[2].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}
    assert sources == {ic.host_ctrl_ip(h2)}, out  # the watch (and the heartbeat's keep-alive connection)


def test_inspect_through_netmaster_and_directly(ic: InspectCluster) -> None:
    with _api(ic) as api:
        api.post("/api/v1/tenants/ti/", json={"tenantName": "ti"}).raise_for_status()
        resp = api.post("/api/v1/networks/ti:net/", json={"tenantName": "ti", "networkName": "net",
                                                          "encap": "vxlan", "subnet": "10.71.0.0/24"})
        resp.raise_for_status()
    wait_revision(ic, int(resp.headers["X-Revision"]))
    h1 = ic.hosts[0]
    ns = ic.container("i1")
    status, ep = add_endpoint(h1, endpoint_id="ep-i1", tenant="ti", network="net", netns=ns)
    assert status == 200, ep

    via_nm = netctl(ic, "agent", "inspect", "driver", "--host", "h1")
    assert via_nm["host"] == "h1"
    assert [e["id"] for e in via_nm["endpoints"]] == ["ep-i1"]
    assert "flows" not in via_nm
    assert netctl(ic, "agent", "inspect", "driver", "--host", "h1", "--flows")["flows"]["classifier"]
    # h2 has no endpoint on the network, so ep-i1 is not in its span (netmaster.api.span) until it has one.
    with _api(ic) as api:
        wait_revision(ic, int(api.get("/healthz").json()["revision"]))
    assert netctl(ic, "agent", "inspect", "driver", "--host", "h2")["remote_endpoints"] == []
    i0 = ic.container("i0")
    status, other = add_endpoint(ic.hosts[1], endpoint_id="ep-i0", tenant="ti", network="net", netns=i0)
    assert status == 200, other

    def h2_remote() -> list[str]:
        return [e["id"] for e in netctl(ic, "agent", "inspect", "driver", "--host", "h2")["remote_endpoints"]]

    eventually(lambda: h2_remote() == ["ep-i1"], what="ep-i1 on h2 once h2 has an endpoint on the network")

    ep_info = netctl(ic, "agent", "inspect", "endpoint", "ep-i1", "--host", "h1")
    assert ep_info["local"] is True
    assert ep_info["ofport"] >= 16
    assert ep_info["flows"]
    assert "not found" in netctl(ic, "agent", "inspect", "endpoint", "nope", "--host", "h1", expect=3)

    direct_unix = netctl(ic, "agent", "inspect", "driver", "--agent", f"unix://{h1.inspect_sock}")
    assert direct_unix["endpoints"] == via_nm["endpoints"]
    url = f"http://{ic.host_ctrl_ip(h1)}:{INSPECT_PORT}"
    direct_tcp = netctl(ic, "agent", "inspect", "endpoint", "ep-i1", "--agent", url)
    assert direct_tcp["ofport"] == ep_info["ofport"]

    # per-rule counters (rule id in the flow cookies), through netmaster
    with _api(ic) as api:
        api.post("/api/v1/policys/ti:pi/", json={"tenantName": "ti", "policyName": "pi"}).raise_for_status()
        api.post("/api/v1/rules/ti:pi:1/", json={"tenantName": "ti", "policyName": "pi", "ruleId": "1",
                                                 "direction": "in", "action": "deny",
                                                 "protocol": "tcp"}).raise_for_status()
        resp = api.post("/api/v1/endpointGroups/ti:gi/", json={"tenantName": "ti", "groupName": "gi",
                                                               "networkName": "net", "policies": ["pi"]})
        resp.raise_for_status()
    wait_revision(ic, int(resp.headers["X-Revision"]))
    status, ep2 = add_endpoint(h1, endpoint_id="ep-i2", tenant="ti", network="net", group="gi",
                               netns=ic.container("i2"))
    assert status == 200, ep2
    rules = netctl(ic, "agent", "inspect", "driver", "--host", "h1", "--rules")["rules"]
    assert [(r["rule"], r["action"], r["table"]) for r in rules] == [("ti:pi:1@ti:gi", "deny", "INGRESS_POLICY")]
    assert rules[0]["flows"] == 1
    assert rules[0]["packets"] == 0


def test_tokens_are_required(ic: InspectCluster) -> None:
    assert "bearer token" in netctl(ic, "agent", "inspect", "driver", "--host", "h1", expect=3, token=None)
    url = f"http://{ic.host_ctrl_ip(ic.hosts[0])}:{INSPECT_PORT}"
    assert httpx.get(url + "/inspect/driver", timeout=5).status_code == 401
    assert httpx.get(url + "/inspect/driver", timeout=5, headers={"Authorization": "Bearer wrong"}).status_code == 401
    # The TCP listener is read-only: the endpoint API stays on the local socket.
    resp = httpx.post(url + "/endpoints", json={}, timeout=5, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 404


def test_bad_targets_and_unknown_agents(ic: InspectCluster) -> None:
    assert "exactly one of" in netctl(ic, "agent", "inspect", "driver", expect=1)
    assert "exactly one of" in netctl(ic, "agent", "inspect", "driver", "--host", "h1", "--agent", "unix:///x",
                                      expect=1)
    assert "expected unix" in netctl(ic, "agent", "inspect", "driver", "--agent", "ftp://x", expect=1)
    assert "not found" in netctl(ic, "agent", "inspect", "driver", "--host", "nosuchhost", expect=3)
    out = netctl(ic, "agent", "inspect", "driver", "--agent", "unix:///nonexistent.sock", expect=1)
    assert "Error connecting to agent at unix:///nonexistent.sock" in out


def test_agent_down_is_a_bad_gateway(ic: InspectCluster) -> None:
    h2 = ic.hosts[1]
    ic.kill_agent(h2)
    try:
        out = netctl(ic, "agent", "inspect", "driver", "--host", "h2", expect=3)
        assert "unreachable" in out
    finally:
        ic.start_agent(h2)


def test_ctrl_ip_must_be_an_address_of_the_host(tmp_path: Any) -> None:
    base = [sys.executable, "-m", "agent", "--host-label", "x", "--netmaster", "http://127.0.0.1:1",
            "--state-dir", str(tmp_path)]
    for value, message in (("203.0.113.77", "is not an address of this host"), ("nope", "not an IPv4 address")):
        proc = subprocess.run([*base, "--ctrl-ip", value], capture_output=True, text=True, timeout=30, cwd=REPO)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr
    proc = subprocess.run([*base, "--inspect-listen", "0.0.0.0:9"], capture_output=True, text=True, timeout=30,
                          cwd=REPO)
    assert proc.returncode == 2
    assert "needs --ctrl-ip" in proc.stderr
