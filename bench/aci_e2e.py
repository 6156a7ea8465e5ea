"""Benchmark, ACI mode end to end, part 1: from a rule created on netmaster to its filter entry in the APIC.

Three real processes on this machine: ``apic-mock`` (HTTPS), ``aci-gw`` and ``netmaster`` (SQLite, ACI
mode). An app profile of N groups (one "client", the others servers carrying one policy) is pushed
first; then, one at a time, a rule ``in allow tcp <port> from client`` is POSTed to netmaster and the
APIC is polled (every 5 ms, as its administrator would read it) until the filter entry exists; then
the rule is deleted and the APIC polled until the entry is gone. The time covers netmaster's commit,
the reconciler's debounce (50 ms) and payload build, the push through aci-gw (one APIC read of the
tenant, one POST of the difference) and the APIC applying it.

    python bench/aci_e2e.py [--rules 50] [--groups 2,50]

Part 2, through the simulated leaf with packets (rule to enforcement, container start to first packet),
is ``bench/aci_fabric.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed.aci_gw import AciGwProcess, apic_env  # noqa: E402
from testbed.apic import ApicMock  # noqa: E402
from testbed.netmaster import NetmasterProcess  # noqa: E402

PHYS = "contiv-phys"
POLL = 0.005


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Bench:
    def __init__(self, nm_url: str, apic: ApicMock) -> None:
        self.nm = httpx.Client(base_url=nm_url, timeout=30)
        self.apic = apic.client()

    def put(self, plural: str, key: str, **body: object) -> None:
        response = self.nm.post(f"/api/v1/{plural}/{key}/", json=body)
        response.raise_for_status()

    def exists(self, dn: str) -> bool:
        response = self.apic.get(f"/api/mo/{dn}.json")
        response.raise_for_status()
        return bool(response.json()["imdata"])

    def wait(self, dn: str, present: bool, timeout: float = 30.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.exists(dn) == present:
                return time.perf_counter()
            time.sleep(POLL)
        raise TimeoutError(f"{dn} {'absent' if present else 'still present'} after {timeout}s")

    def setup(self, tenant: str, groups: int) -> None:
        self.put("tenants", tenant, tenantName=tenant)
        self.put(
            "networks",
            f"{tenant}:net",
            tenantName=tenant,
            networkName="net",
            encap="vlan",
            subnet="10.1.0.0/16",
            gateway="10.1.0.1",
        )
        self.put("policys", f"{tenant}:p", tenantName=tenant, policyName="p")
        self.put("endpointGroups", f"{tenant}:client", tenantName=tenant, groupName="client", networkName="net")
        names = ["client"]
        for i in range(groups - 1):
            name = f"srv{i}"
            self.put(
                "endpointGroups",
                f"{tenant}:{name}",
                tenantName=tenant,
                groupName=name,
                networkName="net",
                policies=["p"],
            )
            names.append(name)
        self.put("appProfiles", f"{tenant}:app", tenantName=tenant, appProfileName="app", endpointGroups=names)
        self.wait(f"uni/tn-{tenant}/ap-app/epg-{names[-1]}", True)

    def round(self, tenant: str, rules: int) -> tuple[list[float], list[float]]:
        add, remove = [], []
        for i in range(rules):
            port = 10000 + i
            key = f"{tenant}:p:r{i}"
            dn = f"uni/tn-{tenant}/flt-filt-pFrmclient/e-entry-ip-tcp-{port}"
            started = time.perf_counter()
            self.put(
                "rules",
                key,
                tenantName=tenant,
                policyName="p",
                ruleId=f"r{i}",
                direction="in",
                action="allow",
                fromEndpointGroup="client",
                protocol="tcp",
                port=port,
            )
            add.append(self.wait(dn, True) - started)
            started = time.perf_counter()
            self.nm.delete(f"/api/v1/rules/{key}/").raise_for_status()
            remove.append(self.wait(dn, False) - started)
            # Keep one rule so the contract (and its filter) stays: the next round measures an entry change.
            if i == 0:
                self.put(
                    "rules",
                    f"{tenant}:p:keep",
                    tenantName=tenant,
                    policyName="p",
                    ruleId="keep",
                    direction="in",
                    action="allow",
                    fromEndpointGroup="client",
                    protocol="tcp",
                    port=9,
                )
                self.wait(f"uni/tn-{tenant}/flt-filt-pFrmclient/e-entry-ip-tcp-9", True)
        return add, remove


def summary(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{label:<34} n={len(ms):<4} p50 {statistics.median(ms):7.1f} ms   p90 {percentile(ms, 90):7.1f} ms   "
        f"p99 {percentile(ms, 99):7.1f} ms   max {max(ms):7.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=50, help="rules per profile size (default 50)")
    parser.add_argument("--groups", default="2,50", help="profile sizes in EPGs, comma-separated (default 2,50)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="aci-e2e-"))
    with ApicMock.start(subprocess=True) as apic:
        setup = apic.client()
        setup.post("/api/mo/uni.json", json={"physDomP": {"attributes": {"name": PHYS}}}).raise_for_status()
        with AciGwProcess.start(apic_env(apic), log_path=workdir / "aci-gw.log") as gw:
            nm_args = ["--infra", "aci", "--aci-gw-url", gw.url, "--log-level", "warning"]
            store = f"sqlite:///{workdir / 'netmaster.db'}"
            with NetmasterProcess.start(store, args=nm_args, log_path=workdir / "netmaster.log") as nm:
                bench = Bench(nm.url, apic)
                bench.put(
                    "aciGws",
                    "aciGw",
                    name="aciGw",
                    physicalDomain=PHYS,
                    nodeBindings="topology/pod-1/node-101",
                    pathBindings="",
                    enforcePolicies="yes",
                    includeCommonTenant="no",
                )
                print(
                    f"rule on netmaster -> filter entry in the APIC (apic-mock over HTTPS, aci-gw, netmaster on "
                    f"SQLite; {args.rules} rules per row; logs in {workdir})"
                )
                for groups in (int(g) for g in args.groups.split(",")):
                    tenant = f"bench{groups}"
                    bench.setup(tenant, groups)
                    add, remove = bench.round(tenant, args.rules)
                    print(summary(f"{groups} EPGs: rule created -> entry", add))
                    print(summary(f"{groups} EPGs: rule deleted -> entry gone", remove))
        setup.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
