"""The ACI control plane as processes: apic_mock, aci-gw and netmaster in ACI mode, up and down in one call.

The end-to-end tests, the benchmarks and the ACI walkthrough all need the same stack, configured the
way an operator would: an APIC (``apic_mock`` with its demo fabric: leaves 101 and 102 with ports
``eth1/1..48``) holding a physical domain; ``aci-gw`` pointed at it with Contiv's environment
(``APIC_LEAF_NODE`` naming the leaf the hosts are cabled to, ``APIC_PHYS_DOMAIN``); netmaster on a
SQLite file with ``--infra aci``, its ``aciGw`` object naming the same node binding and domain, so
every EPG is bound to the leaf and classified by its VLAN on any of the leaf's ports::

    with AciControlPlane(Path("/tmp/run")) as cp:     # or cp.start() ... cp.stop()
        cp.api.tenant("blue"); cp.api.network("blue", "net", "10.1.1.0/24", "10.1.1.254")
        vlan = cp.api.group("blue", "web")            # the EPG's VLAN
        cp.api.profile("blue", "app", "web"); cp.api.wait_synced("blue:app")
        cp.gw_endpoint("blue", "app", "web", mac)     # aci-gw /getEndpoint: what the fabric learnt

The hosts and the leaf come on top (``tests/aci_e2e``: simulated hosts whose trunks are leaf ports).
netmaster listens on ``netmaster_host`` so agents in other network namespaces reach it; restarting
netmaster or aci-gw keeps their ports (and netmaster its state), for outage scenarios.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from testbed.aci_gw import AciGwProcess, apic_env
from testbed.apic import ApicMock, flatten_subtree
from testbed.netmaster import NetmasterProcess
from testbed.ports import free_port
from testbed.waiting import eventually

PHYS_DOMAIN = "contiv-phys"
LEAF_NODE_ID = 101
LEAF_NODE = f"topology/pod-1/node-{LEAF_NODE_ID}"


class AciApi:
    """netmaster's REST API for the ACI workflow: objects by name, push state, and errors that say which call."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.method} {response.request.url}: "
                               f"{response.status_code} {response.text}")
        return response.json()

    def put(self, plural: str, key: str, **body: Any) -> Any:
        return self._ok(self.http.post(f"/api/v1/{plural}/{quote(key, safe=':')}/", json=body))

    def delete(self, plural: str, key: str) -> Any:
        return self._ok(self.http.delete(f"/api/v1/{plural}/{quote(key, safe=':')}/"))

    def get(self, path: str) -> Any:
        return self._ok(self.http.get(path))

    def inspect(self, plural: str, key: str) -> dict[str, Any]:
        return self.get(f"/api/v1/inspect/{plural}/{quote(key, safe=':')}/")

    def tenant(self, name: str) -> None:
        self.put("tenants", name, tenantName=name)

    def network(self, tenant: str, name: str, subnet: str, gateway: str) -> None:
        self.put("networks", f"{tenant}:{name}", tenantName=tenant, networkName=name, encap="vlan",
                 subnet=subnet, gateway=gateway)

    def group(self, tenant: str, name: str, network: str = "net", policies: tuple[str, ...] = ()) -> int:
        """Create (or update) an EPG; returns its VLAN."""
        self.put("endpointGroups", f"{tenant}:{name}", tenantName=tenant, groupName=name, networkName=network,
                 policies=list(policies))
        return int(self.inspect("endpointGroups", f"{tenant}:{name}")["Oper"]["pktTag"])

    def policy(self, tenant: str, name: str) -> None:
        self.put("policys", f"{tenant}:{name}", tenantName=tenant, policyName=name)

    def rule(self, tenant: str, policy: str, rule_id: str, **kw: Any) -> None:
        body = {"direction": "in", "action": "allow", **kw}
        self.put("rules", f"{tenant}:{policy}:{rule_id}", tenantName=tenant, policyName=policy, ruleId=rule_id,
                 **body)

    def profile(self, tenant: str, name: str, *groups: str) -> str:
        key = f"{tenant}:{name}"
        self.put("appProfiles", key, tenantName=tenant, appProfileName=name, endpointGroups=list(groups))
        return key

    def sync_state(self, profile_key: str) -> dict[str, Any]:
        return self.inspect("appProfiles", profile_key)["Oper"].get("aciSync", {})

    def wait_synced(self, profile_key: str, timeout: float = 30.0) -> dict[str, Any]:
        """The profile's push state once the APIC holds the profile's current content."""

        def probe() -> dict[str, Any] | None:
            state = self.sync_state(profile_key)
            done = state.get("state") == "synced" and state.get("syncedHash") == state.get("payloadHash")
            return state if done else None

        return eventually(probe, timeout, f"app profile {profile_key} synced to the APIC")

    def close(self) -> None:
        self.http.close()


