"""Simulated hosts running pods the way kubelet does: each host's agent serves the CNI socket and a
private containerd (:class:`~testbed.cri.containerd.Containerd`) runs pod sandboxes through CRI with
the ``contiv`` plugin, which reaches that host's agent."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.cni.install import example_conflist, install
from testbed.cluster import SimHost
from testbed.cri.client import PodSpec
from testbed.cri.containerd import Containerd
from testbed.fe_cluster import FeCluster, missing

LOOPBACK = Path("/usr/lib/cni/loopback")


def missing_cri() -> str | None:
    """Why the CRI tests cannot run here, or None."""
    if (reason := missing("containerd", "containerd-shim-runc-v2", "ctr", "runc")) is not None:
        return reason
    try:
        import grpc_tools  # noqa: F401  (generates the CRI stubs)
    except ImportError:
        return "grpcio-tools is not installed"
    return None if LOOPBACK.exists() else f"missing {LOOPBACK} (containernetworking-plugins)"


@dataclass(frozen=True)
class Pod:
    id: str
    spec: PodSpec
    host: SimHost
    ip: str
    netns: str  # the pod's network namespace (a path)

    def run(self, *cmd: str, timeout: float = 30, check: bool = False, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run *cmd* in the pod's network namespace (the sandbox's, where its containers would live)."""
        proc = subprocess.run(["nsenter", f"--net={self.netns}", *cmd], capture_output=True, text=True,
                              timeout=timeout, cwd=cwd, env=env)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} in pod {self.spec.namespace}/{self.spec.name}: {proc.stderr}")
        return proc


class CriCluster(FeCluster):
    """FeCluster whose hosts also run containerd with a Contiv CNI configuration (*cni* is the
    plugin entry's tenant/network/group defaults)."""

    def __init__(self, n_hosts: int = 2, **cni: str) -> None:
        super().__init__(n_hosts=n_hosts)
        self.cni = cni
        self.runtimes: dict[str, Containerd] = {}

    def start_runtime(self, host: SimHost) -> Containerd:
        ctd = Containerd(self.root / host.name / "containerd", host.netns)
        install(ctd.dir / "contiv-bin")
        conflist = example_conflist(name="contiv-k8s", socket=self.cni_socket(host), **self.cni)
        ctd.network(conflist, {"contiv": str(ctd.dir / "contiv-bin" / "contiv")})
        self.runtimes[host.name] = ctd
        ctd.start()
        if ctd.proc is not None:  # a crashed run's cleanup (testbed.cluster.down) kills it by pid
            self.pids.append(ctd.proc.pid)
            self._record()
        return ctd

    def up(self, start_agents: bool = True) -> CriCluster:
        super().up(start_agents)
        for host in self.hosts:
            self.start_runtime(host)
        return self

    def run_pod(self, host: SimHost, spec: PodSpec) -> Pod:
        cri = self.runtimes[host.name].cri
        assert cri is not None
        pod_id = cri.run_pod(spec)
        return Pod(pod_id, spec, host, cri.pod_ip(pod_id), cri.netns_path(pod_id))

    def remove_pod(self, pod: Pod) -> None:
        """What kubelet does when a pod is deleted: StopPodSandbox (CNI DEL), then RemovePodSandbox
        (a second DEL, without a network namespace)."""
        cri = self.runtimes[pod.host.name].cri
        assert cri is not None
        cri.stop_pod(pod.id)
        cri.remove_pod(pod.id)

    def down(self) -> None:
        for ctd in self.runtimes.values():
            ctd.stop()  # pods first, while the agents still answer their DELs
        super().down()


def pod_annotations(**labels: Any) -> dict[str, str]:
    """Contiv's pod annotations: ``tenant``, ``network``, ``net_group`` -> ``io.contiv.*``."""
    return {f"io.contiv.{k.replace('_', '-')}": str(v) for k, v in labels.items()}
