"""Benchmark, ACI mode end to end: a rule on netmaster -> the APIC (part 1) -> the fabric enforcing it (part 2).

Part 1, from a rule created on netmaster to its filter entry in the APIC.

Three real processes on this machine: ``apic-mock`` (HTTPS), ``aci-gw`` and ``netmaster`` (SQLite, ACI
mode). An app profile of N groups (one "client", the others servers carrying one policy) is pushed
first; then, one at a time, a rule ``in allow tcp <port> from client`` is POSTed to netmaster and the
APIC is polled (every 5 ms, as its administrator would read it) until the filter entry exists; then
the rule is deleted and the APIC polled until the entry is gone. The time covers netmaster's commit,
the reconciler's debounce (50 ms) and payload build, the push through aci-gw (one APIC read of the
tenant, one POST of the difference) and the APIC applying it.

    python bench/aci_e2e.py [--part 1,2] [--rules 50] [--groups 2,50] [--fabric-rules 20] [--starts 10]

Part 2, through the fabric (root: the whole stack of ``tests.cluster.aci.AciCluster``: apic_mock, aci-gw,
netmaster, two simulated hosts with agents, the simulated leaf 101 polling and subscribed to the APIC):

- rule -> enforced: container ``c`` (EPG client, host h1) and ``s`` (EPG srv, host h2, listening on every
  measured port); one at a time, a rule ``in allow tcp <port> from client`` is POSTed to netmaster while a
  prober inside ``c`` tries to connect to ``s:<port>`` every ~60 ms (50 ms connect timeout: a SYN the leaf
  drops times out). The figure is POST -> first established connection: netmaster, the push through
  aci-gw, the APIC, the leaf's read of the APIC and its flow update. A port open at the first try is
  reported (it would mean the rule was not needed).
- container start -> first packet: a new container of EPG client on h1 is added through its agent's
  endpoint API (what a CNI ADD does) and pings a peer of the same EPG on h2 (``ping -W 0.2`` in a loop);
  the figure is the add request -> the first echo reply (the agent's work, the gratuitous ARPs, the leaf
  learning the endpoint). The agent's share (the add call returning) is printed as well.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aci_gw.testing import AciGwProcess, apic_env  # noqa: E402
from apic_mock.testing import ApicMock  # noqa: E402
from netmaster.testing import NetmasterProcess  # noqa: E402
from tests.agent_sync.sync_cluster import add_endpoint, delete_endpoint  # noqa: E402
from tests.cluster.aci import AciCluster  # noqa: E402

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


def part1(args: argparse.Namespace) -> None:
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


# Part 2 ------------------------------------------------------------------------------------------------
# Inside the client container: for each "ip port" line, connect every ~60 ms until it succeeds; print the
# success time (CLOCK_MONOTONIC: one clock for every namespace) and the number of tries.
PROBE = """
import socket, sys, time
for line in sys.stdin:
    ip, port = line.split()
    tries, deadline = 0, time.monotonic() + 60
    while time.monotonic() < deadline:
        tries += 1
        try:
            socket.create_connection((ip, int(port)), timeout=0.05).close()
            break
        except OSError:
            time.sleep(0.01)
    print(time.monotonic() if time.monotonic() < deadline else "timeout", tries, flush=True)
"""
# Inside the server container: accept (and close) on every port given.
SERVE = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port)))
    s.listen(64)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        key.fileobj.accept()[0].close()
"""


