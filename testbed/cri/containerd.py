"""A private containerd serving CRI, for one simulated host: its own configuration, root, state
directory and socket under a directory of ours, its own CNI configuration and plugin directories,
and its network namespace the host's (``nsenter --net``, as kubelet and containerd share a host).
The machine's own containerd (dockerd's) is never touched.

containerd 1.6 here needs ``restrict_oom_score_adj`` (it may not lower its children's OOM score
adjustment) and a sandbox image already in its store (:mod:`testbed.cri.image`). Pods' network
namespaces are containerd's (``/var/run/netns/cni-*``); :meth:`Containerd.stop` removes every pod
through CRI first, so that nothing of them outlives the instance, then ends the shims it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from testbed.cri.client import CriClient
from testbed.cri.image import SANDBOX_IMAGE, sandbox_archive

LOOPBACK_PLUGIN = "/usr/lib/cni/loopback"  # containerd's CRI brings the pod's lo up with it
_DISABLED = ("io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
             "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
             "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing")


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


class Containerd:
    def __init__(self, root: Path, netns: str | None = None) -> None:
        self.dir, self.netns = root, netns
        self.socket = root / "containerd.sock"
        self.bin_dir, self.conf_dir = root / "cni-bin", root / "net.d"
        self.proc: subprocess.Popen[bytes] | None = None
        self.cri: CriClient | None = None

    def config(self) -> str:
        cri = '[plugins."io.containerd.grpc.v1.cri"]'
        return "\n".join([
            "version = 2",
            f"root = {_toml_str(str(self.dir / 'root'))}",
            f"state = {_toml_str(str(self.dir / 'state'))}",
            f"disabled_plugins = {json.dumps(list(_DISABLED))}",
            "[grpc]", f"address = {_toml_str(str(self.socket))}",
            "[ttrpc]", f"address = {_toml_str(str(self.dir / 'ttrpc.sock'))}",
            "[debug]", 'address = ""', 'level = "info"',
            "[metrics]", 'address = ""',
            '[plugins."io.containerd.internal.v1.opt"]', f"path = {_toml_str(str(self.dir / 'opt'))}",
            cri, f"sandbox_image = {_toml_str(SANDBOX_IMAGE)}", "restrict_oom_score_adj = true",
            'stream_server_address = "127.0.0.1"', 'stream_server_port = "0"', "disable_apparmor = true",
            f"{cri[:-1]}.containerd]", 'snapshotter = "native"',
            f"{cri[:-1]}.cni]", f"bin_dir = {_toml_str(str(self.bin_dir))}",
            f"conf_dir = {_toml_str(str(self.conf_dir))}", "max_conf_num = 1", "",
        ])

    def network(self, conflist: dict[str, Any], plugins: dict[str, str]) -> None:
        """The CNI configuration containerd uses (one), and the plugin binaries it may run
        (name -> path; the loopback plugin is always there)."""
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for name, path in {"loopback": LOOPBACK_PLUGIN, **plugins}.items():
            link = self.bin_dir / name
            if not link.exists():
                link.symlink_to(path)
        (self.conf_dir / f"10-{conflist['name']}.conflist").write_text(json.dumps(conflist))

    def _cmd(self, *args: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}", *args] if self.netns else list(args)

    def start(self, timeout: float = 30) -> Containerd:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.toml").write_text(self.config())
        log = open(self.dir / "containerd.log", "ab")  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(self._cmd("containerd", "--config", str(self.dir / "config.toml")),
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        self.cri = CriClient(str(self.socket))
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited: {self.log()[-2000:]}")
            if self.socket.exists() and self.cri.ready():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"containerd's CRI not ready: {self.log()[-2000:]}")
            time.sleep(0.1)
        self.ctr("images", "import", "--snapshotter", "native", str(sandbox_archive(self.dir / "sandbox.tar")))
        return self

    def ctr(self, *args: str) -> str:
        proc = subprocess.run(["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def log(self) -> str:
        try:
            return (self.dir / "containerd.log").read_text(errors="replace")
        except OSError:
            return ""

    def shim_pids(self) -> list[int]:
        """The shims this instance started (they name its socket on their command line)."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(self.socket).encode() in argv:
                out.append(int(entry.name))
        return out

    def stop(self) -> None:
        """Remove every pod (their CNI DELs run while the agents still do), stop containerd, end its
        shims."""
        if self.cri is not None and self.proc is not None and self.proc.poll() is None:
            try:
                for pod_id in self.cri.pod_ids():
                    self.cri.stop_pod(pod_id)
                    self.cri.remove_pod(pod_id)
            except Exception:  # still stop the daemon; leftovers are reported by the tests' checks
                pass
        if self.cri is not None:
            self.cri.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in self.shim_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def remove_files(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
