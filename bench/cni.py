"""CNI benchmark: ADD and DEL latency of the ``contiv`` plugin next to Debian's ``bridge`` + ``host-local``.

Both plugins are driven the same way, in the same run: a fresh process per call (as a runtime does),
environment plus stdin, started with ``nsenter --net`` inside one simulated host (its own userspace
OVS, a real agent following a real netmaster), a 1.0.0 configuration (the newest version Debian's
plugins speak), one fresh network namespace per container. Measured: sequential calls, then rounds
of ``--parallel`` concurrent calls; p50/p99 per phase, the ratio of ours to the reference, and
whether every call succeeded. Then the CPU time one sequential ADD costs each process of the host
(the agent, netmaster, ovs-vswitchd, ovsdb-server, and the plugin processes with ``nsenter``; from
/proc and the bench's own child rusage, 10 ms ticks over the sequential phase): on a machine with
few cores the processes compete, and latency follows the sum.

    python bench/cni.py [--sequential 40] [--parallel 20] [--rounds 3]   (root)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.cni.install import install  # noqa: E402
from testbed.cluster import sh  # noqa: E402
from testbed.fe_cluster import FeCluster  # noqa: E402
from testbed.sync_cluster import Netmaster, wait_revision  # noqa: E402

REFERENCE_DIR = Path("/usr/lib/cni")


class Driver:
    """Runs one plugin binary in the host's namespace, the way a runtime would."""

    def __init__(self, name: str, binary: Path, conf: dict[str, Any], host_netns: str, cni_path: str) -> None:
        self.name, self.binary, self.conf = name, binary, conf
        self.host_netns, self.cni_path = host_netns, cni_path

    def call(self, command: str, container: str) -> tuple[float, bool, str]:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": f"/run/netns/{container}",
               "CNI_IFNAME": "eth0", "CNI_PATH": self.cni_path, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        started = time.perf_counter()
        proc = subprocess.run(["nsenter", f"--net=/run/netns/{self.host_netns}", str(self.binary)],
                              input=json.dumps(self.conf), env=env, capture_output=True, text=True, timeout=120)
        return time.perf_counter() - started, proc.returncode == 0, proc.stdout[-300:] + proc.stderr[-300:]


