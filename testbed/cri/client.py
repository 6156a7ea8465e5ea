"""A small CRI client (runtime.v1 over gRPC on a unix socket): what kubelet asks of a runtime to
give a pod its network, and nothing more. Pod sandboxes only: the network belongs to the sandbox,
and the tests run their servers and probes inside its network namespace."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import grpc

from testbed.cri import stubs

api, api_grpc = stubs.load()


@dataclass(frozen=True)
class PodSpec:
    name: str
    namespace: str = "default"
    uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def config(self) -> Any:
        return api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=self.name, namespace=self.namespace,
                                            uid=self.uid or f"{self.namespace}-{self.name}", attempt=0),
            hostname=self.name, labels=self.labels, annotations=self.annotations,
            linux=api.LinuxPodSandboxConfig())


class CriClient:
    def __init__(self, socket_path: str, timeout: float = 60) -> None:
        self.channel = grpc.insecure_channel(f"unix://{socket_path}")
        self.runtime = api_grpc.RuntimeServiceStub(self.channel)
        self.timeout = timeout

    def close(self) -> None:
        self.channel.close()

    def ready(self) -> bool:
        try:
            self.runtime.Version(api.VersionRequest(), timeout=2)
            status = self.runtime.Status(api.StatusRequest(), timeout=2).status
        except grpc.RpcError:
            return False
        return all(c.status for c in status.conditions if c.type == "RuntimeReady")

    def run_pod(self, spec: PodSpec) -> str:
        return self.runtime.RunPodSandbox(api.RunPodSandboxRequest(config=spec.config()),
                                          timeout=self.timeout).pod_sandbox_id

    def status(self, pod_id: str, verbose: bool = False) -> Any:
        return self.runtime.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose),
                                             timeout=self.timeout)

    def pod_ip(self, pod_id: str) -> str:
        return self.status(pod_id).status.network.ip

    def netns_path(self, pod_id: str) -> str:
        """The pod's network namespace, from containerd's verbose status (its runtime spec)."""
        info = json.loads(self.status(pod_id, verbose=True).info["info"])
        for ns in info["runtimeSpec"]["linux"]["namespaces"]:
            if ns["type"] == "network":
                return str(ns["path"])
        raise LookupError(f"pod {pod_id} has no network namespace")

    def stop_pod(self, pod_id: str) -> None:
        self.runtime.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=self.timeout)

    def remove_pod(self, pod_id: str) -> None:
        self.runtime.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=self.timeout)

    def pod_ids(self) -> list[str]:
        return [p.id for p in self.runtime.ListPodSandbox(api.ListPodSandboxRequest(), timeout=self.timeout).items]
