"""CRI benchmark: RunPodSandbox -> pod IP through containerd with the ``contiv`` plugin, next to the
same containerd setup with Debian's ``bridge`` + ``host-local`` plugins, in the same run.

kubelet's path: RunPodSandbox (containerd creates the sandbox and its network namespace and runs the
CNI ADD), then PodSandboxStatus for the pod's IP. Two private containerd instances in one simulated
host (its own userspace OVS, a real agent following a real netmaster), one with each plugin; pods
are started alternately on one and the other (so a busy moment of the shared machine costs both),
one at a time, then all removed (StopPodSandbox + RemovePodSandbox). Prints p50/p95 per runtime
and the ratio of ours to the reference.

    python bench/cri.py [--pods 50]   (root)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testbed.cri.client import CriClient, PodSpec  # noqa: E402
from testbed.cri.cluster import CriCluster  # noqa: E402
from testbed.cri.containerd import Containerd  # noqa: E402
from testbed.sync_cluster import Netmaster, wait_revision  # noqa: E402

REFERENCE_DIR = Path("/usr/lib/cni")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_pod(cri: CriClient, spec: PodSpec) -> tuple[float, str, str]:
    """Seconds from RunPodSandbox to the pod's IP in PodSandboxStatus; (seconds, pod id, ip)."""
    started = time.perf_counter()
    pod_id = cri.run_pod(spec)
    ip = cri.pod_ip(pod_id)
    return time.perf_counter() - started, pod_id, ip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=50)
    args = ap.parse_args(argv)
    cluster = CriCluster(n_hosts=1, tenant="bench", network="net")
    reference: Containerd | None = None
    try:
        cluster.up(start_agents=True)
        host = cluster.hosts[0]
        nm = Netmaster(cluster.netmaster_url)
        wait_revision(cluster, nm.tenant_with_network("bench", "vxlan", "10.62.0.0/16"))
        reference = Containerd(cluster.root / host.name / "containerd-ref", host.netns)
        reference.network({"cniVersion": "1.0.0", "name": "bench-ref", "plugins": [
            {"type": "bridge", "bridge": f"{cluster.prefix}br", "isGateway": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.63.0.0/16"}]],
                      "dataDir": str(reference.dir / "host-local")}}]},
            {"bridge": str(REFERENCE_DIR / "bridge"), "host-local": str(REFERENCE_DIR / "host-local")})
        reference.start()
        runtimes = {"contiv": cluster.runtimes[host.name].cri, "bridge": reference.cri}
        times: dict[str, list[float]] = {name: [] for name in runtimes}
        pods: dict[str, list[str]] = {name: [] for name in runtimes}
        failures: list[str] = []
        for i in range(args.pods):
            for name, cri in runtimes.items():
                assert cri is not None
                try:
                    seconds, pod_id, ip = run_pod(cri, PodSpec(f"p{i}", f"bench-{name}"))
                except Exception as exc:  # reported below: a benchmark that hides failures lies
                    failures.append(f"{name} p{i}: {exc}")
                    continue
                pods[name].append(pod_id)
                if ip:
                    times[name].append(seconds)
                else:
                    failures.append(f"{name} p{i}: no IP")
        for name, cri in runtimes.items():
            assert cri is not None
            for pod_id in pods[name]:
                cri.stop_pod(pod_id)
                cri.remove_pod(pod_id)
        ours, ref = times["contiv"], times["bridge"]
        print(f"{'RunPodSandbox -> IP':<22}{'p50':>10}{'p95':>10}{'pods':>6}")
        for name, values in times.items():
            print(f"{name:<22}{statistics.median(values) * 1000:>8.1f}ms{percentile(values, .95) * 1000:>8.1f}ms"
                  f"{len(values):>6}")
        print(f"{'ratio contiv/bridge':<22}{statistics.median(ours) / statistics.median(ref):>9.2f}x"
              f"{percentile(ours, .95) / percentile(ref, .95):>9.2f}x")
        print(f"failures: {len(failures)}")
        for f in failures[:5]:
            print(f"  {f}")
        return 0 if not failures else 1
    finally:
        if reference is not None:
            reference.stop()
        cluster.down()


if __name__ == "__main__":
    sys.exit(main())