class CpuMeter:
    """CPU seconds spent so far by the host's long-running processes and by this bench's children
    (the plugin processes and ``nsenter``)."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes

    @staticmethod
    def _seconds(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def read(self) -> dict[str, float]:
        out = {name: self._seconds(pid) for name, pid in self.processes.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["plugin + nsenter"] = children.ru_utime + children.ru_stime
        return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(driver: Driver, prefix: str, sequential: int, parallel: int, rounds: int,
            cpu: CpuMeter) -> dict[str, Any]:
    out: dict[str, Any] = {"failures": []}

    def batch(command: str, names: list[str], workers: int) -> list[float]:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda n: driver.call(command, n), names))
        out["failures"] += [f"{command} {n}: {why}" for n, (_, ok, why) in zip(names, results, strict=True) if not ok]
        return [t for t, _, _ in results]

    names = [f"{prefix}{driver.name[:2]}{i}" for i in range(max(sequential, parallel))]
    for n in names:
        sh("ip", "netns", "add", n)
    try:
        seq = names[:sequential]
        before = cpu.read()
        out["seq_add"] = [driver.call("ADD", n)[0] for n in seq]
        after = cpu.read()
        out["cpu_seq_add"] = {k: (after[k] - before[k]) / len(seq) for k in before}
        out["seq_del"] = [driver.call("DEL", n)[0] for n in seq]
        out["par_add"], out["par_del"], out["par_add_ok"] = [], [], 0
        for _ in range(rounds):
            group = names[:parallel]
            before = len(out["failures"])
            out["par_add"] += batch("ADD", group, parallel)
            out["par_add_ok"] += parallel - (len(out["failures"]) - before)
            out["par_del"] += batch("DEL", group, parallel)
    finally:
        for n in names:
            sh("ip", "netns", "del", n, check=False)
    return out


def report(results: dict[str, dict[str, Any]], parallel: int) -> str:
    ours, ref = results["contiv"], results["bridge"]
    lines = [f"{'phase':<22}{'contiv p50':>12}{'p99':>10}{'bridge p50':>12}{'p99':>10}{'ratio p50':>11}"]
    for key, label in (("seq_add", "ADD sequential"), ("seq_del", "DEL sequential"),
                       ("par_add", f"ADD {parallel} parallel"), ("par_del", f"DEL {parallel} parallel")):
        a, b = ours[key], ref[key]
        lines.append(f"{label:<22}{statistics.median(a) * 1000:>10.1f}ms{percentile(a, .99) * 1000:>8.1f}ms"
                     f"{statistics.median(b) * 1000:>10.1f}ms{percentile(b, .99) * 1000:>8.1f}ms"
                     f"{statistics.median(a) / statistics.median(b):>10.2f}x")
    lines.append("")
    lines.append(f"{'CPU per sequential ADD':<22}{'contiv':>12}{'bridge':>12}")
    for proc in ours["cpu_seq_add"]:
        lines.append(f"{proc:<22}{ours['cpu_seq_add'][proc] * 1000:>10.1f}ms{ref['cpu_seq_add'][proc] * 1000:>10.1f}ms")
    lines.append(f"{'total':<22}{sum(ours['cpu_seq_add'].values()) * 1000:>10.1f}ms"
                 f"{sum(ref['cpu_seq_add'].values()) * 1000:>10.1f}ms")
    lines.append("")
    for name, r in results.items():
        lines.append(f"{name}: parallel ADDs succeeded {r['par_add_ok']}/{len(r['par_add'])}, "
                     f"failures {len(r['failures'])}")
        lines += [f"  {f}" for f in r["failures"][:5]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequential", type=int, default=40)
    ap.add_argument("--parallel", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print raw figures as JSON as well")
    ap.add_argument("--agent-log", type=Path, help="keep a copy of the agent's log here (for profiling)")
    args = ap.parse_args(argv)
    cluster = FeCluster(n_hosts=1)
    work = Path(tempfile.mkdtemp(prefix="fe-bench-"))
    try:
        cluster.up()
        host = cluster.hosts[0]
        nm = Netmaster(cluster.netmaster_url)
        wait_revision(cluster, nm.tenant_with_network("bench", "vxlan", "10.62.0.0/16"))
        contiv_bin = install(work / "bin")[0]
        drivers = [
            Driver("contiv", contiv_bin, {"cniVersion": "1.0.0", "name": "bench", "type": "contiv",
                                          "tenant": "bench", "network": "net",
                                          "agentSocket": cluster.cni_socket(host)}, host.netns, str(work / "bin")),
            Driver("bridge", REFERENCE_DIR / "bridge",
                   {"cniVersion": "1.0.0", "name": "bench-ref", "type": "bridge", "bridge": "febench0",
                    "isGateway": True, "ipam": {"type": "host-local", "subnet": "10.63.0.0/16",
                                                "dataDir": str(work / "host-local")}},
                   host.netns, str(REFERENCE_DIR)),
        ]
        ovs_pids = dict(zip(("ovs-vswitchd", "ovsdb-server"), host.ovs.pids(), strict=True))
        if host.agent is None or cluster.netmaster is None:
            raise RuntimeError("the simulated host has no agent or no netmaster")
        cpu = CpuMeter({"agent": host.agent.pid, "netmaster": cluster.netmaster.process.pid, **ovs_pids})
        results = {}
        for driver in drivers:
            driver.call("VERSION", "warmup")
            results[driver.name] = measure(driver, f"{cluster.prefix}b", args.sequential, args.parallel, args.rounds,
                                           cpu)
        print(report(results, args.parallel))
        if args.json:
            print(json.dumps({k: {m: v for m, v in r.items() if m != "failures"} for k, r in results.items()}))
        return 0 if all(not r["failures"] for r in results.values()) else 1
    finally:
        if args.agent_log and cluster.hosts:
            args.agent_log.write_text(cluster.agent_log(cluster.hosts[0]))
        cluster.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
