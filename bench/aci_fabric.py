"""Benchmark, ACI mode end to end, part 2: through the simulated leaf, with packets.

The whole stack of ``testbed/cluster/aci.py``: apic_mock, aci-gw, netmaster ``--infra aci``, two
simulated hosts with agents, and a simulated leaf with the hosts' trunks on its ports. Two figures:

- **rule to enforcement**: a container of EPG ``a`` on host 1 probes a TCP port of a container of EPG
  ``b`` on host 2 (a connect attempt every 5 ms); the time runs from POSTing ``in allow tcp <port>
  from a`` on netmaster until the first connection succeeds, i.e. netmaster, the ACI reconciler,
  aci-gw, the APIC, the leaf's next poll and its flows. Each rule is deleted (untimed, converged)
  before the next.
- **container start to first packet**: a new container of EPG ``a`` on host 1 connects to a same-EPG
  container on host 2 as soon as the agent's endpoint add call returned (as a runtime starts the
  container's process after CNI ADD); the time runs from the add call until the first connection
  through the leaf succeeds (netmaster's endpoint create, plumbing, flows, the gratuitous ARP, ARP
  resolution, the leaf forwarding). Each container is deleted (untimed) before the next. The add
  call's own duration is printed too. (A process that sends before ADD returned would wait for the
  kernel's ARP retry, 1 s, since its first ARP can precede the flows.)

Probe and clock: the probes run inside the container namespaces and report CLOCK_MONOTONIC, which
all namespaces share with this process. Prints figures; asserts nothing about time.

    python bench/aci_fabric.py [--rules 20] [--containers 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed.cluster.aci import AciCluster  # noqa: E402
from testbed.sync_cluster import add_endpoint, delete_endpoint  # noqa: E402

TENANT = "bench"
BASE_PORT = 20000

# Accepts and closes on every port given, forever.
SERVER = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64); s.setblocking(False); sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        c, _ = key.fileobj.accept(); c.close()
"""

# For each "host port" line on stdin: connect every 5 ms (100 ms timeout) until one succeeds, then
# print the CLOCK_MONOTONIC time of that success.
PROBE = """
import socket, sys, time
print("ready", flush=True)
for line in sys.stdin:
    host, port = line.split()
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.005)
    print(time.monotonic(), flush=True)
"""


def _spawn(ns: str, script: str, *args: str) -> subprocess.Popen[str]:
    """Run *script* in namespace *ns* and wait for its "ready" line."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", script, *args], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{ns}: helper process did not start")
    return proc


def _probe_line(probe: subprocess.Popen[str], host: str, port: int) -> None:
    assert probe.stdin is not None
    probe.stdin.write(f"{host} {port}\n")
    probe.stdin.flush()


def _probe_result(probe: subprocess.Popen[str]) -> float:
    assert probe.stdout is not None
    return float(probe.stdout.readline())


def _add(cluster: AciCluster, host: int, name: str, group: str) -> tuple[str, dict]:
    ns = cluster.container(name)
    status, body = add_endpoint(cluster.hosts[host], endpoint_id=name, tenant=TENANT, network="net", group=group,
                                netns=ns)
    if status != 200:
        raise RuntimeError(f"endpoint {name}: {body}")
    return ns, body


def run(rules: int, containers: int) -> tuple[list[float], list[float], list[float]]:
    cluster = AciCluster(n_hosts=2, leaf=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        cluster.up()
        assert cluster.control is not None
        assert cluster.leaf is not None
        api = cluster.control.api
        api.tenant(TENANT)
        api.network(TENANT, "net", "10.43.0.0/24", "10.43.0.254")
        api.policy(TENANT, "p")
        api.group(TENANT, "a")
        api.group(TENANT, "b", policies=("p",))
        profile = api.profile(TENANT, "app", "a", "b")
        api.wait_synced(profile)
        cluster.leaf.wait_synced()
        client_ns, _ = _add(cluster, 0, "client", "a")
        server_ns, server = _add(cluster, 1, "server", "b")
        peer_ns, peer = _add(cluster, 1, "peer", "a")
        ports = [str(BASE_PORT + i) for i in range(rules)]
        for ns, listen in ((server_ns, ports), (peer_ns, [str(BASE_PORT)])):
            procs.append(_spawn(ns, SERVER, *listen))
        probe = _spawn(client_ns, PROBE)
        procs.append(probe)

        rule_times = []
        for i in range(rules):
            port = BASE_PORT + i
            started = time.monotonic()
            api.rule(TENANT, "p", f"r{i}", protocol="tcp", port=port, fromEndpointGroup="a")
            _probe_line(probe, server["ip"], port)
            rule_times.append(_probe_result(probe) - started)
            api.delete("rules", f"{TENANT}:p:r{i}")
            api.wait_synced(profile)
            cluster.leaf.wait_synced()

        start_times, add_times = [], []
        for i in range(containers):
            name = f"new{i}"
            ns = cluster.container(name)
            first = _spawn(ns, PROBE)
            procs.append(first)
            started = time.monotonic()
            status, body = add_endpoint(cluster.hosts[0], endpoint_id=name, tenant=TENANT, network="net",
                                        group="a", netns=ns)
            if status != 200:
                raise RuntimeError(f"endpoint {name}: {body}")
            add_times.append(time.monotonic() - started)
            _probe_line(first, peer["ip"], BASE_PORT)  # the container's process starts once the add returned
            start_times.append(_probe_result(first) - started)
            first.kill()
            delete_endpoint(cluster.hosts[0], name)
            cluster.remove_container(ns)
        return rule_times, start_times, add_times
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        cluster.down()


def summary(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return f"{label:<46} n={len(ms):<3} p50 {statistics.median(ms):7.1f} ms   p99 {p99:7.1f} ms   max {ms[-1]:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=20, help="rules measured (default 20)")
    parser.add_argument("--containers", type=int, default=10, help="containers measured (default 10)")
    args = parser.parse_args()
    if args.rules < 1 or args.containers < 1:
        parser.error("--rules and --containers must be at least 1")
    if os.geteuid() != 0 or shutil.which("ovs-vswitchd") is None:
        print("skipping: needs root and Open vSwitch")
        return 0
    rule_times, start_times, add_times = run(args.rules, args.containers)
    print("ACI stack with a simulated leaf (apic_mock, aci-gw, netmaster --infra aci, 2 hosts; leaf: APIC events, "
          "0.3 s poll)")
    print(summary("rule created on netmaster -> leaf enforcing it", rule_times))
    print(summary("container add -> first packet through the fabric", start_times))
    print(summary("  of which the endpoint add call", add_times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
