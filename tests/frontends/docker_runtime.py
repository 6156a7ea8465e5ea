"""A private dockerd on one simulated host, finding the agent's plugin socket as /run/docker/plugins.

dockerd runs in the host's network namespace and in a mount namespace of its own, where the host's
plugin directory is bind-mounted over /run/docker/plugins: every simulated host has "the" contiv
plugin, as real hosts would, without sharing one path on this machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


class Dockerd:
    def __init__(self, root: Path, netns: str, plugin_dir: Path, sock: Path | None = None) -> None:
        self.root, self.netns, self.plugin_dir = root, netns, plugin_dir
        self.sock = sock or root / "docker.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        self.plugin_dir.mkdir(parents=True, exist_ok=True)
        Path("/run/docker/plugins").mkdir(parents=True, exist_ok=True)  # the mount point
        r = self.root
        script = (f"mount --make-rprivate / && mount --bind {self.plugin_dir} /run/docker/plugins && "
                  f"exec dockerd --host unix://{self.sock} --data-root {r}/data --exec-root {r}/exec "
                  f"--pidfile {r}/dockerd.pid --bridge none --iptables=false --ip6tables=false "
                  f"--storage-driver vfs --log-level warn")
        log = open(r / "dockerd.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "-m", "sh", "-c",
                                         script], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited: {(r / 'dockerd.log').read_text()[-2000:]}")
            if self("version", check=False).returncode == 0:
                return self.process.pid
            time.sleep(0.2)
        raise TimeoutError(f"dockerd not ready: {(r / 'dockerd.log').read_text()[-2000:]}")

    def __call__(self, *args: str, check: bool = True, timeout: float = 90,
                 stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["docker", "-H", f"unix://{self.sock}", *args], capture_output=True, timeout=timeout,
                              input=stdin)
        out = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                                          proc.stderr.decode(errors="replace"))
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {out.stderr.strip()}")
        return out

    def import_rootfs(self, rootfs: Path, image: str = "local/busybox:1") -> str:
        tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True).stdout
        self("import", "-", image, stdin=tar)
        return image

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self("rm", "-f", *self("ps", "-aq", check=False).stdout.split(), check=False)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(str(self.root))]
        for target in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", target], check=False)


def kill_tree_by_pidfile(pidfile: Path) -> None:
    try:
        os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
    except (OSError, ValueError):
        pass
