"""podman with its CNI backend, confined to private directories, on one simulated host.

Each host gets its own storage, CNI configuration directory and plugin directory; podman runs in the
host's network namespace only (``nsenter --net``: ``ip netns exec`` would remount /sys and hide the
cgroups runc needs), so the plugins it starts talk to that host's agent.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from agent.cni.install import install


class Podman:
    def __init__(self, root: Path, netns: str, rootfs: Path) -> None:
        self.root, self.netns, self.rootfs = root, netns, rootfs
        self.net_dir, self.bin_dir = root / "net.d", root / "cni-bin"
        self.net_dir.mkdir(parents=True, exist_ok=True)
        install(self.bin_dir)
        self.conf = root / "containers.conf"
        self.conf.write_text(
            "[containers]\ndefault_ulimits = []\n"
            f'[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ["{self.bin_dir}", "/usr/lib/cni"]\n'
            f'network_config_dir = "{self.net_dir}"\n'
            '[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n')

    def network(self, name: str, agent_socket: str, **plugin: Any) -> None:
        conf = {"cniVersion": "1.0.0", "name": name,
                "plugins": [{"type": "contiv", "agentSocket": agent_socket, **plugin}]}
        (self.net_dir / f"{name}.conflist").write_text(json.dumps(conf))

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = ["nsenter", f"--net=/run/netns/{self.netns}", "podman", "--root", str(self.root / "storage"),
               "--runroot", str(self.root / "run"), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={"CONTAINERS_CONF": str(self.conf), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        if check and proc.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {proc.returncode} {proc.stderr.strip()}")
        return proc

    def run_detached(self, name: str, network: str, *command: str) -> str:
        out = self("run", "-d", "--name", name, "--ulimit", "host", "--network", network,
                   "--rootfs", str(self.rootfs), *(command or ("/bin/sleep", "600")))
        return out.stdout.strip()

    def exec(self, name: str, *command: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self("exec", name, *command, check=check)

    def ip(self, name: str, network: str) -> str:
        info = json.loads(self("inspect", name).stdout)[0]
        return info["NetworkSettings"]["Networks"][network]["IPAddress"]

    def remove(self, name: str) -> None:
        self("rm", "-f", "-t", "0", name)
