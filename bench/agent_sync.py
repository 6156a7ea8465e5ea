"""Rule created on netmaster -> its flows on two hosts, through the real netmaster watch stream.

    python bench/agent_sync.py [--iterations 50]

A two-host simulated cluster (real netmaster on SQLite, agents following it with list+watch, two
endpoints per host added through the agents' EndpointOps) gets one new allow rule per iteration via
netmaster's REST API. The time measured runs from sending the POST until both agents report a state
at least as new as the write's revision applied: applying means the flows were sent in a bundle,
committed and the barrier answered, so they are in the switch. Each new rule's flow is then checked
on both switches with ovs-ofctl (not timed). The previous rule is deleted between iterations (not
timed, and applied before the next rule is sent), so the pipeline stays the same size. Prints
figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testbed.cluster import SimHost  # noqa: E402
from testbed.sync_cluster import Netmaster, SyncCluster, add_endpoint  # noqa: E402


def _applied(host: SimHost) -> int:
    return int(host.get("/inspect/driver")[1]["revision"])


def _wait_applied(hosts: list[SimHost], revision: int) -> None:
    pending = list(hosts)
    while pending:
        pending = [h for h in pending if _applied(h) < revision]


def rule_to_flows(iterations: int) -> list[float]:
    cluster = SyncCluster(n_hosts=2)
    try:
        cluster.up()
        assert cluster.netmaster is not None
        nm = Netmaster(cluster.netmaster.url)
        nm.tenant_with_network("t", "vxlan", "10.90.0.0/24")
        nm.post("policys", "t:p", tenantName="t", policyName="p")
        nm.post("endpointGroups", "t:g", tenantName="t", groupName="g", networkName="net", policies=["p"])
        nm.post("rules", "t:p:base", tenantName="t", policyName="p", ruleId="base", direction="in",
                action="deny", protocol="tcp", priority=1)
        for i, host in enumerate(cluster.hosts * 2):
            status, body = add_endpoint(host, endpoint_id=f"e{i}", tenant="t", network="net", group="g",
                                        netns=cluster.container(f"e{i}"))
            assert status == 200, body
        samples = []
        for i in range(iterations):
            if i:
                _wait_applied(cluster.hosts, nm.delete("rules", f"t:p:r{i - 1}"))
            started = time.perf_counter()
            revision = nm.post("rules", f"t:p:r{i}", tenantName="t", policyName="p", ruleId=f"r{i}",
                               direction="in", action="allow", protocol="tcp", port=1000 + i, priority=10)
            _wait_applied(cluster.hosts, revision)
            samples.append(time.perf_counter() - started)
            for host in cluster.hosts:
                flows = host.ovs.run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", host.bridge,
                                     f"tcp,tp_dst={1000 + i}")
                assert "tp_dst" in flows, f"{host.name}: rule r{i} flow missing"
        return samples
    finally:
        cluster.down()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=50)
    args = p.parse_args()
    if os.geteuid() != 0 or shutil.which("ovs-vswitchd") is None:
        print("skipping: needs root and Open vSwitch")
        return 0
    samples = rule_to_flows(args.iterations)
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    print(f"rule created on netmaster -> flows on 2 hosts ({len(samples)} rules): "
          f"p50 {statistics.median(samples) * 1000:.1f} ms, p99 {qs[98] * 1000:.1f} ms, "
          f"max {max(samples) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