class AciControlPlane:
    """apic_mock + aci-gw + netmaster (ACI mode) for one run; everything under ``workdir``."""

    def __init__(self, workdir: Path, *, netmaster_host: str = "127.0.0.1", netmaster_port: int = 0,
                 leaf_node: str = LEAF_NODE, phys_domain: str = PHYS_DOMAIN, retry_max: float = 2.0,
                 apic_process: bool = False) -> None:
        """*apic_process*: run apic_mock as its own process (it then outlives this one: the demo's ``--keep``)
        instead of a thread of this process."""
        self.workdir = Path(workdir)
        self.apic_process = apic_process
        self.netmaster_host = netmaster_host
        self.leaf_node = leaf_node
        self.phys_domain = phys_domain
        self.retry_max = retry_max
        self.apic: ApicMock | None = None
        self.gw: AciGwProcess | None = None
        self.netmaster: NetmasterProcess | None = None
        self.nm_port = netmaster_port  # 0: a free one
        self._api: AciApi | None = None

    @property
    def api(self) -> AciApi:
        assert self._api is not None, "start() first"
        return self._api

    @property
    def netmaster_url(self) -> str:
        return f"http://{self.netmaster_host}:{self.nm_port}"

    def start(self) -> AciControlPlane:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.apic = ApicMock.start(subprocess=self.apic_process)
            with self.apic.client() as apic:
                resp = apic.post("/api/mo/uni.json", json={"physDomP": {"attributes": {"name": self.phys_domain}}})
                resp.raise_for_status()
            env = apic_env(self.apic, APIC_LEAF_NODE=self.leaf_node, APIC_PHYS_DOMAIN=self.phys_domain,
                           LOG_LEVEL="INFO")
            self.gw = AciGwProcess.spawn(env, log_path=self.workdir / "aci-gw.log")
            self.nm_port = self.nm_port or free_port(self.netmaster_host)
            self.start_netmaster()
            self.api.put("aciGws", "aciGw", name="aciGw", physicalDomain=self.phys_domain,
                         nodeBindings=self.leaf_node, enforcePolicies="yes", includeCommonTenant="no")
        except BaseException:
            self.stop()
            raise
        return self

    def start_netmaster(self) -> None:
        args = ["--infra", "aci", "--aci-gw-url", self.gw.url if self.gw else "",
                "--aci-retry-max", str(self.retry_max), "--aci-tenant-sync-interval", "2", "--log-format", "text"]
        self.netmaster = NetmasterProcess.spawn(f"sqlite:///{self.workdir}/netmaster.db", host=self.netmaster_host,
                                                port=self.nm_port, args=args,
                                                log_path=self.workdir / "netmaster.log")
        if self._api is None:
            self._api = AciApi(self.netmaster_url)

    def stop_netmaster(self) -> None:
        if self.netmaster is not None:
            self.netmaster.stop()
            self.netmaster = None

    def restart_netmaster(self) -> None:
        self.stop_netmaster()
        self.start_netmaster()

    def pids(self) -> list[int]:
        """Child processes (for a cleanup record)."""
        procs = [self.netmaster.process if self.netmaster else None, self.gw.process if self.gw else None,
                 self.apic.process if self.apic else None]
        return [p.pid for p in procs if p is not None]

    def stop(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
        self.stop_netmaster()
        if self.gw is not None:
            self.gw.stop()
            self.gw = None
        if self.apic is not None:
            self.apic.stop()
            self.apic = None

    def __enter__(self) -> AciControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the APIC and the gateway say --------------------------------------------------------

    def apic_tree(self, dn: str) -> dict[str, tuple[str, dict[str, str]]]:
        """Every object under ``dn`` (included) as ``{dn: (class, attributes)}``; empty when absent."""
        assert self.apic is not None
        with self.apic.client() as apic:
            resp = apic.get(f"/api/mo/{dn}.json", params={"rsp-subtree": "full"})
        resp.raise_for_status()
        return flatten_subtree(resp.json()["imdata"])

    def gw_endpoint(self, tenant: str, app: str, epg: str, mac: str) -> dict[str, Any]:
        """aci-gw's ``/getEndpoint`` (Contiv's API): the IP and VLAN the fabric learnt for *mac* in an EPG."""
        assert self.gw is not None
        body = {"tenant": tenant, "app-prof": app, "epg": epg, "epmac": mac}
        resp = httpx.post(self.gw.url + "/getEndpoint", json=body, timeout=10)
        resp.raise_for_status()
        return resp.json()
