"""A simulated cluster whose agents follow a real netmaster (list+watch) instead of state files.

The agents run inside their host namespaces, so netmaster must be reachable from there: the cluster
gets a control network, a Linux bridge ``P-ct`` in the root namespace holding netmaster's address and
one veth per host (``ctrl0`` inside the host), on a /24 picked from the prefix so concurrent clusters
do not share addresses. netmaster keeps its state in SQLite under the cluster's directory, so a test
can stop and start it and agents resume their watch. ``cut_off``/``reconnect`` partition one host from
netmaster (its control interface drops everything) while its data path stays up.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import quote

import httpx

from testbed.cluster import Cluster, SimHost, in_ns, sh
from testbed.netmaster import NetmasterProcess
from testbed.ports import free_port


class SyncCluster(Cluster):
    def __init__(self, n_hosts: int = 2, kind: str = "as", netmaster_args: tuple[str, ...] = (),
                 agent_args: tuple[str, ...] = ()) -> None:
        """*kind*: the name prefix (one of testbed.cluster.CLUSTER_PREFIXES), so cleanup finds leftovers.
        *netmaster_args*, *agent_args*: more options for netmaster and every agent."""
        super().__init__(n_hosts=n_hosts, prefix=kind + secrets.token_hex(2))
        self.netmaster_args = netmaster_args
        self.agent_args = agent_args
        suffix = int(self.prefix[2:], 16)
        self.ctrl_net = f"10.{200 + suffix % 50}.{(suffix >> 6) % 256}"
        self.netmaster: NetmasterProcess | None = None
        self.nm_port = 0

    @property
    def ctrl_ip(self) -> str:
        return f"{self.ctrl_net}.254"

    @property
    def netmaster_url(self) -> str:
        return f"http://{self.ctrl_ip}:{self.nm_port}"

    def up(self, start_agents: bool = True) -> SyncCluster:
        super().up(start_agents=False)
        p = self.prefix
        sh("ip", "link", "add", f"{p}ct", "type", "bridge")
        sh("ip", "addr", "add", f"{self.ctrl_ip}/24", "dev", f"{p}ct")
        sh("ip", "link", "set", f"{p}ct", "up")
        for i, host in enumerate(self.hosts, start=1):
            sh("ip", "link", "add", f"{p}k{i}", "type", "veth", "peer", "name", "ctrl0", "netns", host.netns)
            sh("ip", "link", "set", f"{p}k{i}", "master", f"{p}ct", "up")
            in_ns(host.netns, "ip", "addr", "add", f"{self.ctrl_net}.{i}/24", "dev", "ctrl0")
            in_ns(host.netns, "ip", "link", "set", "ctrl0", "up")
        self.nm_port = free_port(self.ctrl_ip)
        self.start_netmaster()
        if start_agents:
            for host in self.hosts:
                self.start_agent(host)
        return self

    def start_netmaster(self) -> None:
        self.netmaster = NetmasterProcess.spawn(f"sqlite:///{self.root}/netmaster.db", host=self.ctrl_ip,
                                                port=self.nm_port, log_path=self.root / "netmaster.log",
                                                args=self.netmaster_args)
        self.pids.append(self.netmaster.process.pid)
        self._record()

    def stop_netmaster(self) -> None:
        if self.netmaster is not None:
            self.netmaster.stop()
            self.pids.remove(self.netmaster.process.pid)
            self.netmaster = None
            self._record()

    def state_source_args(self, host: SimHost) -> list[str]:
        i = self.hosts.index(host) + 1
        return ["--netmaster", self.netmaster_url, "--ctrl-ip", f"{self.ctrl_net}.{i}",
                "--state-dir", str(host.rundir / "agent-state"), "--netmaster-wait", "2", *self.agent_args]

    def cut_off(self, host: SimHost) -> None:
        """Partition *host* from netmaster: its control interface drops every packet, both ways (TCP
        connections hang, as on a real network fault, rather than being refused)."""
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            in_ns(host.netns, "iptables", "-I", chain, flag, "ctrl0", "-j", "DROP")

    def reconnect(self, host: SimHost) -> None:
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            in_ns(host.netns, "iptables", "-D", chain, flag, "ctrl0", "-j", "DROP")

    def down(self) -> None:
        if self.netmaster is not None:
            self.netmaster.stop()
        super().down()


class Netmaster:
    """The REST calls the tests make, named like the objects they create."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def ok(self, resp: httpx.Response) -> Any:
        assert resp.status_code == 200, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
        return resp.json()

    def post(self, plural: str, key: str, **body: Any) -> int:
        """Create or update an object; returns the revision of the write."""
        resp = self.http.post(f"/api/v1/{plural}/{quote(key, safe=':')}/", json=body)
        self.ok(resp)
        return int(resp.headers["X-Revision"])

    def delete(self, plural: str, key: str) -> int:
        resp = self.http.delete(f"/api/v1/{plural}/{quote(key, safe=':')}/")
        self.ok(resp)
        return int(resp.headers["X-Revision"])

    def tenant_with_network(self, tenant: str, encap: str, subnet: str, **net: Any) -> int:
        self.post("tenants", tenant, tenantName=tenant)
        return self.post("networks", f"{tenant}:net", tenantName=tenant, networkName="net", encap=encap,
                         subnet=subnet, **net)

    def endpoint(self, endpoint_id: str) -> httpx.Response:
        return self.http.get(f"/api/v1/endpoints/{quote(endpoint_id, safe='')}/")


def wait_revision(cluster: Cluster, revision: int, timeout: float = 15) -> None:
    """Until every agent applied a state at least as new as netmaster's *revision*."""
    deadline = time.monotonic() + timeout
    for host in cluster.hosts:
        while True:
            _, info = host.get("/inspect/driver")
            if info["revision"] >= revision:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{host.name} at revision {info['revision']}, wanted {revision}: "
                                   f"{cluster.agent_log(host)[-3000:]}")
            time.sleep(0.05)


def add_endpoint(host: SimHost, timeout: float = 20, **req: Any) -> tuple[int, dict[str, Any]]:
    """EndpointOps.add through the agent's local API, as a front end would call it."""
    return host.request("POST", "/endpoints", req, timeout=timeout)


def delete_endpoint(host: SimHost, endpoint_id: str, timeout: float = 20) -> tuple[int, dict[str, Any]]:
    return host.request("DELETE", f"/endpoints/{quote(endpoint_id, safe='')}", timeout=timeout)