def part2(rules: int, starts: int) -> None:
    tenant, ports = "fab", [10000 + i for i in range(rules)]
    cluster = AciCluster(n_hosts=2, leaf=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        cluster.up()
        assert cluster.control is not None
        assert cluster.leaf is not None
        api, leaf = cluster.control.api, cluster.leaf
        api.tenant(tenant)
        api.network(tenant, "net", "10.42.0.0/16", "10.42.255.254")
        api.policy(tenant, "p")
        api.group(tenant, "client")
        api.rule(tenant, "p", "keep", protocol="tcp", port=9, fromEndpointGroup="client")  # the contract exists
        api.group(tenant, "srv", policies=("p",))
        profile = api.profile(tenant, "app", "client", "srv")
        api.wait_synced(profile)
        leaf.wait_synced()

        def start(name: str, host: int, group: str) -> tuple[str, dict, float]:
            ns = cluster.container(name)
            started = time.monotonic()
            status, body = add_endpoint(cluster.hosts[host], endpoint_id=f"{tenant}-{name}", tenant=tenant,
                                        network="net", group=group, netns=ns)
            if status != 200:
                raise RuntimeError(f"endpoint {name}: {status} {body}")
            return ns, body, time.monotonic() - started

        c_ns, _, _ = start("c", 0, "client")
        _, s_ep, _ = start("s", 1, "srv")
        _, peer, _ = start("peer", 1, "client")
        serve = subprocess.Popen(["ip", "netns", "exec", f"{cluster.prefix}cs", sys.executable, "-c", SERVE,
                                  *map(str, ports)], stdout=subprocess.PIPE, text=True)
        probe = subprocess.Popen(["ip", "netns", "exec", c_ns, sys.executable, "-c", PROBE],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs += [serve, probe]
        cluster.pids += [serve.pid, probe.pid]
        assert serve.stdout is not None
        assert probe.stdin is not None
        assert probe.stdout is not None
        if serve.stdout.readline().strip() != "ready":
            raise RuntimeError("the TCP server in s did not start")

        enforced, open_already = [], 0
        for i, port in enumerate(ports):
            probe.stdin.write(f"{s_ep['ip']} {port}\n")
            probe.stdin.flush()
            started = time.monotonic()
            api.rule(tenant, "p", f"r{i}", protocol="tcp", port=port, fromEndpointGroup="client")
            at, tries = probe.stdout.readline().split()
            if at == "timeout":
                raise RuntimeError(f"tcp {port} still blocked 60 s after its rule")
            open_already += tries == "1"
            enforced.append(float(at) - started)

        added, first_packet = [], []
        for i in range(starts):
            ns, _, add_time = start(f"n{i}", 0, "client")
            started = time.monotonic() - add_time
            deadline = time.monotonic() + 30
            while subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "0.2", peer["ip"]],
                                 capture_output=True).returncode:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"n{i} cannot reach its peer 30 s after its start")
            first_packet.append(time.monotonic() - started)
            added.append(add_time)
            delete_endpoint(cluster.hosts[0], f"{tenant}-n{i}")
            cluster.remove_container(ns)

        print(f"rule on netmaster -> enforced by the simulated leaf (apic-mock, aci-gw, netmaster, 2 hosts with "
              f"agents, leaf polling every 0.3 s + subscribed; {rules} rules on distinct ports, h1 -> h2)")
        print(summary("rule created -> first connection", enforced))
        if open_already:
            print(f"  ({open_already} port(s) connected at the first try: open before their rule)")
        print(f"container start -> first packet through the fabric ({starts} containers on h1, ping a peer on h2)")
        print(summary("add through the agent", added))
        print(summary("start -> first echo reply", first_packet))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        cluster.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", default="1,2", help="which parts, comma-separated (default 1,2; part 2 needs root)")
    parser.add_argument("--rules", type=int, default=50, help="part 1: rules per profile size (default 50)")
    parser.add_argument("--groups", default="2,50", help="part 1: profile sizes in EPGs (default 2,50)")
    parser.add_argument("--fabric-rules", type=int, default=20, help="part 2: rules on distinct ports (default 20)")
    parser.add_argument("--starts", type=int, default=10, help="part 2: containers started (default 10)")
    args = parser.parse_args()
    parts = set(args.part.split(","))
    if "1" in parts:
        part1(args)
    if "2" in parts:
        part2(args.fabric_rules, args.starts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
