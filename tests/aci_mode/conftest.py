"""ACI mode end to end with real processes: apic_mock (HTTPS), an ``aci-gw`` process, a ``netmaster``
process in ACI mode pointed at it. One stack per module; each test works in a tenant of its own.

Helpers read the APIC as an operator would (a tenant's subtree, flattened by DN) and wait for
convergence with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from testbed.aci_gw import AciGwProcess, apic_env
from testbed.apic import Apic, ApicMock
from testbed.netmaster import NetmasterProcess
from testbed.waiting import eventually

PHYS_DOMAIN = "contiv-phys"
NODE = "topology/pod-1/node-101"
PATH = "topology/pod-1/paths-102/pathep-[eth1/5]"
ACI_GW = {
    "name": "aciGw",
    "physicalDomain": PHYS_DOMAIN,
    "nodeBindings": NODE,
    "pathBindings": PATH,
    "enforcePolicies": "yes",
    "includeCommonTenant": "no",
}
_names = itertools.count(1)


class Netmaster:
    """netmaster's REST API as tests use it."""

    def __init__(self, process: NetmasterProcess) -> None:
        self.process = process
        self.url = process.url
        self.http = httpx.Client(base_url=process.url, timeout=30)

    def post(self, plural: str, key: str, **body: Any) -> httpx.Response:
        return self.http.post(f"/api/v1/{plural}/{quote(key, safe=':')}/", json=body)

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, response.text
        return response.json()

    def put(self, plural: str, key: str, **body: Any) -> Any:
        return self.ok(self.post(plural, key, **body))

    def delete(self, plural: str, key: str) -> Any:
        return self.ok(self.http.delete(f"/api/v1/{plural}/{key}/"))

    def inspect(self, plural: str, key: str) -> dict[str, Any]:
        return self.ok(self.http.get(f"/api/v1/inspect/{plural}/{key}/"))

    def sync(self, profile_key: str) -> dict[str, Any]:
        return self.inspect("appProfiles", profile_key)["Oper"].get("aciSync", {})

    # Objects of a typical test, in a tenant of its own -----------------------------------------------

    def tenant(self) -> str:
        name = f"aci{next(_names)}"
        self.put("tenants", name, tenantName=name)
        return name

    def network(self, tenant: str, name: str = "net", subnet: str = "10.1.1.0/24", gateway: str = "10.1.1.1") -> None:
        self.put(
            "networks",
            f"{tenant}:{name}",
            tenantName=tenant,
            networkName=name,
            encap="vlan",
            subnet=subnet,
            gateway=gateway,
        )

    def group(self, tenant: str, name: str, network: str = "net", **kw: Any) -> int:
        self.put("endpointGroups", f"{tenant}:{name}", tenantName=tenant, groupName=name, networkName=network, **kw)
        return self.inspect("endpointGroups", f"{tenant}:{name}")["Oper"]["pktTag"]

    def rule(self, tenant: str, policy: str, rule_id: str, **kw: Any) -> None:
        body = {"direction": "in", "action": "allow", **kw}
        self.put("rules", f"{tenant}:{policy}:{rule_id}", tenantName=tenant, policyName=policy, ruleId=rule_id, **body)

    def profile(self, tenant: str, name: str, *groups: str) -> str:
        key = f"{tenant}:{name}"
        self.put("appProfiles", key, tenantName=tenant, appProfileName=name, endpointGroups=list(groups))
        return key

    def wait_synced(self, profile_key: str, timeout: float = 20.0) -> dict[str, Any]:
        """The profile's push state once it is ``synced`` for the profile's current content."""

        def probe() -> dict[str, Any] | None:
            state = self.sync(profile_key)
            return (
                state
                if state.get("state") == "synced" and state.get("syncedHash") == state.get("payloadHash")
                else None
            )

        return eventually(probe, timeout, f"{profile_key} synced")


@dataclass
class Stack:
    apic: Apic
    gw: AciGwProcess
    nm: Netmaster
    logs: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("aci-mode")
    with ApicMock.start() as mock:
        apic = Apic(mock)
        apic.post("uni", {"physDomP": {"attributes": {"name": PHYS_DOMAIN}}})
        with AciGwProcess.start(apic_env(mock), log_path=logs / "aci-gw.log") as gw:
            args = [
                "--infra",
                "aci",
                "--aci-gw-url",
                gw.url,
                "--aci-tenant-sync-interval",
                "0.5",
                "--aci-retry-max",
                "1",
                "--log-format",
                "text",
            ]
            with NetmasterProcess.start("memory://", args=args, log_path=logs / "netmaster.log") as nm:
                api = Netmaster(nm)
                api.put("aciGws", "aciGw", **ACI_GW)
                yield Stack(apic, gw, api, logs)
                api.http.close()
        apic.http.close()
