"""The simulated cluster for front-end tests: agents following a real netmaster, each serving the
CNI plugin socket (and, when asked, the Docker driver) from its host's run directory."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from testbed.cluster import SimHost
from testbed.sync_cluster import SyncCluster

NEEDED = ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ip", "busybox", "nsenter")


def missing(*extra: str) -> str | None:
    """Why the real-process tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, container runtimes)"
    absent = [b for b in (*NEEDED, *extra) if shutil.which(b) is None]
    return f"missing binaries: {', '.join(absent)}" if absent else None


class FeCluster(SyncCluster):
    def __init__(self, n_hosts: int = 2, docker: bool = False) -> None:
        super().__init__(n_hosts=n_hosts)
        self.prefix = "fe" + secrets.token_hex(2)
        suffix = int(self.prefix[2:], 16)
        self.ctrl_net = f"10.{150 + suffix % 50}.{(suffix >> 6) % 256}"
        self.docker = docker

    @staticmethod
    def cni_socket(host: SimHost) -> str:
        return str(host.rundir / "cni.sock")

    @staticmethod
    def docker_plugin_dir(host: SimHost) -> Path:
        return host.rundir / "docker-plugins"

    @staticmethod
    def docker_socket(host: SimHost) -> Path:
        """Where the host's dockerd (tests/frontends/docker_runtime.py) serves its API: the agent follows it."""
        return host.rundir / "dockerd.sock"

    def state_source_args(self, host: SimHost) -> list[str]:
        args = [*super().state_source_args(host), "--cni-socket", self.cni_socket(host)]
        if self.docker:
            # dockerd outside swarm mode refuses global-scope networks ("This node is not a swarm manager")
            args += ["--docker-plugin", str(self.docker_plugin_dir(host) / "contiv.sock"), "--docker-scope", "local",
                     "--docker-socket", str(self.docker_socket(host))]
        return args


def busybox_rootfs(path: Path) -> Path:
    """A container root filesystem from busybox-static (no image registry here)."""
    (path / "bin").mkdir(parents=True, exist_ok=True)
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        (path / d).mkdir(exist_ok=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", path / "bin" / "busybox")
    for applet in ("sh", "ping", "sleep", "ip", "nc", "cat", "echo", "ifconfig", "wget", "httpd", "true"):
        link = path / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    return path
